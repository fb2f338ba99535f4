"""Fixtures of the live reload tests: a project folder and ``hyper2web serve`` on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reload.livekit import EventStream

INDEX = """<!doctype html>
<html>
<head>
<title>Live</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<p id="t">one</p>
</body>
</html>
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """``project/public`` with a page, a stylesheet, a script and a text file."""
    folder = tmp_path / "project"
    public = folder / "public"
    public.mkdir(parents=True)
    (public / "index.html").write_text(INDEX)
    (public / "style.css").write_text("#t { color: rgb(255, 0, 0); }\n")
    (public / "app.js").write_text("console.log('app');\n")
    (public / "hello.txt").write_text("hello world\n")
    return folder


@pytest.fixture
def serve(cli_server: Callable[..., Any], cert_pair: tuple[Path, Path],
          project: Path) -> Callable[..., Any]:
    """``serve(*options)``: ``hyper2web serve public`` in ``project`` with the test certificate.

    ``--port 0`` unless the options name a port; ``root`` and ``cwd`` change what is served.
    """

    def start(*options: str, root: str = "public", cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Any:
        args = ["serve", root, "--cert", str(cert_pair[0]), "--key", str(cert_pair[1]),
                *options]
        if "--port" not in options and "-p" not in options:
            args += ["--port", "0"]
        return cli_server(args, cwd=cwd or project, env=env)

    return start


@pytest.fixture
def events() -> Iterator[Callable[..., EventStream]]:
    """``events(port)``: an event stream on a new HTTP/2 connection, closed after the test."""
    opened: list[EventStream] = []

    def open_stream(port: int, **kwargs: Any) -> EventStream:
        stream = EventStream(port, **kwargs)
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()

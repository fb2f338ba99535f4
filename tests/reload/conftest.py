"""Fixtures of the live reload tests: a project folder and ``hyper2web serve`` on it.

A test that takes ``protocol`` (or ``client`` or ``subscribe``, which take it) runs twice,
over HTTP/2 and over HTTP/1.1: pages, the injected script, the event stream and the
answers of routes.py behave the same on both. ``events`` is always raw HTTP/2.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reload.livekit import EventStream, HttpxEventStream, need_tool
from tests.support import PROTOCOLS, launched_chromium, protocol_client

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


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    """The protocol the test speaks: "HTTP/2", then "HTTP/1.1"."""
    return str(request.param)


@pytest.fixture
def client(protocol: str) -> Iterator[httpx.Client]:
    """An httpx client over ``protocol`` that checks every response came over it."""
    with protocol_client(protocol, timeout=10) as c:
        yield c


@pytest.fixture
def subscribe(protocol: str) -> Iterator[Callable[..., HttpxEventStream]]:
    """``subscribe(url)``: the event stream over ``protocol`` on a new connection, read by
    httpx as it arrives; closed after the test."""
    opened: list[HttpxEventStream] = []

    def open_stream(url: str, **kwargs: Any) -> HttpxEventStream:
        stream = HttpxEventStream(url, protocol, **kwargs)
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()


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


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory,
            cert_pair: tuple[Path, Path]) -> Iterator[Any]:
    certutil = need_tool("certutil")
    home = tmp_path_factory.mktemp("chromium-home")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run([certutil, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run([certutil, "-d", f"sql:{nssdb}", "-A", "-t", "CP,,", "-n", "hyper2web-test",
                    "-i", str(cert_pair[0])], check=True)
    with launched_chromium(home) as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(5000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors
    try:
        yield tab
    finally:
        context.close()

"""``serve --proxy`` in front of a uvicorn + starlette backend, as a developer runs both:
JSON, a streamed upload, an event stream, a WebSocket, and in Chromium a server-rendered
page that reloads when its template changes, talking over a proxied WebSocket."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support import launched_chromium

HERE = Path(__file__).parent
PAGE = """<!doctype html><html><head><title>rendered</title></head><body>
<p id="text">{text}</p><script>
window.replies = [];
const ws = new WebSocket(`wss://${{location.host}}/api/ws`);
ws.onopen = () => ws.send("from the page");
ws.onmessage = (event) => window.replies.push(event.data);
</script></body></html>"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "page.html").write_text(PAGE.format(text="one"))
    return folder


@pytest.fixture
def backend(templates: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "asgi_backend:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=HERE, env={**os.environ, "BACKEND_TEMPLATES": str(templates)})
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def front(cli_server: Any, tmp_path: Path, backend: str, templates: Path) -> Any:
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("<!doctype html><title>front</title>front")
    return cli_server(["serve", str(public), "--port", "0", "--proxy", f"/api={backend}",
                       "--proxy", f"/app={backend}", "--watch", str(templates)])


def _ctx() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_json_upload_and_event_stream_through_the_proxy(front: Any) -> None:
    with httpx.Client(http2=True, verify=False, timeout=20) as client:
        hello = client.get(front.url + "/api/hello")
        assert hello.http_version == "HTTP/2"
        assert hello.json() == {"hello": "from starlette", "path": "/api/hello",
                                "host": f"localhost:{front.port}",
                                "forwarded_for": "127.0.0.1"}
        body = os.urandom(3 * 1024 * 1024)
        saved = client.post(front.url + "/api/upload", content=body).json()
        assert saved == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        with client.stream("GET", front.url + "/api/events") as stream:
            started = time.monotonic()
            assert b"data: first" in next(stream.iter_raw())
            assert time.monotonic() - started < 1.0  # before the backend's second event


def test_a_websocket_through_the_proxy(front: Any) -> None:
    async def talk() -> str:
        async with websockets.connect(f"wss://127.0.0.1:{front.port}/api/ws",
                                      ssl=_ctx()) as ws:
            await ws.send("hi")
            return str(await ws.recv())

    assert asyncio.run(asyncio.wait_for(talk(), 20)) == "starlette: hi"


def test_chromium_reloads_a_proxied_page_when_its_template_changes(
        front: Any, templates: Path) -> None:
    with launched_chromium() as browser:
        page = browser.new_context(ignore_https_errors=True).new_page()
        page.goto(front.url + "/app/page", timeout=10000)
        assert page.inner_text("#text") == "one"
        page.wait_for_function("window.replies.length > 0", timeout=10000)
        assert page.evaluate("window.replies") == ["starlette: from the page"]
        page.wait_for_function("!!(window.__hyper2webReload && "
                               "window.__hyper2webReload.bootId)", timeout=10000)
        (templates / "page.html").write_text(PAGE.format(text="two"))
        page.wait_for_function("document.getElementById('text').textContent === 'two'",
                               timeout=10000)

"""``app.proxy``: a prefix forwarded to a real backend (a stdlib ``http.server`` in a thread),
over HTTP/2 and HTTP/1.1 in front; bodies streamed both ways; faults are clear pages."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyper2web import App
from tests.server.h2client import H2Client
from tests.support import PROTOCOLS, protocol_client


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              cookies: tuple[str, ...] = ()) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for cookie in cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/api/echo") or self.path.startswith("/echo"):
            seen = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
            self._send(200, json.dumps(seen).encode(), {"content-type": "application/json"},
                       cookies=("a=1; Path=/", "b=2; Path=/"))
        elif self.path == "/api/redirect":
            port = self.server.server_address[1]
            self._send(302, b"", {"location": f"http://127.0.0.1:{port}/api/echo?x=1"})
        elif self.path == "/api/slow-events":
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"d\r\ndata: first\n\n\r\n")
            self.wfile.flush()
            time.sleep(1.5)
            self.wfile.write(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
        elif self.path == "/api/sleep":
            time.sleep(2)
            self._send(200, b"late")
        elif self.path == "/api/dies":
            self.send_response(200)
            self.send_header("content-length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(404, b"backend 404")

    def do_POST(self) -> None:  # noqa: N802
        length = self.headers.get("content-length")
        digest, size = hashlib.sha256(), 0
        if length is not None:
            data = self.rfile.read(int(length))
            digest.update(data)
            size = len(data)
        else:  # chunked
            while True:
                line = self.rfile.readline()
                chunk = int(line.split(b";")[0], 16)
                if chunk == 0:
                    self.rfile.readline()
                    break
                data = self.rfile.read(chunk)
                self.rfile.readline()
                digest.update(data)
                size += len(data)
        self._send(200, json.dumps({"size": size, "sha256": digest.hexdigest(),
                                    "path": self.path}).encode(),
                   {"content-type": "application/json"})


@pytest.fixture
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxied(serve_app: Any, tmp_path: Path, backend: str) -> Any:
    (tmp_path / "index.html").write_text("<!doctype html><title>front</title>front")
    app = App(root=tmp_path)

    @app.get("api/local")
    async def local(request, response):
        await response.send(b"routes come first")

    app.proxy("/api", backend, timeout=1.0)
    app.proxy("/strip", backend + "/")
    running = serve_app(app)
    running.backend = backend
    return running


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_prefix_goes_to_the_backend_unchanged_with_forwarding_fields(
        proxied: Any, protocol: str) -> None:
    with protocol_client(protocol) as client:
        answer = client.get(f"https://localhost:{proxied.port}/api/echo?q=1",
                            headers={"x-mine": "kept"})
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["path"] == "/api/echo?q=1"
    headers = seen["headers"]
    assert headers["host"] == f"localhost:{proxied.port}"  # kept, as vite does by default
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == f"localhost:{proxied.port}"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["forwarded"] == f'for="127.0.0.1";proto=https;host="localhost:{proxied.port}"'
    assert headers["x-mine"] == "kept"
    assert "connection" not in headers or headers["connection"] != "upgrade"
    assert answer.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_a_target_with_a_path_replaces_the_prefix(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{proxied.port}/strip/echo")
    assert answer.json()["path"] == "/echo"


def test_routes_come_first_then_proxies_then_static_files(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        base = f"https://localhost:{proxied.port}"
        assert client.get(base + "/api/local").text == "routes come first"
        assert client.get(base + "/api/nothing").text == "backend 404"
        assert "front" in client.get(base + "/").text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_upload_streams_to_the_backend(proxied: Any, protocol: str) -> None:
    body = b"0123456789abcdef" * (2 * 1024 * 1024 // 16)  # 2 MiB

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    with protocol_client(protocol) as client:
        answer = client.post(f"https://localhost:{proxied.port}/api/upload", content=pieces())
    assert answer.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                             "path": "/api/upload"}


def test_a_location_at_the_backend_is_rewritten_to_this_server(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{proxied.port}/api/redirect")
    assert answer.status_code == 302
    assert answer.headers["location"] == f"https://localhost:{proxied.port}/api/echo?x=1"


def test_an_event_stream_is_relayed_as_it_arrives(proxied: Any) -> None:
    with httpx.Client(http2=True, verify=False, timeout=10) as client, \
            client.stream("GET", f"https://localhost:{proxied.port}/api/slow-events") as answer:
        started = time.monotonic()
        first = next(answer.iter_raw())
        assert b"data: first" in first
        assert time.monotonic() - started < 1.0  # before the backend's second event


def test_a_backend_that_is_down_gives_a_502_that_names_it(serve_app: Any, tmp_path: Path,
                                                          caplog: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    app = App(root=tmp_path)
    app.proxy("/api", f"http://127.0.0.1:{port}")
    running = serve_app(app)
    with caplog.at_level("INFO", logger="hyper2web"), protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{running.port}/api/x")
        assert answer.status_code == 502
        assert f"http://127.0.0.1:{port}" in answer.text
        assert "connection refused: is your backend running?" in answer.text
        assert client.get(f"https://localhost:{running.port}/api/y").status_code == 502
    lines = [r for r in caplog.records if "proxy" in r.getMessage()]
    assert len(lines) == 2 and all(r.exc_info is None for r in lines)  # no traceback


def test_a_slow_backend_gives_504(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{proxied.port}/api/sleep")
    assert answer.status_code == 504


def test_a_backend_that_dies_mid_body_resets_that_stream_only(proxied: Any) -> None:
    with H2Client(proxied.port) as client:
        cut = client.request("/api/dies")
        client.read_until(lambda: client.streams[cut].done, timeout=10)
        assert client.streams[cut].reset is not None  # not a clean end: the body is cut
        after = client.get("/api/echo")  # the same connection serves on
        assert after.status == 200


def test_keep_alive_reuses_backend_connections(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        for _ in range(5):
            assert client.get(f"https://localhost:{proxied.port}/api/echo").status_code == 200
    api = next(p for p in proxied.app.proxies if p.prefix == "/api")
    assert len(api.upstream._idle) == 1  # one connection, used five times


PAGE = b"<!doctype html><html><head><title>rendered</title></head><body>hi</body></html>"


class Pages(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        import gzip as gz

        body, coding = (gz.compress(PAGE), "gzip") if self.path == "/gz" else (PAGE, None)
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        if coding:
            self.send_header("content-encoding", coding)
        self.send_header("content-length", str(len(body)))
        self.send_header("etag", '"v1"')
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("path", ["/plain", "/gz"])
def test_server_rendered_pages_get_the_live_reload_client(serve_app: Any, tmp_path: Path,
                                                          path: str) -> None:
    from hyper2web.reload import LiveReload

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = App(root=tmp_path, live_reload=LiveReload())
        app.proxy("/", f"http://127.0.0.1:{server.server_address[1]}")
        running = serve_app(app)
        with httpx.Client(http2=True, verify=False, timeout=10) as client:
            answer = client.get(f"https://localhost:{running.port}{path}",
                                headers={"accept-encoding": "identity"})
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 200
    assert b"/__hyper2web__/client.js" in answer.content and b"rendered" in answer.content
    assert "content-encoding" not in answer.headers and "etag" not in answer.headers
    assert int(answer.headers["content-length"]) == len(answer.content)


@pytest.fixture
def ws_backend() -> Iterator[tuple[str, list[str]]]:
    from websockets.sync.server import serve

    seen: list[str] = []

    def handler(connection: Any) -> None:
        seen.append(connection.request.path)
        for message in connection:
            if message == "bye":
                connection.close(4001, "backend says bye")
                return
            connection.send(f"backend: {message}")

    server = serve(handler, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.socket.getsockname()[1]}", seen
    server.shutdown()


def test_a_websocket_is_bridged_to_the_backend_over_http11(serve_app: Any, tmp_path: Path,
                                                            ws_backend: Any) -> None:
    import asyncio
    import ssl

    import websockets

    url, seen = ws_backend
    app = App(root=tmp_path)
    app.proxy("/ws", url)
    running = serve_app(app)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    async def talk() -> tuple[str, int, str]:
        async with websockets.connect(f"wss://127.0.0.1:{running.port}/ws/chat",
                                      ssl=ctx) as ws:
            await ws.send("hello")
            echoed = await ws.recv()
            await ws.send("bye")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return echoed, closed.value.rcvd.code, closed.value.rcvd.reason

    assert asyncio.run(asyncio.wait_for(talk(), 20)) == ("backend: hello", 4001,
                                                          "backend says bye")
    assert seen == ["/ws/chat"]


def test_a_websocket_over_http2_is_bridged_too(serve_app: Any, tmp_path: Path,
                                               ws_backend: Any) -> None:
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import TextMessage

    url, _ = ws_backend
    app = App(root=tmp_path)
    app.proxy("/ws", url)
    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True) as client:
        sid = client.request("/ws/h2", "CONNECT", end_stream=False, headers=[
            (":protocol", "websocket"), ("sec-websocket-version", "13")])
        stream = client.streams[sid]
        client.read_until(lambda: stream.status is not None)
        assert stream.status == 200
        framing = Connection(ConnectionType.CLIENT)
        client.send_body(sid, framing.send(TextMessage(data="over h2")), end_stream=False)
        got: list[Any] = []

        def echoed() -> bool:
            while stream.chunks:
                framing.receive_data(stream.chunks.pop(0))
                got.extend(framing.events())
            return any(isinstance(e, TextMessage) for e in got)

        client.read_until(echoed)
    assert [e.data for e in got if isinstance(e, TextMessage)] == ["backend: over h2"]


def test_a_websocket_to_a_backend_that_is_down_is_a_502(serve_app: Any, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = App(root=tmp_path)
    app.proxy("/ws", f"http://127.0.0.1:{port}")
    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True) as client:
        sid = client.request("/ws/x", "CONNECT", end_stream=False, headers=[
            (":protocol", "websocket"), ("sec-websocket-version", "13")])
        client.read_until(lambda: client.streams[sid].status is not None)
        assert client.streams[sid].status == 502


@pytest.fixture
def tls_backend(cert_pair: tuple[Path, Path]) -> Iterator[str]:
    import ssl

    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_pair[0]), str(cert_pair[1]))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_https_backend_is_verified_unless_told_not_to(serve_app: Any, tmp_path: Path,
                                                         tls_backend: str) -> None:
    app = App(root=tmp_path)
    app.proxy("/checked", tls_backend + "/api")
    app.proxy("/trusted", tls_backend + "/api", verify=False, change_origin=True)
    running = serve_app(app)
    with protocol_client("HTTP/2") as client:
        refused = client.get(f"https://localhost:{running.port}/checked/echo")
        assert refused.status_code == 502
        assert "TLS with the backend failed" in refused.text
        answer = client.get(f"https://localhost:{running.port}/trusted/echo")
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["path"] == "/api/echo"
    assert seen["headers"]["host"] == tls_backend.removeprefix("https://")  # change_origin


def test_inject_false_leaves_backend_pages_as_they_are(serve_app: Any, tmp_path: Path) -> None:
    from hyper2web.reload import LiveReload

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = App(root=tmp_path, live_reload=LiveReload())
        app.proxy("/", f"http://127.0.0.1:{server.server_address[1]}", inject=False)
        running = serve_app(app)
        with httpx.Client(http2=True, verify=False, timeout=10) as client:
            answer = client.get(f"https://localhost:{running.port}/plain")
    finally:
        server.shutdown()
        server.server_close()
    assert answer.content == PAGE and answer.headers["etag"] == '"v1"'

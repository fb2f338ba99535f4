"""WebSockets through the proxy: a browser's WebSocket, over HTTP/1.1 (Upgrade) or HTTP/2
(RFC 8441 extended CONNECT, with the raw h2 client), bridged to an HTTP/1.1 Upgrade to a
real ``websockets`` backend; frames relayed both ways and closes passed on in both
directions, their codes and reasons intact."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Event, TextMessage

from hyper2web import App
from hyper2web._curio import curio
from hyper2web.exceptions import StreamClosed
from hyper2web.http import Request, Response, Stream
from hyper2web.proxy import Proxy
from tests.server.h2client import H2Client


@dataclass
class WsBackend:
    url: str
    paths: list[str] = field(default_factory=list)
    closes: list[tuple[int, str] | None] = field(default_factory=list)  # the client's close

    def wait_close(self, timeout: float = 10) -> tuple[int, str] | None:
        deadline = time.monotonic() + timeout
        while not self.closes and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.closes, "the backend saw no close"
        return self.closes[0]


@pytest.fixture
def ws_backend() -> Iterator[WsBackend]:
    """Echoes ``backend: <message>``; ``bye`` makes it close with 4001; it records the
    close frame the client sent it."""
    from websockets.sync.server import serve

    def handler(connection: Any) -> None:
        backend.paths.append(connection.request.path)
        try:
            for message in connection:
                if message == "bye":
                    connection.close(4001, "backend says bye")
                    return
                connection.send(f"backend: {message}")
        except websockets.ConnectionClosed:
            pass
        rcvd = connection.protocol.close_rcvd
        backend.closes.append((rcvd.code, rcvd.reason) if rcvd else None)

    server = serve(handler, "127.0.0.1", 0)
    backend = WsBackend(f"http://127.0.0.1:{server.socket.getsockname()[1]}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield backend
    server.shutdown()


@pytest.fixture
def front(serve_app: Any, tmp_path: Path, ws_backend: WsBackend) -> Any:
    app = App(root=tmp_path)
    app.proxy("/ws", ws_backend.url)
    return serve_app(app)


def _ctx() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_over_http11_frames_and_the_backends_close_reach_the_browser(
        front: Any, ws_backend: WsBackend) -> None:
    async def talk() -> tuple[str, int, str]:
        async with websockets.connect(f"wss://127.0.0.1:{front.port}/ws/chat",
                                      ssl=_ctx()) as ws:
            await ws.send("hello")
            echoed = await ws.recv()
            await ws.send("bye")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            return str(echoed), closed.value.rcvd.code, closed.value.rcvd.reason

    assert asyncio.run(asyncio.wait_for(talk(), 20)) == ("backend: hello", 4001,
                                                          "backend says bye")
    assert ws_backend.paths == ["/ws/chat"]


def test_over_http11_the_browsers_close_reaches_the_backend(
        front: Any, ws_backend: WsBackend) -> None:
    async def talk() -> tuple[int, str] | None:
        async with websockets.connect(f"wss://127.0.0.1:{front.port}/ws/chat",
                                      ssl=_ctx()) as ws:
            await ws.send("hello")
            await ws.recv()
            await ws.close(4002, "browser says bye")
            rcvd = ws.protocol.close_rcvd  # the backend's answer, relayed back
            return (rcvd.code, rcvd.reason) if rcvd else None

    assert asyncio.run(asyncio.wait_for(talk(), 20)) == (4002, "browser says bye")
    assert ws_backend.wait_close() == (4002, "browser says bye")


class H2Socket:
    """A WebSocket over one HTTP/2 stream of the raw client (RFC 8441)."""

    def __init__(self, client: H2Client, path: str) -> None:
        self.client = client
        self.sid = client.request(path, "CONNECT", end_stream=False, headers=[
            (":protocol", "websocket"), ("sec-websocket-version", "13")])
        self.stream = client.streams[self.sid]
        client.read_until(lambda: self.stream.status is not None)
        self.framing = Connection(ConnectionType.CLIENT)
        self.events: list[Event] = []

    def send(self, event: Event) -> None:
        self.client.send_body(self.sid, self.framing.send(event), end_stream=False)

    def until(self, wanted: Callable[[list[Event]], bool]) -> None:
        def arrived() -> bool:
            while self.stream.chunks:
                self.framing.receive_data(self.stream.chunks.pop(0))
                self.events.extend(self.framing.events())
            return wanted(self.events)

        self.client.read_until(arrived)

    def close_event(self) -> CloseConnection:
        self.until(lambda events: any(isinstance(e, CloseConnection) for e in events))
        return next(e for e in self.events if isinstance(e, CloseConnection))


def test_over_http2_frames_are_bridged(front: Any, ws_backend: WsBackend) -> None:
    with H2Client(front.port, normalize=False, handshake=True) as client:
        ws = H2Socket(client, "/ws/h2")
        assert ws.stream.status == 200
        ws.send(TextMessage(data="over h2"))
        ws.until(lambda events: any(isinstance(e, TextMessage) for e in events))
    assert [e.data for e in ws.events if isinstance(e, TextMessage)] == ["backend: over h2"]
    assert ws_backend.paths == ["/ws/h2"]


def test_over_http2_the_backends_close_reaches_the_browser(front: Any) -> None:
    with H2Client(front.port, normalize=False, handshake=True) as client:
        ws = H2Socket(client, "/ws/h2")
        ws.send(TextMessage(data="bye"))
        close = ws.close_event()
        assert (close.code, close.reason) == (4001, "backend says bye")
        ws.send(close.response())  # the close handshake's answer
        client.read_until(lambda: ws.stream.done)
        # A clean end: END_STREAM (then, the browser not having ended its side, at most
        # RST_STREAM(NO_ERROR), RFC 9113 section 8.1)
        assert ws.stream.ended and ws.stream.reset in (None, 0)


def test_over_http2_the_browsers_close_reaches_the_backend(front: Any,
                                                           ws_backend: WsBackend) -> None:
    with H2Client(front.port, normalize=False, handshake=True) as client:
        ws = H2Socket(client, "/ws/h2")
        ws.send(CloseConnection(code=4003, reason="h2 browser says bye"))
        echo = ws.close_event()  # the backend's answer, relayed back
        assert (echo.code, echo.reason) == (4003, "h2 browser says bye")
        client.read_until(lambda: ws.stream.done)
        assert ws.stream.ended and ws.stream.reset in (None, 0)
    assert ws_backend.wait_close() == (4003, "h2 browser says bye")


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


class _Gone:
    """The channel of a stream the browser reset while the backend was answering."""

    async def send_head(self, *args: Any) -> None:
        raise StreamClosed("stream 1 closed by the peer")

    send_data = send_informational = send_head


def test_a_browser_gone_during_the_backends_handshake_closes_the_backend_connection() -> None:
    """The backend accepts the WebSocket, but the browser's stream has closed meanwhile:
    its head cannot be sent, and the backend's connection must not stay open. (A real
    reset lands there only when it races the backend's 101, hence the stand-in channel.)"""
    seen: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def backend() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
                try:
                    seen.append("closed" if conn.recv(4096) == b"" else "data")
                except TimeoutError:
                    seen.append("left open")

        thread = threading.Thread(target=backend, daemon=True)
        thread.start()
        proxy = Proxy("/ws", f"http://127.0.0.1:{listener.getsockname()[1]}")
        opened: list[Any] = []  # held, so that only the proxy can close the tunnel
        open_tunnel = proxy.upstream.open_tunnel

        async def keep(*args: Any) -> Any:
            answer = await open_tunnel(*args)
            opened.append(answer[2])
            return answer

        proxy.upstream.open_tunnel = keep  # type: ignore[method-assign]
        request = Request(Stream(1, {":method": "CONNECT", ":protocol": "websocket",
                                     ":path": "/ws/x", ":authority": "localhost",
                                     "sec-websocket-version": "13"}),
                          client=("127.0.0.1", 1))
        with pytest.raises(StreamClosed):
            curio.run(proxy.bridge, request, Response(1, _Gone()))
        thread.join(10)
    assert opened and opened[0] is not None
    assert seen == ["closed"]

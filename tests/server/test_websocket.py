"""WebSocket handlers (``app.websocket``) over both transports: RFC 6455 Upgrade over
HTTP/1.1 with the ``websockets`` client, and RFC 8441 extended CONNECT over HTTP/2 with the
raw h2 client and wsproto framing; limits and faults."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
import websockets
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage

from hyper2web import App, HTTPError
from tests.server.h2client import H2Client


@pytest.fixture
def ws_app(serve_app: Any, tmp_path: Path) -> Any:
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>x")
    app = App(root=tmp_path, max_ws_message=64 * 1024)
    seen: dict[str, Any] = {"ended": []}

    @app.websocket("echo/{room}")
    async def echo(request, ws):
        await ws.accept(subprotocol="chat" if "chat" in ws.subprotocols else None)
        async for message in ws:
            await ws.send(message if isinstance(message, bytes)
                          else f"{request.para['room']}: {message}")
        seen["ended"].append(ws.close_code)

    @app.websocket("refuse")
    async def refuse(request, ws):
        raise HTTPError(403, "not you")

    @app.websocket("boom")
    async def boom(request, ws):
        await ws.receive()
        raise RuntimeError("boom")

    @app.websocket("hello")
    async def hello(request, ws):
        await ws.send("hello")
        await ws.close(4000, "bye")

    running = serve_app(app)
    running.seen = seen
    return running


def _context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def url(server: Any, path: str) -> str:
    return f"wss://127.0.0.1:{server.port}/{path}"


# -- HTTP/1.1 Upgrade, with the websockets client ----------------------------------------------

def test_http11_echo_text_and_bytes_with_a_subprotocol(ws_app: Any) -> None:
    async def talk() -> tuple[Any, ...]:
        async with websockets.connect(url(ws_app, "echo/lobby"), ssl=_context(),
                                      subprotocols=["chat"]) as ws:
            await ws.send("hi")
            text = await ws.recv()
            await ws.send(b"\x00\x01")
            data = await ws.recv()
            return ws.subprotocol, text, data

    assert _run(talk()) == ("chat", "lobby: hi", b"\x00\x01")
    assert ws_app.seen["ended"] == [1000]  # the client closed: the loop ended cleanly


def test_http11_a_server_close_reaches_the_client(ws_app: Any) -> None:
    async def talk() -> tuple[Any, ...]:
        async with websockets.connect(url(ws_app, "hello"), ssl=_context()) as ws:
            first = await ws.recv()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return first, closed.value.rcvd.code, closed.value.rcvd.reason

    assert _run(talk()) == ("hello", 4000, "bye")


def test_http11_http_error_before_accepting_refuses_with_its_status(ws_app: Any) -> None:
    async def talk() -> int:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url(ws_app, "refuse"), ssl=_context()):
                pass
        return refused.value.response.status_code

    assert _run(talk()) == 403


def test_http11_unknown_path_is_404(ws_app: Any) -> None:
    async def talk() -> int:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url(ws_app, "nowhere"), ssl=_context()):
                pass
        return refused.value.response.status_code

    assert _run(talk()) == 404


def test_http11_a_handler_that_raises_closes_with_1011(ws_app: Any, caplog: Any) -> None:
    async def talk() -> int:
        async with websockets.connect(url(ws_app, "boom"), ssl=_context()) as ws:
            await ws.send("go")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code

    with caplog.at_level("INFO", logger="hyper2web"):
        assert _run(talk()) == 1011
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(failures) == 1 and "boom" in failures[0].getMessage()
    assert failures[0].exc_info is not None  # the traceback, once


def test_http11_a_message_over_the_limit_closes_with_1009(ws_app: Any) -> None:
    async def talk() -> int:
        async with websockets.connect(url(ws_app, "echo/big"), ssl=_context(),
                                      max_size=None) as ws:
            await ws.send(b"x" * (64 * 1024 + 1))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code

    assert _run(talk()) == 1009


def test_http11_pings_are_answered(ws_app: Any) -> None:
    async def talk() -> float:
        async with websockets.connect(url(ws_app, "echo/p"), ssl=_context()) as ws:
            pong = await ws.ping(b"abc")
            return await asyncio.wait_for(pong, 5)

    assert _run(talk()) >= 0


def test_a_websocket_route_asked_for_with_plain_http_is_426(ws_app: Any) -> None:
    import httpx

    with httpx.Client(verify=False) as client:
        answer = client.get(f"https://127.0.0.1:{ws_app.port}/hello")
    assert answer.status_code == 426 and answer.headers["upgrade"] == "websocket"


# -- HTTP/2 extended CONNECT, with the raw h2 client -------------------------------------------

def _h2_open(client: H2Client, path: str, protocols: str | None = None) -> int:
    headers = [(":protocol", "websocket"), ("sec-websocket-version", "13")]
    if protocols:
        headers.append(("sec-websocket-protocol", protocols))
    sid = client.request(path, "CONNECT", headers=headers, end_stream=False)
    client.read_until(lambda: client.streams[sid].status is not None)
    return sid


def test_http2_advertises_extended_connect(ws_app: Any) -> None:
    with H2Client(ws_app.port, normalize=False, handshake=True) as client:
        assert client.conn.remote_settings.get(0x8) == 1


def test_http2_echo_over_one_stream_beside_other_requests(ws_app: Any) -> None:
    with H2Client(ws_app.port, normalize=False, handshake=True) as client:
        sid = _h2_open(client, "/echo/h2", "chat")
        stream = client.streams[sid]
        assert stream.status == 200
        assert ("sec-websocket-protocol", "chat") in stream.headers
        framing = Connection(ConnectionType.CLIENT)
        client.send_body(sid, framing.send(TextMessage(data="over h2")), end_stream=False)
        page = client.get("/index.html")  # the same connection serves pages meanwhile
        assert page.status == 200
        received: list[Any] = []

        def got_echo() -> bool:
            while stream.chunks:
                framing.receive_data(stream.chunks.pop(0))
                received.extend(framing.events())
            return any(isinstance(e, TextMessage) for e in received)

        client.read_until(got_echo)
        assert [e.data for e in received if isinstance(e, TextMessage)] == ["h2: over h2"]
        client.send_body(sid, framing.send(BytesMessage(data=b"\xff")), end_stream=False)
        client.read_until(lambda: got_echo() and any(
            isinstance(e, BytesMessage) for e in received))
        client.send_body(sid, framing.send(CloseConnection(code=1000)), end_stream=False)
        client.read_until(lambda: stream.ended)
    assert ws_app.seen["ended"] == [1000]


def test_http2_refusal_is_an_ordinary_answer(ws_app: Any) -> None:
    with H2Client(ws_app.port, normalize=False, handshake=True) as client:
        sid = _h2_open(client, "/refuse")
        assert client.streams[sid].status == 403
        sid = _h2_open(client, "/nowhere")
        assert client.streams[sid].status == 404


def test_http2_a_reset_stream_ends_the_handler_loop(ws_app: Any) -> None:
    import time

    with H2Client(ws_app.port, normalize=False, handshake=True) as client:
        sid = _h2_open(client, "/echo/gone")
        client.reset(sid)
        deadline = time.monotonic() + 5
        while not ws_app.seen["ended"] and time.monotonic() < deadline:
            time.sleep(0.02)
    assert ws_app.seen["ended"] == [1006]


def test_routes_declare_websockets_too(serve_app: Any, tmp_path: Path) -> None:
    from hyper2web import Routes

    routes = Routes()

    @routes.websocket("shout")
    async def shout(request, ws):
        async for message in ws:
            await ws.send(str(message).upper())

    app = App(root=tmp_path)
    app.include(routes)
    running = serve_app(app)

    async def talk() -> Any:
        async with websockets.connect(url(running, "shout"), ssl=_context()) as ws:
            await ws.send("hey")
            return await ws.recv()

    assert _run(talk()) == "HEY"


@pytest.mark.parametrize("transport", ["HTTP/1.1", "HTTP/2"])
def test_server_shutdown_closes_open_sockets_with_1001(serve_app: Any, tmp_path: Path,
                                                       transport: str) -> None:
    app = App(root=tmp_path)
    opened: list[bool] = []

    @app.websocket("wait")
    async def wait(request, ws):
        await ws.accept()
        opened.append(True)
        async for _ in ws:
            pass

    running = serve_app(app)
    if transport == "HTTP/2":
        # h2's client refuses frames after a GOAWAY, though RFC 9113 lets the open stream
        # finish: the DATA is read off the wire instead.
        with H2Client(running.port, normalize=False, handshake=True, strict=False) as client:
            sid = _h2_open(client, "/wait")
            framing = Connection(ConnectionType.CLIENT)
            running.app.shutdown()

            def data() -> bytes:
                return b"".join(bytes(f.frame.data) for f in client.frames
                                if f.type == 0 and f.stream_id == sid)

            try:
                client.read_until(lambda: b"\x88" in data(), timeout=5)  # a close frame
            except ConnectionError:
                pass  # the server closed the connection after it
            framing.receive_data(data())
            codes = [e.code for e in framing.events() if isinstance(e, CloseConnection)]
        assert codes == [1001]
        return

    async def talk() -> int:
        async with websockets.connect(url(running, "wait"), ssl=_context()) as ws:
            while not opened:
                await asyncio.sleep(0.01)
            running.app.shutdown()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code

    assert _run(talk()) == 1001


def test_a_quiet_socket_is_pinged(serve_app: Any, tmp_path: Path) -> None:
    from wsproto.events import Ping

    app = App(root=tmp_path, ws_ping_every=0.2)

    @app.websocket("quiet")
    async def quiet(request, ws):
        async for _ in ws:
            pass

    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True) as client:
        sid = _h2_open(client, "/quiet")
        framing = Connection(ConnectionType.CLIENT)
        events: list[Any] = []

        def pinged() -> bool:
            stream = client.streams[sid]
            while stream.chunks:
                framing.receive_data(stream.chunks.pop(0))
                events.extend(framing.events())
            return any(isinstance(e, Ping) for e in events)

        client.read_until(pinged, timeout=5)
    assert [e.payload for e in events if isinstance(e, Ping)][0] == b"keep-alive"


def test_a_slow_reader_holds_the_sender_back(serve_app: Any, tmp_path: Path) -> None:
    """The client reads nothing and opens no window: the handler's sends block after the
    first window's worth instead of piling messages up in memory."""
    import time

    app = App(root=tmp_path)
    sent: list[int] = []

    @app.websocket("flood")
    async def flood(request, ws):
        await ws.accept()
        for n in range(800):  # 50 MB if nothing held it back
            await ws.send(b"x" * 65536)
            sent.append(n)

    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True, auto_ack=False) as client:
        sid = _h2_open(client, "/flood")
        stream = client.streams[sid]
        client.read_until(lambda: stream.received >= 65535)  # the first window is used
        time.sleep(1.0)
        held = len(sent)
        client.reset(sid)
    assert held <= 4, held  # one window's worth, no more: the rest waits in the handler


def test_reloaded_routes_serve_new_sockets_while_open_ones_keep_their_handler(
        serve_app: Any, tmp_path: Path) -> None:
    app = App(root=tmp_path)

    def register(tag: str) -> Any:
        def setup(target: App) -> None:
            @target.websocket("who")
            async def who(request, ws):
                async for _ in ws:
                    await ws.send(tag)
        return setup

    app.replace_routes(register("old"))
    running = serve_app(app)

    async def talk() -> tuple[str, str]:
        async with websockets.connect(url(running, "who"), ssl=_context()) as first:
            await first.send("?")
            assert await first.recv() == "old"
            running.app.replace_routes(register("new"))
            async with websockets.connect(url(running, "who"), ssl=_context()) as second:
                await second.send("?")
                await first.send("?")
                return await first.recv(), await second.recv()

    assert _run(talk()) == ("old", "new")

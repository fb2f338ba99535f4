"""``app.broadcast``: every socket hears a message at once, and one that cannot take it (a
page that reads nothing) is ended and dropped instead of delaying the others; ``app.state``
outlives ``replace_routes``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import h2.settings
import httpx
import pytest
import websockets
from wsproto.events import CloseConnection

from hyper2web import App
from hyper2web._curio import curio
from tests.server.h2client import H2Client
from tests.server.wskit import H1WebSocket, H2Frames, h2_open, ws_context, ws_url

TIMEOUT = 2.0  # the broadcast's, in these tests: the prompt page must hear it well before


class Opened(dict):
    """The sockets in the order they opened (a set has no order): the slow one first, so a
    broadcast that sent in turn would make the prompt one wait."""

    def add(self, ws: Any) -> None:
        self[ws] = None

    def discard(self, ws: Any) -> None:
        self.pop(ws, None)


@pytest.fixture
def live(serve_app: Any, tmp_path: Path) -> Any:
    app = App(root=tmp_path)
    sockets = app.state.setdefault("sockets", Opened())
    ended: list[int | None] = []

    @app.websocket("live")
    async def watch(request, ws):
        await ws.accept()
        sockets.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            sockets.discard(ws)
            ended.append(ws.close_code)

    @app.post("tell/{size}")
    async def tell(request, response):
        message = "x" * int(request.para["size"])
        started = time.monotonic()
        delivered = await app.broadcast(sockets, message, timeout=TIMEOUT)
        await response.send_json({"delivered": delivered, "left": len(sockets),
                                  "seconds": time.monotonic() - started})

    running = serve_app(app)
    running.sockets, running.ended = sockets, ended
    return running


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def prompt_page_hears(live: Any, size: int) -> tuple[float, dict[str, Any]]:
    """A ``websockets`` page opens beside the slow one; a POST broadcasts ``size``
    characters. How long the page waited for it, and the POST's answer."""
    async def talk() -> tuple[float, dict[str, Any]]:
        async with websockets.connect(ws_url(live, "live"), ssl=ws_context(),
                                      max_size=None) as page, \
                httpx.AsyncClient(verify=False, http2=True, timeout=30) as http:
            while len(live.sockets) < 2:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            post = asyncio.create_task(http.post(f"{live.url}/tell/{size}"))
            message = await asyncio.wait_for(page.recv(), 10)
            heard = time.monotonic() - started
            assert message == "x" * size
            answer = (await post).json()
            # The page stays in the set and hears the next one at once.
            again = await http.post(f"{live.url}/tell/10")
            assert again.json()["delivered"] == 1
            assert await asyncio.wait_for(page.recv(), 5) == "x" * 10
            return heard, answer

    return asyncio.run(asyncio.wait_for(talk(), 60))


def test_a_page_with_a_closed_window_is_dropped_over_http2(live: Any) -> None:
    """The slow page opens a 1 KiB window and never acknowledges anything."""
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024}
    with H2Client(live.port, normalize=False, handshake=True, auto_ack=False,
                  settings=settings) as slow:
        sid = h2_open(slow, "/live")
        wait_for(lambda: len(live.sockets) == 1)
        heard, answer = prompt_page_hears(live, 64 * 1024)
        assert heard < TIMEOUT / 2, f"the prompt page waited {heard:.2f} s"
        assert answer["delivered"] == 1 and answer["left"] == 1
        assert TIMEOUT * 0.9 < answer["seconds"] < TIMEOUT + 1
        # The slow page's stream is reset (its page sees the socket close), not left open.
        slow.read_until(lambda: bool(slow.wire_resets(sid)), timeout=5)
    wait_for(lambda: 1006 in live.ended)


def test_a_page_that_reads_nothing_is_dropped_over_http11(live: Any) -> None:
    """The slow page's TCP receive buffer is small and it never reads: the server's send
    waits on the socket itself, past what the kernel buffers hold (a few MB)."""
    slow = H1WebSocket(live.port, "live", rcvbuf=4096)
    try:
        wait_for(lambda: len(live.sockets) == 1)
        heard, answer = prompt_page_hears(live, 16 * 1024 * 1024)
        # Sent in turn, the prompt page would wait out the slow one's whole TIMEOUT before
        # its 16 MiB even began; the transfer itself takes a good part of a second on a
        # loaded machine.
        assert heard < TIMEOUT, f"the prompt page waited {heard:.2f} s"
        assert answer["delivered"] == 1 and answer["left"] == 1
        wait_for(lambda: 1006 in live.ended)  # its handler's loop ended at once
        # And its connection is closed at once too, not when the send timeout (60 s) ends
        # a write the page never reads: the response was cut, so nothing queued is worth
        # sending.
        port = slow.sock.getsockname()[1]
        wait_for(lambda: all(conn.client[1] != port
                             for conn in list(live.app.server.connections)), timeout=3)
        # Reading again, the page gets what was already written, then finds its connection
        # closed: no close frame, 1006.
        events = slow.read_until(
            lambda events: any(isinstance(e, CloseConnection) for e in events), timeout=10)
        assert [e.code for e in events if isinstance(e, CloseConnection)] == [1006]
    finally:
        slow.close()


def test_a_closed_socket_is_dropped_and_counted_out(serve_app: Any, tmp_path: Path) -> None:
    """A handler that leaves its socket in the set after the page vanished: the broadcast
    finds it closed, does not count it, and drops it."""
    app = App(root=tmp_path)
    sockets: set[Any] = set()
    ended: list[int | None] = []

    @app.websocket("live")
    async def watch(request, ws):
        await ws.accept()
        sockets.add(ws)  # never removed here
        async for _ in ws:
            pass
        ended.append(ws.close_code)

    @app.post("tell")
    async def tell(request, response):
        delivered = await app.broadcast(sockets, "xxxxx", timeout=TIMEOUT)
        await response.send_json({"delivered": delivered, "left": len(sockets)})

    running = serve_app(app)

    async def talk() -> dict[str, Any]:
        url, ctx = ws_url(running, "live"), ws_context()
        async with websockets.connect(url, ssl=ctx) as stays, \
                websockets.connect(url, ssl=ctx) as leaves, \
                httpx.AsyncClient(verify=False, timeout=10) as http:
            while len(sockets) < 2:
                await asyncio.sleep(0.01)
            leaves.transport.abort()
            while 1006 not in ended:  # the server saw it go: its socket is closed
                await asyncio.sleep(0.01)
            answer = (await http.post(f"{running.url}/tell")).json()
            assert await asyncio.wait_for(stays.recv(), 5) == "xxxxx"
            return answer

    answer = asyncio.run(asyncio.wait_for(talk(), 30))
    assert answer == {"delivered": 1, "left": 1}


def test_broadcast_to_nobody_and_a_message_of_the_wrong_type() -> None:
    assert curio.run(App.broadcast, set(), "hi") == 0
    with pytest.raises(TypeError):
        curio.run(App.broadcast, set(), {"not": "text"})


def test_state_outlives_replace_routes(tmp_path: Path) -> None:
    app = App(root=tmp_path)
    seen: list[Any] = []

    def setup(target: App) -> None:
        seen.append(target.state.setdefault("sockets", set()))

    app.replace_routes(setup)
    seen[0].add("an open socket")
    app.replace_routes(setup)
    assert seen[1] is seen[0] and seen[1] == {"an open socket"}
    assert App(root=tmp_path).state == {}  # one dict per app


def test_a_broadcast_and_the_handlers_own_sends_never_mix_their_frames(
        serve_app: Any, tmp_path: Path) -> None:
    """Both wait on the same closed window at once; each message still arrives whole."""
    app = App(root=tmp_path)
    sockets: set[Any] = set()
    size = 100_000  # more than a window: every send waits for the client at least once

    @app.websocket("both")
    async def both(request, ws):
        await ws.accept()
        sockets.add(ws)
        for _ in range(10):
            await ws.send("a" * size)
        async for _ in ws:
            pass

    @app.post("tell")
    async def tell(request, response):
        for _ in range(5):
            await app.broadcast(sockets, "b" * size, timeout=10)
        await response.send_status_code(204)

    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True) as client:
        sid = h2_open(client, "/both")
        wait_for(lambda: sockets)
        post = client.request("/tell", "POST")
        frames = H2Frames(client, sid)

        def messages() -> list[Any]:
            return [e for e in frames.update() if getattr(e, "message_finished", False)]

        client.read_until(lambda: len(messages()) == 15 and client.streams[post].done,
                          timeout=20)
        texts, parts = [], ""
        for event in frames.events:
            parts += event.data
            if event.message_finished:
                texts.append(parts)
                parts = ""
    assert sorted(texts) == ["a" * size] * 10 + ["b" * size] * 5

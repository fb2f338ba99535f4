"""A WebSocket message cut off half-way ends its socket: the peer holds part of a frame,
and a frame that followed would be read as the rest of it. And a broadcast waits behind a
handler's own long send for as long as the page reads it, not a fixed time.

The pages here are raw HTTP/2 clients whose window stays shut until the test opens it, so
a send is stuck exactly where the test wants it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h2.settings
import httpx

from hyper2web import App
from hyper2web._curio import curio
from hyper2web.exceptions import WebSocketClosed
from hyper2web.websocket import WRITE_PIECE
from tests.server.h2client import H2Client
from tests.server.wskit import H2Frames, h2_open

MIB = 1024 * 1024
SHUT = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024}  # a page that reads 1 KiB


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_send_cut_off_by_a_timeout_ends_the_socket(serve_app: Any, tmp_path: Path) -> None:
    """The handler wraps a send in a timeout that expires with 1 KiB of the frame out: the
    next send raises instead of appending a frame to the cut one, and the page's stream
    is reset."""
    app = App(root=tmp_path)
    outcome: list[Any] = []

    @app.websocket("cut")
    async def cut(request, ws):
        async with curio.ignore_after(0.3):
            await ws.send("a" * 5000)
        try:
            await ws.send("b")
        except WebSocketClosed as exc:
            outcome.append(exc.code)
        async for _ in ws:
            pass
        outcome.append(ws.close_code)

    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True, auto_ack=False,
                  settings=SHUT) as page:
        sid = h2_open(page, "/cut")
        wait_for(lambda: outcome == [1006, 1006])
        page.read_until(lambda: bool(page.wire_resets(sid)), timeout=5)
        assert page.streams[sid].received == 1024  # the cut frame, and nothing after it


def test_a_broadcast_cut_off_ends_the_sockets_it_had_not_finished_with(
        serve_app: Any, tmp_path: Path) -> None:
    """The broadcasting task is cancelled (here by a timeout around the broadcast, as when
    the poster's connection closes) while one page holds part of the message and the
    other's turn has not come (its handler's own send is stuck): both sockets are ended
    and dropped, not left open for a later frame to follow a cut one."""
    app = App(root=tmp_path)
    sockets: dict[str, Any] = {}
    ended: list[int | None] = []

    @app.websocket("slow")
    async def slow(request, ws):
        await ws.accept()
        sockets["slow"] = ws  # never removed here: only the broadcast drops it
        async for _ in ws:
            pass
        ended.append(ws.close_code)

    @app.websocket("busy")
    async def busy(request, ws):
        await ws.accept()
        sockets["busy"] = ws
        await ws.send("a" * 5000)  # stuck on the shut window, holding the socket's turn

    @app.post("tell")
    async def tell(request, response):
        everyone = set(sockets.values())
        async with curio.ignore_after(0.3):
            await app.broadcast(everyone, "x" * 5000, timeout=10)
        await response.send_json({"left": len(everyone)})

    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True, auto_ack=False,
                  settings=SHUT) as one, \
            H2Client(running.port, normalize=False, handshake=True, auto_ack=False,
                     settings=SHUT) as two:
        sid = h2_open(one, "/slow")
        h2_open(two, "/busy")
        two.read_until(lambda: sum(s.received for s in two.streams.values()) == 1024)
        wait_for(lambda: len(sockets) == 2)
        with httpx.Client(verify=False, http2=True, timeout=10) as http:
            assert http.post(f"{running.url}/tell").json() == {"left": 0}
        wait_for(lambda: ended == [1006])
        one.read_until(lambda: bool(one.wire_resets(sid)), timeout=5)
        assert sockets["busy"].close_code == 1006


def read_paced(page: H2Client, sid: int, done: Any, pause: float = 0.01) -> None:
    """Read as a page on a modest network does: take what came, open the window by as
    much a moment later, until ``done()``."""
    stream = page.streams[sid]
    acked = 0
    while not done():
        if stream.received == acked:
            page.read_until(lambda seen=acked: stream.received > seen or done(), timeout=10)
        fresh, acked = stream.received - acked, stream.received
        if fresh:
            time.sleep(pause)
            page.ack(sid, fresh)


def test_a_broadcast_waits_behind_a_long_send_the_page_is_reading(
        serve_app: Any, tmp_path: Path) -> None:
    """The handler sends the page 2 MiB, through a 16 KiB window reopened as the page
    reads (well over a second), and a broadcast with a 0.5 s timeout comes meanwhile: its
    message waits its turn and goes after, and the socket stays."""
    app = App(root=tmp_path)
    sockets: set[Any] = set()
    size = 2 * MIB

    @app.websocket("big")
    async def big(request, ws):
        await ws.accept()
        sockets.add(ws)
        await ws.send("a" * size)
        async for _ in ws:
            pass

    @app.post("tell")
    async def tell(request, response):
        started = time.monotonic()
        delivered = await app.broadcast(sockets, "b", timeout=0.5)
        await response.send_json({"delivered": delivered, "left": len(sockets),
                                  "seconds": time.monotonic() - started})

    running = serve_app(app)
    window = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384}
    with H2Client(running.port, normalize=False, handshake=True, auto_ack=False,
                  settings=window) as page:
        sid = h2_open(page, "/big")
        page.read_until(lambda: page.streams[sid].received > 0, timeout=5)
        post = page.request("/tell", "POST")
        frames = H2Frames(page, sid)

        def messages() -> list[str]:
            texts, parts = [], ""
            for event in frames.update():
                parts += event.data
                if event.message_finished:
                    texts.append(parts)
                    parts = ""
            return texts

        read_paced(page, sid, lambda: page.streams[post].done and len(messages()) == 2)
        answer = httpx.Response(200, content=page.streams[post].body).json()
    assert messages() == ["a" * size, "b"]
    assert answer["delivered"] == 1 and answer["left"] == 1
    assert answer["seconds"] > 0.5  # it did wait behind the handler's send


def test_a_broadcast_behind_a_send_that_gets_nothing_out_gives_up(
        serve_app: Any, tmp_path: Path) -> None:
    """The page reads nothing while the handler sends it 1 MiB: the broadcast ends the
    socket after its timeout. The handler's own send, stuck on the shut window, cannot be
    woken (ws.abort says so); once the page reads again it gets the rest of the piece being
    written, and the send raises instead of sending the rest of the message."""
    app = App(root=tmp_path)
    sockets: set[Any] = set()
    outcome: list[Any] = []

    @app.websocket("stuck")
    async def stuck(request, ws):
        await ws.accept()
        sockets.add(ws)
        try:
            await ws.send(b"a" * MIB)
        except WebSocketClosed as exc:
            outcome.append(exc.code)

    @app.post("tell")
    async def tell(request, response):
        started = time.monotonic()
        delivered = await app.broadcast(sockets, "b", timeout=0.3)
        await response.send_json({"delivered": delivered, "left": len(sockets),
                                  "seconds": time.monotonic() - started})

    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True, auto_ack=False,
                  settings=SHUT) as page:
        sid = h2_open(page, "/stuck")
        page.read_until(lambda: page.streams[sid].received == 1024, timeout=5)
        with httpx.Client(verify=False, http2=True, timeout=10) as http:
            answer = http.post(f"{running.url}/tell").json()
        assert answer["delivered"] == 0 and answer["left"] == 0
        assert answer["seconds"] < 2.0
        assert outcome == []  # still waiting on the window
        read_paced(page, sid, lambda: bool(page.wire_resets(sid)), pause=0)
        assert outcome == [1006]
        assert page.streams[sid].received == WRITE_PIECE

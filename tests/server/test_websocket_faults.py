"""WebSocket faults, with the clients that cause them: the default message limit, a slow
reader and a vanished client over HTTP/1.1, a peer that answers no ping, and a server
stopping while a handler waits on a send."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import websockets
from wsproto.events import CloseConnection, Ping, TextMessage

from hyper2web import App
from tests.server.h2client import H2Client
from tests.server.wskit import (
    H1WebSocket,
    H2Frames,
    h2_open,
    limit_seen,
    ws_context,
    ws_url,
)

MIB = 1024 * 1024


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def send_buffer_max() -> int:
    """The most a TCP socket's send buffer may grow to on this machine (Linux: 4 MB)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * MIB


def trouble(caplog: Any) -> list[str]:
    """What the server logged at WARNING or worse, tracebacks included."""
    return [r.getMessage() + (" (traceback)" if r.exc_info else "") for r in caplog.records
            if r.levelno >= logging.WARNING]


def test_the_default_limit_takes_one_mib_and_closes_past_it_with_1009(
        serve_app: Any, tmp_path: Path) -> None:
    app = App(root=tmp_path)  # default settings
    assert app.max_ws_message == MIB

    @app.websocket("size")
    async def size(request, ws):
        async for message in ws:
            await ws.send(str(len(message)))

    assert limit_seen(serve_app(app), MIB) == (str(MIB), 1009)


def test_http11_a_slow_reader_holds_the_sender_back(serve_app: Any, tmp_path: Path) -> None:
    """The client reads nothing: the handler's sends wait once the kernel's buffers are
    full (a few MB), instead of 50 MB piling up in the server."""
    app = App(root=tmp_path)
    sent: list[int] = []

    @app.websocket("flood")
    async def flood(request, ws):
        for n in range(800):  # 50 MB if nothing held it back
            await ws.send(b"x" * 65536)
            sent.append(n)

    running = serve_app(app)
    client = H1WebSocket(running.port, "flood", rcvbuf=4096)
    try:
        wait_for(lambda: len(sent) > 0)
        time.sleep(1.0)
        held = len(sent)
        time.sleep(0.5)
        assert len(sent) == held, "the handler kept sending to a client that reads nothing"
        # What the kernel's send buffer can hold (and the TLS layer's record), no more.
        assert held * 65536 < send_buffer_max() + 2 * MIB, held
        # Once the client reads, the rest flows.
        client.read_until(lambda events: sum(len(getattr(e, "data", b"")) for e in events)
                          >= (held + 10) * 65536, timeout=10)
        assert len(sent) >= held + 10
    finally:
        client.close()


def test_http11_a_client_that_vanishes_ends_the_loop_cleanly(
        serve_app: Any, tmp_path: Path, caplog: Any) -> None:
    app = App(root=tmp_path)
    ended: list[int | None] = []

    @app.websocket("echo")
    async def echo(request, ws):
        async for message in ws:
            await ws.send(message)
        ended.append(ws.close_code)

    running = serve_app(app)
    with caplog.at_level(logging.DEBUG):
        client = H1WebSocket(running.port, "echo")
        client.send(TextMessage(data="hi"))
        client.read_until(lambda events: any(isinstance(e, TextMessage) for e in events))
        client.vanish()  # TCP closed: no close frame
        wait_for(lambda: ended)
    assert ended == [1006]  # the loop ended, with the code for "no close frame"
    assert trouble(caplog) == []


def test_a_peer_that_answers_no_ping_is_closed_with_1011(serve_app: Any,
                                                         tmp_path: Path) -> None:
    app = App(root=tmp_path, ws_ping_every=0.2)
    ended: list[tuple[int | None, str]] = []
    took: list[float] = []

    @app.websocket("quiet")
    async def quiet(request, ws):
        # Timed by the server: the client learns of the socket after the first ping
        # interval has begun, and may read the ping and the close at once.
        started = time.monotonic()
        async for _ in ws:
            pass
        took.append(time.monotonic() - started)
        ended.append((ws.close_code, ws.close_reason))

    running = serve_app(app)
    with H2Client(running.port, normalize=False, handshake=True) as client:
        sid = h2_open(client, "/quiet")
        frames = H2Frames(client, sid)
        client.read_until(lambda: frames.closes() != [], timeout=5)
        client.read_until(lambda: client.streams[sid].ended, timeout=5)
    pings = [e for e in frames.events if isinstance(e, Ping)]
    assert len(pings) == 1  # one ping, unanswered; then the close instead of another
    assert frames.closes() == [1011]
    assert [e.reason for e in frames.events if isinstance(e, CloseConnection)] == \
        ["keepalive ping timeout"]
    wait_for(lambda: ended)
    # Two ping intervals: one quiet, then one without the pong (timers never fire early).
    assert 0.4 <= took[0] < 2.0, took
    assert ended == [(1011, "keepalive ping timeout")]


def test_a_peer_that_answers_pings_stays(serve_app: Any, tmp_path: Path) -> None:
    app = App(root=tmp_path, ws_ping_every=0.2)

    @app.websocket("echo")
    async def echo(request, ws):
        async for message in ws:
            await ws.send(message)

    running = serve_app(app)

    async def talk() -> str:
        # The websockets package answers pings by itself (its own pings are off).
        async with websockets.connect(ws_url(running, "echo"), ssl=ws_context(),
                                      ping_interval=None) as ws:
            await asyncio.sleep(1.2)  # six ping intervals, every ping answered
            await ws.send("still here")
            return await asyncio.wait_for(ws.recv(), 5)

    assert asyncio.run(asyncio.wait_for(talk(), 20)) == "still here"


@pytest.mark.parametrize("transport", ["HTTP/2", "HTTP/1.1"])
def test_shutdown_reaches_a_handler_waiting_on_a_send(serve_app: Any, tmp_path: Path,
                                                      caplog: Any, transport: str) -> None:
    """The client reads nothing, so the handler waits in ``ws.send``: the server still
    stops within its grace period (its last step cancels what is left), with no
    traceback."""
    app = App(root=tmp_path)
    sent: list[int] = []
    left: list[str] = []

    @app.websocket("flood")
    async def flood(request, ws):
        try:
            for n in range(3200):  # 50 MB, in pieces smaller than the first window
                await ws.send(b"x" * 16384)
                sent.append(n)
        finally:
            left.append("handler ended")

    running = serve_app(app)
    if transport == "HTTP/2":
        client: Any = H2Client(running.port, normalize=False, handshake=True, auto_ack=False)
        h2_open(client, "/flood")
    else:
        client = H1WebSocket(running.port, "flood", rcvbuf=4096)
    try:
        wait_for(lambda: sent)
        time.sleep(0.3)  # the handler is waiting on its send now
        with caplog.at_level(logging.INFO):
            started = time.monotonic()
            stopper = threading.Thread(target=running.stop)
            stopper.start()
            stopper.join(10)
            took = time.monotonic() - started
        assert not stopper.is_alive()
        assert took < 2.0, f"the server took {took:.2f} s to stop"
        assert left == ["handler ended"]
        assert [m for m in trouble(caplog) if "traceback" in m] == []
    finally:
        client.close()


def test_the_access_log_names_the_method_each_client_sent(
        serve_app: Any, tmp_path: Path, caplog: Any) -> None:
    """An HTTP/1.1 Upgrade is a GET on the wire; over HTTP/2 it is an extended CONNECT.
    Both reach the handler the same way, but the log says what the client sent."""
    app = App(root=tmp_path)

    @app.websocket("bye")
    async def bye(request, ws):
        await ws.send("bye")

    running = serve_app(app)

    def access_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "hyper2web.access"]

    with caplog.at_level(logging.INFO, logger="hyper2web.access"):
        client = H1WebSocket(running.port, "bye")
        try:
            client.read_until(lambda events: any(isinstance(e, TextMessage) for e in events))
            wait_for(lambda: len(access_lines()) == 1)
        finally:
            client.close()
        with H2Client(running.port) as h2:
            h2_open(h2, "/bye")
            wait_for(lambda: len(access_lines()) == 2)
    first, second = access_lines()
    assert first.split()[:3] == ["GET", "/bye", "101"], first
    assert second.split()[:3] == ["CONNECT", "/bye", "200"], second

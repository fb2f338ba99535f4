"""Large writes are corked (TCP_CORK) while they last, and the cork always comes off: a
small answer after a large one must leave at once, not after the kernel's 200 ms cap.

The server runs in this process, so its live connections can be inspected directly: one
whose peer stops reading is caught in the middle of a large write.
"""

from __future__ import annotations

import gc
import socket
import time
from typing import Any

import h2.settings
import pytest

from hyper2web.server.connection import Connection
from hyper2web.server.sending import Sender
from tests.server.h1raw import H1Raw
from tests.server.h2client import H2Client

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="Linux only")

BIG_WINDOW = 2**30


def live_connections(port: int, client: socket.socket | None = None) -> list[Connection]:
    """The open connections of the server on ``port`` (other tests' servers run in this
    process too), or only the one with ``client`` at its other end: a connection left
    open by an earlier server that had the same port must not pass for this test's.
    ``type()`` rather than ``isinstance``: a dead weak proxy among the collector's objects
    raises on ``isinstance``."""
    found = []
    peer = client.getsockname() if client is not None else None
    for obj in gc.get_objects():
        if issubclass(type(obj), Connection) and not obj.closed:
            try:
                sock = obj.sock._socket
                if sock.getsockname()[1] == port and \
                        (peer is None or sock.getpeername() == peer):
                    found.append(obj)
            except OSError:
                pass  # closed meanwhile
    return found


def corked(conn: Connection) -> int:
    return conn.sock._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)


def writing_connection(port: int, client: socket.socket, timeout: float = 10.0) -> Connection:
    """The connection to ``client`` stuck in a write to it while it reads nothing: its
    write began a while ago (a small write may be caught in progress too, for an
    instant)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for conn in live_connections(port, client):
            if conn.sending_since and time.monotonic() - conn.sending_since > 0.3:
                return conn
        time.sleep(0.02)
    raise AssertionError("no connection was caught writing")


def assert_uncorked(port: int) -> None:
    conns = live_connections(port)
    assert conns, "the test's connection should still be open"
    assert [corked(conn) for conn in conns] == [0] * len(conns)


def big_download(port: int) -> tuple[H2Client, int]:
    """A client with windows that never hold the server back, and its request for a large
    file (read only when ``keep_body`` says so)."""
    client = H2Client(port, settings={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: BIG_WINDOW - 1}, handshake=True)
    client.conn.increment_flow_control_window(BIG_WINDOW - 1 - 65535)
    client.flush()
    return client, client.request("/big.bin")


def test_h2_large_write_is_corked_then_uncorked(server: Any) -> None:
    client, sid = big_download(server.port)
    with client:
        assert corked(writing_connection(server.port, client.sock)) == 1  # buffers full
        client.keep_body = False
        result = client.wait(sid, timeout=60)
        assert result.status == 200
        client.keep_body = True
        assert_uncorked(server.port)
        small = client.get("/index.html")  # the same connection goes on answering
        assert small.status == 200 and b"ok" in small.body
        assert_uncorked(server.port)


def test_h1_large_write_is_corked_then_uncorked(server: Any) -> None:
    client = H1Raw(server.port)
    client.send(b"GET /big.bin HTTP/1.1\r\nhost: localhost\r\n\r\n")
    assert corked(writing_connection(server.port, client.sock)) == 1
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.sock.recv(65536)
    received = len(data) - data.index(b"\r\n\r\n") - 4
    while received < server.site.big_size:
        piece = client.sock.recv(1 << 20)
        assert piece, f"the connection closed after {received} bytes of the body"
        received += len(piece)
    assert received == server.site.big_size
    client.send(b"GET /index.html HTTP/1.1\r\nhost: localhost\r\n\r\n")
    assert b"200" in client.sock.recv(65536)
    assert_uncorked(server.port)
    client.sock.close()


def test_small_answers_are_never_corked(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    cork = Sender._cork

    def spy(self: Sender, on: int) -> bool:
        calls.append(on)
        return cork(self, on)

    monkeypatch.setattr(Sender, "_cork", spy)
    with H2Client(server.port, handshake=True) as client:
        assert client.get("/index.html").status == 200
        assert calls == []  # two system calls more for each small answer would cost more
        assert client.get("/medium.bin", timeout=30).status == 200
        assert calls and calls.count(1) == calls.count(0)
        assert_uncorked(server.port)

"""The connection driver with a socket of its own making: what it writes, and whether it
shuts its side and lingers before closing after an error report (so the kernel's reset for
unread bytes cannot destroy the report on its way)."""

from __future__ import annotations

from typing import Any

import pytest

from hyper2web._curio import curio
from hyper2web.server import tuning
from hyper2web.server.config import ConnectionConfig
from hyper2web.server.connection import Connection
from hyper2web.server.protocol import H2Protocol, H11Protocol


class Sock:
    """Gives ``chunks`` to ``recv``, then stays quiet; records what is sent and shut."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent = b""
        self.shut = False

    async def recv(self, size: int) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        await curio.sleep(5)
        return b""

    async def sendall(self, data: bytes) -> None:
        self.sent += data

    async def shutdown(self, how: int) -> None:
        self.shut = True


async def _handler(request: Any, response: Any) -> None:
    await response.send(b"ok")


def _run(sock: Any, protocol: type) -> Connection:
    """Serve one connection on ``sock`` to its end (at most 3 s)."""
    conn = Connection(sock, ("127.0.0.1", 1), _handler, ConnectionConfig(), protocol)

    async def main() -> None:
        async with curio.timeout_after(3):
            await conn.run()

    curio.run(main)
    return conn


def _serve(protocol: type, chunks: list[bytes]) -> Sock:
    sock = Sock(chunks)
    _run(sock, protocol)
    return sock


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nine\r\n\r\n",
], ids=["cl-and-te", "bad-length"])
def test_http11_400_is_sent_then_the_connection_lingers(head: bytes) -> None:
    sock = _serve(H11Protocol, [head + b"unread body"])
    assert sock.sent.startswith(b"HTTP/1.1 400 ")
    assert sock.shut


def test_http2_protocol_error_goaway_is_sent_then_the_connection_lingers() -> None:
    sock = _serve(H2Protocol, [b"GET / HTTP/1.1\r\n\r\n" + b"x" * 64])
    goaway = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"  # a GOAWAY frame's header, stream 0
    assert goaway in sock.sent
    assert sock.shut


def test_a_request_answered_in_keep_alive_needs_no_linger() -> None:
    sock = _serve(H11Protocol, [b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
    assert sock.sent.startswith(b"HTTP/1.1 200 ") and sock.sent.endswith(b"ok")
    assert not sock.shut


class PacedSock(Sock):
    """``Sock`` whose peer sent ``waiting`` before the server first asked (``None``:
    nothing yet), then each chunk a moment after the last; every write kept."""

    def __init__(self, waiting: bytes | None, chunks: list[bytes]) -> None:
        super().__init__(chunks)
        self.waiting = waiting
        self.writes: list[bytes] = []

    def received(self, size: int) -> bytes | None:
        """``ServerSocket.received``: what is there already, without waiting."""
        data, self.waiting = self.waiting, None
        return data

    async def recv(self, size: int) -> bytes:
        await curio.sleep(0.05)
        return await super().recv(size)

    async def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        await super().sendall(data)


def _h2_reads(requests: int) -> list[bytes]:
    """An HTTP/2 client's bytes, one entry a write: its preface and SETTINGS, each GET on
    a new stream, then its GOAWAY."""
    import h2.config
    import h2.connection

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    reads = [client.data_to_send()]
    for stream_id in range(1, 2 * requests, 2):
        client.send_headers(stream_id, [(":method", "GET"), (":scheme", "https"),
                                        (":authority", "x"), (":path", "/")], end_stream=True)
        reads.append(client.data_to_send())
    client.close_connection()
    return [*reads, client.data_to_send()]


def _client() -> tuple[bytes, bytes]:
    """A client's first bytes (preface, SETTINGS, a GET), and its GOAWAY."""
    preface, get, goaway = _h2_reads(1)
    return preface + get, goaway


def _paced(waiting: bool) -> PacedSock:
    first, goaway = _client()
    sock = PacedSock(first if waiting else None, [goaway] if waiting else [first, goaway])
    _run(sock, H2Protocol)
    return sock


SETTINGS_HEAD = b"\x04\x00\x00\x00\x00\x00"  # type, flags and stream 0 of our SETTINGS


def test_a_first_request_already_here_is_answered_in_the_write_of_our_preface() -> None:
    sock = _paced(waiting=True)
    assert sock.writes[0][3:9] == SETTINGS_HEAD  # the server preface still comes first
    assert sock.writes[0].endswith(b"ok")  # and the answer with it, in one write


def test_our_preface_goes_at_once_when_the_client_has_sent_nothing_yet() -> None:
    sock = _paced(waiting=False)
    assert sock.writes[0][3:9] == SETTINGS_HEAD
    assert b"ok" not in sock.writes[0]  # written before the request was read
    assert sock.sent.endswith(b"ok")


def test_a_client_gone_before_the_first_read_ends_the_connection() -> None:
    sock = PacedSock(b"", [])
    conn = _run(sock, H2Protocol)
    assert conn.closed and conn.lost
    assert sock.writes == []  # nobody to send our preface to


async def _waits(request: Any, response: Any) -> None:
    await curio.sleep(0.01)  # the answer waits: the runner's task is the request's now
    await response.send(b"ok")


@pytest.mark.parametrize("handler", [_handler, _waits], ids=["at-once", "waits"])
def test_a_finished_connection_is_freed_without_the_cycle_collector(handler: Any) -> None:
    """A reference cycle would keep a closed connection, its TLS state included, until
    the cyclic collector's next full pass: all of it must go when the last reference
    does."""
    import gc
    import weakref

    first, goaway = _client()
    sock = PacedSock(first, [goaway])
    refs: list[Any] = []

    async def main() -> None:
        conn = Connection(sock, ("127.0.0.1", 1), handler, ConnectionConfig(), H2Protocol)
        refs.extend([weakref.ref(conn), weakref.ref(conn.proto), weakref.ref(conn.runner)])
        if tuning.ENABLED:  # h2's own keeps bound methods of itself: a cycle of its own
            refs.append(weakref.ref(conn.proto.h2))
        async with curio.timeout_after(3):
            await conn.run()

    gc.collect()
    gc.disable()
    try:
        curio.run(main)
        assert sock.sent.endswith(b"ok")
        assert [ref() for ref in refs] == [None] * len(refs)
    finally:
        gc.enable()


def _flood(protocol: type) -> list[bytes]:
    """A client whose every read is ready at once: 40 requests, one a read, then its
    goodbye (HTTP/2: the preface, each request on a new stream; then GOAWAY)."""
    if protocol is H11Protocol:
        return [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"] * 40
    return _h2_reads(40)


class FloodSock(Sock):
    """``Sock`` whose reads never wait (the last is the peer's close)."""

    def received(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    async def recv(self, size: int) -> bytes:
        return self.received(size)


@pytest.mark.parametrize("protocol", [H11Protocol, H2Protocol], ids=["http1", "http2"])
def test_a_connection_whose_reads_never_wait_still_lets_others_run(protocol: type) -> None:
    """curio switches tasks only when an operation waits: a connection that always finds
    bytes to read yields every few batches, so other connections (here, a task counting
    what it sees) are never starved."""
    answered: list[int] = []

    async def handler(request: Any, response: Any) -> None:
        answered.append(1)
        await response.send(b"ok")

    conn = Connection(FloodSock(_flood(protocol)), ("127.0.0.1", 1), handler,
                      ConnectionConfig(), protocol)
    seen: list[int] = []

    async def other() -> None:
        while True:
            seen.append(len(answered))
            await curio.sleep(0)

    async def main() -> None:
        watcher = await curio.spawn(other)
        async with curio.timeout_after(3):
            await conn.run()
        await watcher.cancel()

    curio.run(main)
    assert len(answered) == 40
    steps = [later - earlier for earlier, later in zip(seen, seen[1:], strict=False)]
    assert seen[-1] == 40 and max(steps) <= 4 * 2, seen  # a turn every few batches

"""``ServerSocket.recv`` and ``sendall`` wait for the socket without keeping the "would
block" error: a connection holds no exception, traceback or ``ssl`` frames while it
sleeps or waits for a slow reader."""

from __future__ import annotations

import gc
import selectors
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hyper2web._curio import curio
from hyper2web.server.sockets import ServerSocket
from tests.server.apps import make_app
from tests.server.h2client import H2Client
from tests.server.test_cork import big_download, writing_connection


def raised_and_kept(kind: type) -> int:
    """Live exceptions of ``kind`` that were raised (they carry a traceback)."""
    return sum(1 for obj in gc.get_objects()
               if type(obj) is kind and obj.__traceback__ is not None)


def test_idle_connections_keep_no_would_block_error(server: Any) -> None:
    clients = [H2Client(server.port, handshake=True) for _ in range(5)]
    try:
        for client in clients:
            assert client.get("/index.html").status == 200
        time.sleep(0.3)  # every connection is back to waiting for its client
        # curio's own Socket.recv would keep one SSLWantReadError per idle connection.
        assert raised_and_kept(ssl.SSLWantReadError) == 0
    finally:
        for client in clients:
            client.close()


def test_a_write_blocked_by_a_slow_reader_keeps_no_error(server: Any) -> None:
    client, sid = big_download(server.port)
    with client:
        writing_connection(server.port, client.sock)  # its buffers are full: sendall waits
        # curio's own sendall would keep the SSLWantWriteError that made it wait.
        assert raised_and_kept(ssl.SSLWantWriteError) == 0
        client.keep_body = False
        assert client.wait(sid, timeout=60).status == 200


@pytest.fixture
def ready_fd() -> Iterator[int]:
    """A descriptor that is readable and writable at once: no wait on it lasts."""
    left, right = socket.socketpair()
    right.send(b"!")
    yield left.fileno()
    left.close()
    right.close()


class Scripted:
    """A non-blocking socket that answers ``recv`` from a script of results."""

    def __init__(self, script: list[Any], fd: int) -> None:
        self.script = script
        self.fd = fd
        self.sent = b""

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return self.fd

    def send(self, data: Any, flags: int = 0) -> int:
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        self.sent += bytes(data[:step])
        return min(step, len(data))

    def recv(self, size: int, flags: int = 0) -> bytes:
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


@pytest.mark.parametrize("error", [BlockingIOError(), ssl.SSLWantReadError(),
                                   ssl.SSLWantWriteError(), InterruptedError()],
                         ids=["blocking", "want-read", "want-write", "interrupted"])
def test_recv_waits_then_reads(error: BaseException, ready_fd: int) -> None:
    """Each "not now" waits for the socket (readable or, for TLS, writable) and tries
    again; the bytes come back as they are."""
    sock = ServerSocket(Scripted([error, error, b"data", b""], ready_fd))

    async def main() -> list[bytes]:
        return [await sock.recv(100), await sock.recv(100)]

    assert curio.run(main) == [b"data", b""]


def test_recv_raises_real_errors(ready_fd: int) -> None:
    sock = ServerSocket(Scripted([ConnectionResetError()], ready_fd))
    with pytest.raises(ConnectionResetError):
        curio.run(sock.recv, 100)


@pytest.mark.parametrize("error", [BlockingIOError(), ssl.SSLWantWriteError(),
                                   ssl.SSLWantReadError()],
                         ids=["blocking", "want-write", "want-read"])
def test_sendall_sends_everything_in_order(error: BaseException, ready_fd: int) -> None:
    raw = Scripted([3, error, 2, error, error, 100], ready_fd)
    curio.run(ServerSocket(raw).sendall, b"0123456789")
    assert raw.sent == b"0123456789"


def test_a_cancelled_sendall_says_how_much_went_out() -> None:
    left, right = socket.socketpair()
    try:
        left.setblocking(False)
        while True:  # fill ``left``'s buffers: the wait for room lasts
            try:
                left.send(b"x" * 65536)
            except BlockingIOError:
                break
        raw = Scripted([4, BlockingIOError()], left.fileno())
        sock = ServerSocket(raw)

        async def main() -> int:
            task = await curio.spawn(sock.sendall, b"0123456789")
            await curio.sleep(0.05)
            await task.cancel()
            error = task.exception
            assert isinstance(error, curio.CancelledError)
            return int(error.bytes_sent)

        assert curio.run(main) == 4 and raw.sent == b"0123"
    finally:
        left.close()
        right.close()


class CountingSelector(selectors.DefaultSelector):
    """The kernel's selector, counting how often a descriptor is registered anew."""

    def __init__(self) -> None:
        super().__init__()
        self.registered: list[int] = []

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        self.registered.append(fileobj if isinstance(fileobj, int) else fileobj.fileno())
        return super().register(fileobj, events, data)


def test_a_connection_read_again_and_again_stays_registered() -> None:
    """Waiting on the same object each time, a busy connection's reads cost the selector
    nothing after the first: curio re-registers a bare descriptor for every wait."""
    left, right = socket.socketpair()
    left.setblocking(False)
    selector = CountingSelector()

    async def main() -> list[bytes]:
        sock = ServerSocket(left)

        async def feed() -> None:
            for _ in range(5):
                await curio.sleep(0.01)
                right.send(b"x")

        feeder = await curio.spawn(feed)
        got = [await sock.recv(10) for _ in range(5)]
        await feeder.join()
        return got

    try:
        assert curio.run(main, selector=selector) == [b"x"] * 5
        assert selector.registered.count(left.fileno()) == 1
    finally:
        left.close()
        right.close()


def test_a_busy_http2_connection_stays_registered(serve_app: Any, big_site: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two batches of requests the read loop waits for the socket again, and the
    runner answers meanwhile: no yield in between drops the socket from the selector."""
    selectors_made: list[CountingSelector] = []

    def counting() -> CountingSelector:
        selectors_made.append(CountingSelector())
        return selectors_made[-1]

    monkeypatch.setattr(curio.kernel, "DefaultSelector", counting)
    running = serve_app(make_app(big_site.root))
    with H2Client(running.port, handshake=True) as client:
        assert client.get("/index.html").status == 200
        before = len(selectors_made[0].registered)
        for _ in range(20):
            assert client.get("/index.html").status == 200
        # A yield after each batch made it once a request: 20.
        assert len(selectors_made[0].registered) - before <= 1


def test_what_is_there_is_read_without_waiting_and_nothing_means_wait_first() -> None:
    """``received`` gives what the peer sent already; when nothing is there the next
    ``recv`` waits for the socket before it reads, without a read that would only fail."""
    left, right = socket.socketpair()
    left.setblocking(False)
    right.send(b"early")
    sock = ServerSocket(left)
    assert sock.received(10) == b"early"
    assert sock.received(10) is None
    reads: list[int] = []
    read = sock._recv_now

    def counted(size: int, flags: int = 0) -> bytes:
        reads.append(size)
        return read(size, flags)

    sock._recv_now = counted  # type: ignore[method-assign]

    async def main() -> bytes:
        async def feed() -> None:
            await curio.sleep(0.01)
            right.send(b"later")

        feeder = await curio.spawn(feed)
        data = await sock.recv(10)
        await feeder.join()
        return data

    try:
        assert curio.run(main) == b"later" and len(reads) == 1
    finally:
        left.close()
        right.close()

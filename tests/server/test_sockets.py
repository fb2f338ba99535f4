"""``ServerSocket.recv`` waits for the socket without keeping the "would block" error: an
idle connection holds no exception, traceback or ``ssl`` frames while it sleeps."""

from __future__ import annotations

import gc
import socket
import ssl
import time
from typing import Any

import pytest

from hyper2web._curio import curio
from hyper2web.server.sockets import ServerSocket
from tests.server.h2client import H2Client


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


class Scripted:
    """A non-blocking socket that answers ``recv`` from a script of results."""

    def __init__(self, script: list[Any], fd: int) -> None:
        self.script = script
        self.fd = fd

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return self.fd

    def send(self, data: bytes, flags: int = 0) -> int:
        return len(data)

    def recv(self, size: int, flags: int = 0) -> bytes:
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


@pytest.mark.parametrize("error", [BlockingIOError(), ssl.SSLWantReadError(),
                                   ssl.SSLWantWriteError(), InterruptedError()],
                         ids=["blocking", "want-read", "want-write", "interrupted"])
def test_recv_waits_then_reads(error: BaseException) -> None:
    """Each "not now" waits for the socket (readable or, for TLS, writable) and tries
    again; the bytes come back as they are."""
    left, right = socket.socketpair()
    try:
        right.send(b"!")  # ``left`` is readable and writable: no wait lasts
        sock = ServerSocket(Scripted([error, error, b"data", b""], left.fileno()))

        async def main() -> list[bytes]:
            return [await sock.recv(100), await sock.recv(100)]

        assert curio.run(main) == [b"data", b""]
    finally:
        left.close()
        right.close()


def test_recv_raises_real_errors() -> None:
    left, right = socket.socketpair()
    try:
        sock = ServerSocket(Scripted([ConnectionResetError()], left.fileno()))
        with pytest.raises(ConnectionResetError):
            curio.run(sock.recv, 100)
    finally:
        left.close()
        right.close()

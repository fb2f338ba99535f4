"""The curio socket a client's connection is read and written through.

curio's ``Socket.recv`` and ``sendall`` wait for the socket inside the ``except`` clause
that caught "would block". While a coroutine waits there, Python keeps that exception as
the one being handled, and with it its traceback and the ``ssl`` frames the traceback
holds: about 1 KB for every idle connection (tracemalloc over 1,000 of them), and as much
for every one whose client reads slowly. Here the waits come after the clause has ended,
so nothing is kept while a connection sleeps. They are the traps curio's own methods use;
curio's ``traps`` module offers its traps for making new primitives like these.

They wait on a ``FileNo``, not on the bare descriptor: curio leaves a task registered
with its selector between two waits on the same object (the next read of a busy
connection then costs no ``epoll_ctl``), but never for a bare integer, which could be
closed and reused meanwhile.
"""

from __future__ import annotations

import ssl
from typing import Any

from .._curio import curio

_read_wait = curio.traps._read_wait
_write_wait = curio.traps._write_wait
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)
_NO_ROOM = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError)


class FileNo:
    """A descriptor as an object with ``fileno()``: what the selector is given to wait on."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


class ServerSocket(curio.io.Socket):
    """``curio.io.Socket`` whose ``recv`` and ``sendall`` keep no exception while they
    wait."""

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self._recv_now = sock.recv
        self._send_now = sock.send
        self._fd = FileNo(sock.fileno())
        self._empty = False  # a read just found nothing: the next one waits first

    def received(self, maxsize: int) -> bytes | None:
        """What the peer has sent already, without waiting; None when nothing is there
        (the next ``recv`` then waits before it reads: trying again at once would only
        fail again)."""
        try:
            data: bytes = self._recv_now(maxsize)
            return data
        except _WOULD_BLOCK:
            # TLS holds nothing decoded (read-ahead is off): only new bytes can help.
            self._empty = True
        except ssl.SSLWantWriteError:
            pass
        return None

    async def recv(self, maxsize: int, flags: int = 0) -> bytes:
        if self._empty:
            self._empty = False
            await _read_wait(self._fd)
        while True:
            try:
                data: bytes = self._recv_now(maxsize, flags)
                return data
            except _WOULD_BLOCK:
                wait = _read_wait
            except ssl.SSLWantWriteError:  # TLS must write before it can read on
                wait = _write_wait
            await wait(self._fd)

    async def sendall(self, data: Any, flags: int = 0) -> None:
        """Send all of ``data``. Cancelled, the error says how much went out
        (``bytes_sent``), as curio's does."""
        with memoryview(data).cast("B") as buffer:
            sent = 0
            try:
                while sent < len(buffer):
                    try:
                        sent += self._send_now(buffer[sent:], flags)
                        continue
                    except _NO_ROOM:
                        wait = _write_wait
                    except ssl.SSLWantReadError:  # TLS must read before it can write on
                        wait = _read_wait
                    await wait(self._fd)
            except curio.CancelledError as exc:
                exc.bytes_sent = sent
                raise

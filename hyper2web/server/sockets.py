"""The curio socket a client's connection is read through.

curio's ``Socket.recv`` waits for the socket inside the ``except`` clause that caught
"would block". While a coroutine waits there, Python keeps that exception as the one
being handled, and with it its traceback and the ``ssl`` frames the traceback holds:
about 1.5 KB for every idle connection (tracemalloc over 1,000 of them). ``recv`` here
waits after the clause has ended, so nothing is kept while the connection sleeps. The
wait is the trap curio's own ``recv`` uses; curio's ``traps`` module offers its traps
for making new primitives like this one.
"""

from __future__ import annotations

import ssl
from typing import Any

from .._curio import curio

_read_wait = curio.traps._read_wait
_write_wait = curio.traps._write_wait
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)


class ServerSocket(curio.io.Socket):
    """``curio.io.Socket`` whose ``recv`` keeps no exception while it waits."""

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self._recv_now = sock.recv
        self._fd = sock.fileno()

    async def recv(self, maxsize: int, flags: int = 0) -> bytes:
        while True:
            try:
                data: bytes = self._recv_now(maxsize, flags)
                return data
            except _WOULD_BLOCK:
                wait = _read_wait
            except ssl.SSLWantWriteError:  # TLS must write before it can read on
                wait = _write_wait
            await wait(self._fd)

"""Streamed request bodies: pieces handed to the handler as it reads them.

The body of a ``stream=True`` route is not taken in when it arrives, as other bodies are,
but when the handler reads it: over HTTP/2 its DATA frames are acknowledged only then, so
the client's window opens only as fast as the handler reads and an upload of any size
holds at most one window (1 MiB) here; over HTTP/1.1 the connection stops reading the
socket while ``HOLD_AT`` bytes wait (``held``), and TCP holds the client back.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from .._curio import curio
from ..exceptions import HTTPError, StreamClosed

HOLD_AT = 1024 * 1024  # bytes waiting for the handler past which HTTP/1.1 stops reading


class Acknowledger(Protocol):
    """What the connection offers a body source: give the window back, and flush."""

    async def consumed(self, stream_id: int, size: int) -> None: ...


class StreamedBody:
    """The ``BodySource`` of one request whose body is streamed (either protocol)."""

    __slots__ = ("stream_id", "_conn", "_chunks", "_ended", "_error", "_event", "timeout",
                 "held")

    def __init__(self, conn: Acknowledger, stream_id: int, timeout: float | None) -> None:
        self.stream_id = stream_id
        self._conn = conn
        self._chunks: deque[bytes] = deque()
        self._ended = False
        self._error: BaseException | None = None
        self._event: Any = None
        self.timeout = timeout
        self.held = 0  # bytes received, not yet read by the handler

    # -- the connection's side ----------------------------------------------------------

    async def push(self, data: bytes) -> None:
        self._chunks.append(data)
        self.held += len(data)
        await self._wake()

    async def end(self) -> None:
        self._ended = True
        await self._wake()

    async def fail(self, error: BaseException) -> None:
        self._error = error
        await self._wake()

    def drop(self) -> int:
        """Forget what the handler did not read; returns how many bytes that was."""
        held, self.held = self.held, 0
        self._chunks.clear()
        return held

    async def _wake(self) -> None:
        if self._event is not None:
            await self._event.set()

    # -- the handler's side -------------------------------------------------------------

    async def read(self) -> bytes:
        """The next chunk; ``b""`` at the end; 408 when the client sends nothing in time."""
        while True:
            if self._error is not None:
                raise self._error
            if self._chunks:
                break
            if self._ended:
                return b""
            self._event = event = curio.Event()
            try:
                if self.timeout is None:  # a tunnel (WebSocket): quiet as long as it likes
                    await event.wait()
                    continue
                async with curio.ignore_after(self.timeout) as waited:
                    await event.wait()
            finally:
                self._event = None
            if waited.expired:
                raise HTTPError(408, f"the request body made no progress for {self.timeout:g} s")
        chunk = self._chunks.popleft()
        self.held -= len(chunk)
        await self._conn.consumed(self.stream_id, len(chunk))
        return chunk


def closed_error(stream_id: int) -> StreamClosed:
    return StreamClosed(f"stream {stream_id} reset by the client during its body")

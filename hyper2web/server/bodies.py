"""Streamed request bodies over HTTP/2: DATA frames handed to the handler as it reads them.

The frames of a ``stream=True`` route are not acknowledged when they arrive, as other
bodies are, but when the handler takes them: the client's window then opens only as fast
as the handler reads, so an upload of any size holds at most one window (1 MiB) here.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from .._curio import curio
from ..exceptions import HTTPError, StreamClosed


class Acknowledger(Protocol):
    """What the connection offers a body source: give the window back, and flush."""

    async def consumed(self, stream_id: int, size: int) -> None: ...


class H2BodySource:
    """The ``BodySource`` of one HTTP/2 request whose body is streamed."""

    __slots__ = ("stream_id", "_conn", "_chunks", "_ended", "_error", "_event", "timeout",
                 "held")

    def __init__(self, conn: Acknowledger, stream_id: int, timeout: float) -> None:
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

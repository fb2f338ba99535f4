"""Request bodies coming in: buffered within the limits, streamed, or refused.

Every received body byte is taken in at once (and, over HTTP/2, acknowledged), so uploads
never stall; what one connection and the whole process buffer is bounded instead (413,
503), and a body that stops moving gets 408. A ``stream=True`` route's body is taken as
its handler reads it (``bodies``): that is its back-pressure, HTTP/2's windows or, over
HTTP/1.1, a socket not read. ``BodyIntake`` is a part of ``Connection``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .bodies import HOLD_AT
from .config import ConnectionConfig
from .protocol import BodyReceived
from .protocol.events import NO_ERROR

if TYPE_CHECKING:
    from .stream_state import StreamState

log = logging.getLogger("hyper2web.server")


class BodyIntake:
    """The request-body half of ``Connection``."""

    proto: Any
    config: ConnectionConfig
    streams: dict[int, StreamState]
    buffered: int
    _uploads: set[StreamState]
    _swept: float
    _arrived: float

    if TYPE_CHECKING:  # provided by Connection and its other parts
        @property
        def peer(self) -> str: ...

        async def flush(self) -> None: ...

        async def wake_writer(self) -> None: ...

        async def _wake_reader(self) -> None: ...

    def _held_back(self) -> bool:
        """HTTP/1.1: a streamed body's handler has ``HOLD_AT`` bytes still to read."""
        if self.proto.flow_controlled:
            return False
        return any(s.source is not None and s.source.held >= HOLD_AT
                   for s in self.streams.values())

    async def _on_body(self, event: BodyReceived) -> None:
        sid = event.stream_id
        size = len(event.data)
        state = self.streams.get(sid)
        if state is not None and state.source is not None:
            # Taken as the handler reads it (padding at once): the back-pressure of a
            # streamed upload.
            self.proto.ack(event.flow - size, sid)
            self.config.bodies.used += size  # held until read: part of the process's budget
            await state.source.push(event.data)
            return
        # Take every piece in at once, even on a stream we refused, or the connection
        # window shrinks until the peer can send nothing at all.
        self.proto.ack(event.flow, sid)
        if state is None:
            return
        state.size += size
        # Every piece is taken at once, so flow control never holds a client back: bound
        # what one connection may have buffered across all its streams too, and what all
        # connections of the process hold together.
        if state.size > self.config.max_body_size or \
                self.buffered + size > 2 * self.config.max_body_size:
            self._refuse_too_large(state)
            return
        bodies = self.config.bodies
        if not bodies.fits(size):
            log.info("%s: request bodies buffered by all connections reached %d bytes; "
                     "503 for stream %d", self.peer, bodies.limit, sid)
            self._refuse_body(state, 503, b"server busy: too many uploads at once\n",
                              stop=False)
            return
        state.body.append(event.data)
        state.progress = self._arrived
        self.buffered += size
        bodies.used += size

    def _end_streamed_body(self, state: StreamState) -> None:
        """The handler is done: give back the window of what it left unread, and stop a
        body still arriving (RST_STREAM NO_ERROR once the response is complete)."""
        self._release_source(state)
        if not state.ended and not state.closed:
            self.proto.reset(state.stream_id, NO_ERROR)

    def _release_source(self, state: StreamState) -> None:
        """Forget what a streamed body's handler left unread: out of the process's budget,
        its windows given back."""
        assert state.source is not None
        left = state.source.drop()
        if left:
            self.proto.ack(left, state.stream_id)
            self.config.bodies.used -= left

    async def consumed(self, stream_id: int, size: int) -> None:
        """A streamed body's handler took ``size`` bytes: open the windows by as much."""
        self.config.bodies.used -= size
        self.proto.ack(size, stream_id)
        await self.wake_writer()
        if not self.proto.flow_controlled:
            await self._wake_reader()  # HTTP/1.1 may read again

    async def _sweep_uploads(self) -> None:
        """Answer 408 to request bodies that made no progress for ``body_timeout``.

        A client that opens a request and never finishes its body would otherwise hold
        its buffer, and the connection, forever.
        """
        now = self._swept = time.monotonic()
        limit = self.config.body_timeout
        stalled = [s for s in self._uploads if now - s.progress > limit]
        if stalled:
            log.info("%s: %d request bod%s made no progress for %g s; 408", self.peer,
                     len(stalled), "y" if len(stalled) == 1 else "ies", limit)
        for state in stalled:
            self._refuse_body(state, 408, b"request body timed out\n")
        if stalled:
            await self.flush()

    def _refuse_too_large(self, state: StreamState) -> None:
        """413 before the body is read, and the upload stopped."""
        self._refuse_body(state, 413, b"request body too large\n")
        log.info("%s: refused a request body over %d bytes", self.peer,
                 self.config.max_body_size)

    def _refuse_body(self, state: StreamState, status: int, body: bytes,
                     extra: Any = (), *, stop: bool = True) -> None:
        """``status`` before the body is read (see ``H2Protocol.refuse`` for ``stop``)."""
        self._uploads.discard(state)
        self._drop_body(state)
        # Forget the stream: body still in flight for it is only taken in and dropped.
        self.streams.pop(state.stream_id, None)
        self.proto.refuse(state.stream_id, status, body, extra, stop=stop)

    def _drop_body(self, state: StreamState) -> None:
        """Forget what a request body buffered, in the budgets' counts too."""
        size = sum(len(chunk) for chunk in state.body)
        self.buffered -= size
        self.config.bodies.used -= size
        state.body = []

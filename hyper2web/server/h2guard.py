"""What keeps one HTTP/2 client from costing everyone else: refusals and budgets.

Bodies refused before they are read (413, 503, 405, 408 for a stalled one), frames that
move nothing forward counted against a budget, GOAWAY ENHANCE_YOUR_CALM past it, and the
short linger that lets that GOAWAY reach the client. ``H2Guards`` is a part of
``H2Connection``; the budgets themselves are in ``limits``.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import h2.connection
import h2.errors
import h2.exceptions

from .._curio import curio
from .config import READ_SIZE, ConnectionConfig
from .limits import RateBudget

if TYPE_CHECKING:
    from .h2stream import _StreamState

log = logging.getLogger("hyper2web.server")

# After an error GOAWAY, what the peer still sends is read and dropped for this long (and
# up to this many bytes) before the socket closes: see ``_linger``.
LINGER_SECONDS = 0.1
LINGER_BYTES = 4 * 1024 * 1024


class H2Guards:
    """Refusals, budgets and the calm-down of ``H2Connection``."""

    h2: Any
    sock: Any
    config: ConnectionConfig
    streams: dict[int, Any]
    lost: bool
    buffered: int
    _uploads: set[Any]
    _swept: float
    _arrived: float
    _idle_frames: RateBudget
    _resets: RateBudget
    _calm: str | None
    _ended: list[Any]
    closed: bool

    if TYPE_CHECKING:  # provided by H2Connection and its other parts
        @property
        def peer(self) -> str:
            ...

        def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
            ...

        async def wake_writer(self) -> None:
            ...

        async def flush(self) -> None:
            ...

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
            await self._refuse_body(state, 408, b"request body timed out\n")

    def _ack(self, size: int, stream_id: int) -> None:
        if size:
            try:
                self.h2.acknowledge_received_data(size, stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass

    async def consumed(self, stream_id: int, size: int) -> None:
        """A streamed body's handler took ``size`` bytes: open the windows by as much."""
        self.config.bodies.used -= size
        self._ack(size, stream_id)
        await self.wake_writer()

    def _spend_reset(self, by_client: bool) -> bool:
        """Count one stream reset (by the client, or by us for a malformed request) against
        the budget; True for the first few of a connection, which are worth a log line."""
        if not self._resets.spend(self._arrived) and self._calm is None:
            self._calm = (f"{self._resets.total} streams reset"
                          f"{' by the client' if by_client else ''}, over "
                          f"{self._resets.limit} a second"
                          f"{' (rapid reset)' if by_client else ''}")
        return self._resets.total <= 3

    def _idle_frame(self) -> None:
        """Count a frame that carries no request forward; past the budget, calm down."""
        if not self._idle_frames.spend(self._arrived) and self._calm is None:
            self._calm = (f"over {self._idle_frames.limit} frames a second that carry no "
                          "request (PING, SETTINGS, PRIORITY, empty DATA, WINDOW_UPDATE)")

    async def _enhance_your_calm(self) -> None:
        """GOAWAY ENHANCE_YOUR_CALM and close: one log line for the whole connection."""
        log.info("%s: %s; GOAWAY ENHANCE_YOUR_CALM", self.peer, self._calm)
        self._ended.clear()
        if self.h2.state_machine.state is not h2.connection.ConnectionState.CLOSED:
            self.h2.close_connection(error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.closed = True  # handlers still running stop at their next send
        await self.flush()
        await self._linger()

    async def _linger(self) -> None:
        """Read and drop what the peer still sends, briefly, before the socket closes.

        Closing a socket that holds unread data makes the kernel answer with a TCP reset,
        which can destroy the GOAWAY still on its way: the client would never learn why.
        The sending side is shut first, so the client sees the end right after the GOAWAY;
        the reading is bounded in time and bytes, so an attacker cannot hold anything.
        """
        if self.lost:
            return
        dropped = 0
        try:
            # Drops TLS on our side too: what is read from here on is dropped unread.
            await self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        try:
            async with curio.ignore_after(LINGER_SECONDS):
                while dropped < LINGER_BYTES:
                    data = await self.sock.recv(READ_SIZE)
                    if not data:
                        return
                    dropped += len(data)
        except OSError:
            pass

    async def _refuse_too_large(self, state: _StreamState) -> None:
        """413 before the body is read, then RST_STREAM(NO_ERROR) to stop the upload."""
        await self._refuse_body(state, 413, b"request body too large\n")
        log.info("%s: refused a request body over %d bytes", self.peer,
                 self.config.max_body_size)

    async def _refuse_body(self, state: _StreamState, status: int, body: bytes,
                           extra: Sequence[tuple[str, str]] = (), *, stop: bool = True) -> None:
        """``status`` before the body is read; with ``stop``, RST_STREAM(NO_ERROR) after it.

        The reset stops the upload at once, as RFC 9113 section 8.1 allows, but some
        clients (curl 7.88, httpx) then drop the response they were sent. So an answer
        the user should see (405, 503) lets the body arrive instead, acknowledged and
        dropped unread, and only a body too large (413) or stalled (408) is stopped.
        """
        state.refused = True
        self._uploads.discard(state)
        self._drop_body(state)
        # Forget the stream: DATA still in flight for it is only acknowledged.
        self.streams.pop(state.stream_id, None)
        sid = state.stream_id
        try:
            if self.h2.local_flow_control_window(sid) < len(body):
                body = b""  # a closed window must not leave the answer unfinished
            self.h2.send_headers(sid, [
                (":status", str(status)), ("content-type", "text/plain; charset=utf-8"),
                ("content-length", str(len(body))), *extra,
            ], end_stream=not body)
            if body:
                self.h2.send_data(sid, body, end_stream=True)
        except h2.exceptions.ProtocolError:
            pass
        # While the request is still open (the client has more to send), this stops the
        # upload; a request that already ended is closed now and needs no reset.
        if stop:
            self._reset(sid, h2.errors.ErrorCodes.NO_ERROR)

    def _drop_body(self, state: _StreamState) -> None:
        """Forget what a stream's request body buffered, in the budgets' counts too."""
        size = sum(len(chunk) for chunk in state.body)
        self.buffered -= size
        self.config.bodies.used -= size
        state.body = []

"""The request side of an HTTP/2 connection: a stream's headers and body -> a request run.

A request's fields are checked and decoded in one pass (``fields``), its body is collected
within the limits (or streamed, ``bodies``), and once complete it becomes a ``Request`` and
``Response`` pair handed to the app's handler through ``EagerDispatch``. ``H2Requests`` is
a part of ``H2Connection``.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

import h2.errors
import h2.events

from ..exceptions import StreamClosed
from ..http import Request, Response, Stream
from .bodies import H2BodySource
from .config import ConnectionConfig, EarlyAnswer, Handler, StreamsBody
from .eager import _MOVE, _resume_in_task
from .fields import MalformedRequest, check_trailers, request_headers
from .h2stream import StreamChannel, _StreamState

if TYPE_CHECKING:
    from .h2 import H2Connection

log = logging.getLogger("hyper2web.server")


class H2Requests:
    """Requests in, handlers run: the request half of ``H2Connection``."""

    h2: Any
    client: tuple[str, int]
    handler: Handler
    config: ConnectionConfig
    early: EarlyAnswer | None
    streams_body: StreamsBody | None
    streams: dict[int, _StreamState]
    closed: bool
    inline: bool
    buffered: int
    goaway_sent_after: int | None
    _arrived: float
    _uploads: set[_StreamState]
    _spawned: bool

    if TYPE_CHECKING:  # provided by H2Connection and its other parts
        @property
        def peer(self) -> str: ...

        def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None: ...

        def _ack(self, size: int, stream_id: int) -> None: ...

        def _idle_frame(self) -> None: ...

        def _spend_reset(self, by_client: bool) -> bool: ...

        def _drop_body(self, state: _StreamState) -> None: ...

        def _step(self, state: _StreamState, job: Coroutine[Any, Any, None]) -> Any: ...

        async def _on_reset(self, stream_id: int) -> None: ...

        async def _refuse_body(self, state: _StreamState, status: int, body: bytes,
                               extra: Any = (), *, stop: bool = True) -> None: ...

        async def _refuse_too_large(self, state: _StreamState) -> None: ...

        async def _hand_to_runner(self, state: _StreamState,
                                  job: Coroutine[Any, Any, None]) -> None: ...

        async def _spawn(self, coro: Coroutine[Any, Any, None]) -> Any: ...

        async def wake_writer(self) -> None: ...

        async def consumed(self, stream_id: int, size: int) -> None: ...

    async def _on_request(self, event: h2.events.RequestReceived) -> None:
        if self.goaway_sent_after is not None and event.stream_id > self.goaway_sent_after:
            # Opened after our GOAWAY crossed it: refused, so the client may retry it on a
            # new connection (RFC 9113 section 8.7).
            self._spend_reset(by_client=False)
            self._reset(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        try:
            headers = request_headers(event.headers)
        except MalformedRequest as exc:
            if self._spend_reset(by_client=False):
                log.info("%s: malformed request on stream %d (%s); reset", self.peer,
                         event.stream_id, exc)
            self._reset(event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        length = headers.get("content-length")
        if event.stream_ended is not None and length not in (None, "0"):
            # No body follows, yet one was announced (RFC 9113 section 8.1.1).
            if self._spend_reset(by_client=False):
                log.info("%s: request on stream %d ended with content-length %s; reset",
                         self.peer, event.stream_id, length)
            self._reset(event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        state = _StreamState(event.stream_id, headers)
        self.streams[event.stream_id] = state
        if event.stream_ended is not None:
            return
        state.progress = self._arrived
        self._uploads.add(state)
        method, path = headers.get(":method", ""), headers.get(":path", "/")
        if self.early is not None:
            answer = self.early(method, path)
            if answer is not None:
                status, extra = answer
                await self._refuse_body(state, status, b"%d\n" % status, extra, stop=False)
                return
        if self.streams_body is not None and self.streams_body(method, path):
            # The handler runs now and reads the body as it arrives (``bodies``).
            state.source = H2BodySource(self, state.stream_id, self.config.body_timeout)
            self._uploads.discard(state)
            await self._dispatch(state)
            return
        if length is not None and length.isdigit() and int(length) > self.config.max_body_size:
            await self._refuse_too_large(state)

    async def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        """Trailers are not passed on, but malformed ones void their request."""
        try:
            check_trailers(event.headers)
        except MalformedRequest as exc:
            log.info("%s: malformed trailers on stream %d (%s); reset", self.peer,
                     event.stream_id, exc)
            await self._on_reset(event.stream_id)
            self._reset(event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)

    async def _on_data(self, event: h2.events.DataReceived) -> None:
        sid = event.stream_id
        size = len(event.data)
        streamed = self.streams.get(sid)
        if streamed is not None and streamed.source is not None and size:
            # Acknowledged as the handler reads it (padding at once): the window is the
            # back-pressure of a streamed upload.
            self._ack(event.flow_controlled_length - size, sid)
            self.config.bodies.used += size  # held until read: part of the process's budget
            await streamed.source.push(event.data)
            return
        # Acknowledge every DATA frame, even on a stream we refused, or the connection
        # window shrinks until the peer can send nothing at all.
        self._ack(event.flow_controlled_length, sid)
        if not size:
            self._idle_frame()  # an empty DATA frame keeps nothing
            return
        state = self.streams.get(sid)
        if state is None or state.refused:
            return
        state.size += size
        # Every DATA frame is acknowledged at once, so flow control never holds a client
        # back: bound what one connection may have buffered across all its streams too,
        # and what all connections of the process hold together.
        if state.size > self.config.max_body_size or \
                self.buffered + size > 2 * self.config.max_body_size:
            await self._refuse_too_large(state)
            return
        bodies = self.config.bodies
        if not bodies.fits(size):
            log.info("%s: request bodies buffered by all connections reached %d bytes; "
                     "503 for stream %d", self.peer, bodies.limit, sid)
            await self._refuse_body(state, 503, b"server busy: too many uploads at once\n",
                                    stop=False)
            return
        state.body.append(event.data)
        state.progress = self._arrived
        self.buffered += size
        bodies.used += size

    async def _dispatch(self, state: _StreamState) -> None:
        body = b"".join(state.body) if state.body else b""
        self.buffered -= len(body)
        self.config.bodies.used -= len(body)
        state.body = []
        stream = Stream(state.stream_id, state.headers, body, state.source)
        request = Request(stream, client=self.client, arrived=self._arrived)
        response = Response(state.stream_id, StreamChannel(cast("H2Connection", self), state),
                            head_only=request.method == "HEAD")
        serving = self._serve(state, request, response)
        if self.closed:
            # The connection failed earlier in this batch: nobody is left to answer.
            serving.close()
            self.streams.pop(state.stream_id, None)
            return
        trap = self._step(state, serving)
        if trap is None:
            return  # answered without ever blocking
        if trap is _MOVE:
            await self._hand_to_runner(state, serving)
        else:
            state.task = await self._spawn(_resume_in_task(serving, trap))
        self._spawned = True

    async def _serve(self, state: _StreamState, request: Request, response: Response) -> None:
        try:
            await self.handler(request, response)
            if not response.finished:
                # The handler layer answers unfinished responses itself; this is the last net.
                self._reset(state.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        except StreamClosed:
            log.debug("%s: stream %d closed before its response ended", self.peer,
                      state.stream_id)
        except (Exception, SystemExit):  # sys.exit() in a handler must not stop the server
            log.exception("%s: unhandled error on stream %d", self.peer, state.stream_id)
            self._reset(state.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        finally:
            self.streams.pop(state.stream_id, None)
            if state.source is not None:
                self._end_streamed_body(state)
            if not self.inline:
                await self.wake_writer()

    def _end_streamed_body(self, state: _StreamState) -> None:
        """The handler is done: give back the window of what it left unread, and stop a
        body still arriving (RST_STREAM NO_ERROR once the response is complete)."""
        source = state.source
        assert source is not None
        left = source.drop()
        if left:
            self._ack(left, state.stream_id)
            self.config.bodies.used -= left
        if not state.ended and not state.closed:
            self._reset(state.stream_id, h2.errors.ErrorCodes.NO_ERROR)

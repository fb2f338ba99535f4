"""One HTTP/2 connection: bytes from the socket -> h2 events -> request tasks -> frames.

h2 owns the protocol state (sans-IO); this module owns the socket and the tasks. It knows
nothing about routing or files: it builds a ``Request``/``Response`` pair per stream and
hands it to the ``handler`` it was given.

Three rules keep it correct and fast:
- a request starts inside the read loop and, the moment it would block (a window to wait
  for, a file read in a thread), goes on in a task of its own from exactly where it
  stopped. User handlers go first to the connection's job runner, one task that runs them
  in turn; one that blocks (sleeps, waits for events) keeps the runner's task as its own.
  A cached file or a quick API answer thus costs no task at all, while a slow handler
  never delays the other streams and a response larger than the flow-control window
  cannot deadlock the loop that reads WINDOW_UPDATEs;
- every write to the socket goes through one lock (``flush``): what the read loop answered
  leaves in one ``sendall`` per batch of received frames, and tasks wake a writer task
  (started on first need) so the frames of many streams leave together too;
- every received DATA frame is acknowledged, so uploads never stall.
"""

from __future__ import annotations

import logging
import socket
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from .._curio import curio
from ..exceptions import StreamClosed
from ..http import Request, Response, Stream
from .bodies import H2BodySource, closed_error
from .fields import MalformedRequest, check_trailers, request_headers
from .limits import BodyBudget, RateBudget
from .stream_errors import StreamError
from .tuning import new_connection, new_settings

log = logging.getLogger("hyper2web.server")

Handler = Callable[[Request, Response], Awaitable[None]]
# ``(method, path) -> (status, headers)`` for a request with a body that nothing could take
# whatever the body (a POST to a static file): answered at headers time, body unread.
EarlyAnswer = Callable[[str, str], "tuple[int, tuple[tuple[str, str], ...]] | None"]
# ``(method, path) -> True`` when the route reads the body as it arrives (``stream=True``).
StreamsBody = Callable[[str, str], bool]

# Above this many unflushed bytes, a sender flushes itself instead of waking the writer:
# that is the back-pressure that keeps a large download from piling up in memory.
FLUSH_THRESHOLD = 64 * 1024
READ_SIZE = 65536
# A connection whose socket always has data yields to other tasks after this many batches.
YIELD_EVERY = 4
TASKS_PRUNE = 64  # finished tasks are dropped from a connection's set past this many
# After an error GOAWAY, what the peer still sends is read and dropped for this long (and
# up to this many bytes) before the socket closes: see ``_linger``.
LINGER_SECONDS = 0.1
LINGER_BYTES = 4 * 1024 * 1024


@dataclass
class ConnectionConfig:
    """Limits of one connection; one object shared by all connections of a server."""

    max_concurrent_streams: int = 128
    max_body_size: int = 64 * 1024 * 1024
    idle_timeout: float = 300.0
    initial_window_size: int = 1024 * 1024
    connection_window_size: int = 16 * 1024 * 1024
    max_header_list_size: int = 64 * 1024
    # Seconds a new connection has to send its first frame (the preface and SETTINGS).
    preface_timeout: float = 10.0
    # Request body bytes buffered across all connections of the process; past it, new
    # bodies get 503. A laptop survives the default.
    max_buffered_bodies: int = 256 * 1024 * 1024
    # Streams the client may reset per second (None: as many as may be open at once);
    # more is "rapid reset" (CVE-2023-44487) and gets GOAWAY ENHANCE_YOUR_CALM.
    max_resets_per_second: int | None = None
    # Frames per second that carry no request forward (PING, SETTINGS, PRIORITY, empty
    # DATA, WINDOW_UPDATE with nothing to send) before ENHANCE_YOUR_CALM.
    max_idle_frames_per_second: int = 1000
    # Seconds a request body may make no progress before 408 and a reset of its stream.
    body_timeout: float = 60.0
    # Seconds a response may wait for the peer (its window closed, or the socket not
    # draining) before it is reset and lets go of its file and buffers.
    send_timeout: float = 60.0
    bodies: BodyBudget = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.bodies = BodyBudget(self.max_buffered_bodies)


class _StreamState:
    __slots__ = ("stream_id", "headers", "body", "size", "task", "closed", "window_event",
                 "refused", "progress", "source", "ended")

    def __init__(self, stream_id: int, headers: dict[str, str]) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.body: list[bytes] = []
        self.size = 0
        self.task: Any = None
        self.closed = False
        self.window_event: Any = None
        self.refused = False
        self.progress = 0.0  # when the request or its body last moved forward
        self.source: H2BodySource | None = None  # set for a streamed body
        self.ended = False  # the client's END_STREAM came


class StreamChannel:
    """The ``Channel`` of one stream: sends its headers and data with flow control."""

    __slots__ = ("_conn", "_state")

    def __init__(self, conn: H2Connection, state: _StreamState) -> None:
        self._conn = conn
        self._state = state

    async def send_head(self, status: int, headers: Sequence[tuple[str, str]],
                        end_stream: bool) -> None:
        conn = self._conn
        self._check_open()
        block = [(":status", str(status))]
        block.extend(headers)
        try:
            conn.h2.send_headers(self._state.stream_id, block, end_stream=end_stream)
        except (h2.exceptions.StreamClosedError, h2.exceptions.StreamIDTooLowError):
            # Reset by the peer, and perhaps already forgotten by h2 (then its id is "too
            # low"): either way nobody is listening.
            raise StreamClosed(f"stream {self._state.stream_id} closed") from None
        if not conn.inline:
            await conn.wake_writer()

    async def send_informational(self, status: int,
                                 headers: Sequence[tuple[str, str]]) -> None:
        """A 1xx HEADERS frame (e.g. 103 Early Hints); the final response follows."""
        await self.send_head(status, headers, False)

    async def send_data(self, data: bytes, end_stream: bool) -> None:
        conn = self._conn
        state = self._state
        sid = state.stream_id
        h2conn = conn.h2
        size = len(data)
        if 0 < size <= h2conn.max_outbound_frame_size and not state.closed \
                and not conn.closed:
            # The common case, a body that fits one frame and the window: no slicing.
            try:
                fits = size <= h2conn.local_flow_control_window(sid)
                if fits:
                    h2conn.send_data(sid, data, end_stream=end_stream)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                raise StreamClosed(f"stream {sid} closed") from None
            if fits:
                await conn.queued(size)
                return
        view = memoryview(data)
        try:
            if not view:
                if end_stream:  # an empty chunk alone sends nothing
                    self._check_open()
                    h2conn.end_stream(sid)
                    await conn.wake_writer()
                return
            while view:
                self._check_open()
                window = h2conn.local_flow_control_window(sid)
                if window < 1:
                    await conn.wait_for_window(state)
                    continue
                size = min(window, h2conn.max_outbound_frame_size, len(view))
                last = end_stream and size == len(view)
                h2conn.send_data(sid, bytes(view[:size]), end_stream=last)
                view = view[size:]
                await conn.queued(size)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            raise StreamClosed(f"stream {sid} closed") from None

    async def own_task(self) -> None:
        await self._conn.leave_read_loop()

    def _check_open(self) -> None:
        if self._state.closed or self._conn.closed:
            raise StreamClosed(f"stream {self._state.stream_id} closed by the peer")


class H2Connection:
    """Serves one TLS connection that negotiated ``h2``."""

    def __init__(self, sock: Any, client: tuple[str, int], handler: Handler,
                 config: ConnectionConfig, early: EarlyAnswer | None = None,
                 streams: StreamsBody | None = None) -> None:
        self.sock = sock
        self.client = client
        self.handler = handler
        self.early = early
        self.streams_body = streams
        self.config = config
        self.h2 = new_connection(
            # Received fields are checked and decoded by ``fields.request_headers`` in one
            # pass (a malformed request resets its stream); sent ones come from Response,
            # which lower-cases names and refuses line breaks in values. So h2's own passes
            # over every field, both ways, are skipped.
            config=h2.config.H2Configuration(client_side=False, header_encoding=None,
                                             validate_inbound_headers=False,
                                             normalize_inbound_headers=False,
                                             validate_outbound_headers=False,
                                             normalize_outbound_headers=False)
        )
        self.streams: dict[int, _StreamState] = {}
        self.closed = False
        self.lost = False  # the socket failed or the peer left: nothing more can be sent
        self.goaway_sent_after: int | None = None  # last stream served once draining
        self._raw_frames: list[bytes] = []  # frames written past h2 (see send_goaway)
        self.unflushed = 0
        self.buffered = 0  # request body bytes held for streams not dispatched yet
        # One sender at a time: ``flush`` marks itself as sending; a second sender waits on
        # an event made only then (an idle connection holds no lock or wait queue).
        self._sending = False
        self._sent: Any = None
        # Bytes a cancelled write left unsent: they go first, so no frame is cut in half.
        self._unsent = b""
        self._batches = 0  # read batches since the read loop last let other tasks run
        self._writer_wake: Any = None  # the writer task and its event, made on first need
        self._tasks: set[Any] | None = None  # tasks of requests and the writer
        # True while the read loop or the job runner runs a request itself: each flushes
        # after its turn, so senders need not wake the writer.
        self.inline = False
        self._spawned = False  # a task was started since the read loop last yielded
        self._arrived = 0.0  # ``time.monotonic()`` when the current batch was read
        # Requests that asked for a task of their own (``leave_read_loop``) wait here for
        # the job runner, a task that runs them one after the other (``_run_jobs``).
        self._jobs: deque[tuple[_StreamState, Coroutine[Any, Any, None]]] | None = None
        self._runner: Any = None
        self._runner_wake: Any = None
        # Requests whose END_STREAM came in the current batch: started once the whole batch
        # is read, so one reset in the same batch ("rapid reset") costs no handler run.
        self._ended: list[_StreamState] = []
        self._resets = RateBudget(config.max_resets_per_second
                                  or config.max_concurrent_streams)
        self._idle_frames = RateBudget(config.max_idle_frames_per_second)
        self._calm: str | None = None  # why the peer is told ENHANCE_YOUR_CALM
        # Requests whose body is still arriving, watched for ``body_timeout``.
        self._uploads: set[_StreamState] = set()
        self._swept = 0.0
        self.sending_since = 0.0  # when the write in progress began; 0: none
        self._task: Any = None  # the task running ``run``, for the watchdog
        self._greeted = False  # the peer's first frames arrived

    # -- life cycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the peer leaves, a protocol error, or shutdown."""
        conn = self.h2
        conn.remote_settings = new_settings(client=True)
        conn.local_settings = new_settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                    self.config.max_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.config.initial_window_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE:
                    self.config.max_header_list_size,
            },
        )
        self._task = await curio.current_task()
        conn.initiate_connection()
        extra = self.config.connection_window_size - 65535
        if extra > 0:
            conn.increment_flow_control_window(extra)
        try:
            await self.flush()
            await self._read_loop()
        except OSError as exc:
            await self._lose(exc)
        except curio.CancelledError:
            if not self.lost:
                raise  # the server stops: not ours to swallow
            # ``abort`` stopped a connection whose peer stopped reading: done.
        finally:
            await self._close()

    @property
    def peer(self) -> str:
        host, port = self.client[0], self.client[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def _read_loop(self) -> None:
        conn = self.h2
        sock = self.sock
        while not self.closed:
            data = None
            try:
                if self._uploads:
                    async with curio.ignore_after(self.config.body_timeout) as stalled:
                        data = await sock.recv(READ_SIZE)
                    if stalled.expired:
                        await self._sweep_uploads()
                        await self.flush()
                        continue
                elif self.streams:
                    data = await sock.recv(READ_SIZE)
                else:
                    # An idle connection (no open stream) is closed after a while, so
                    # clients that connect and go quiet cannot hold sockets forever; one
                    # that never even sends its preface, sooner.
                    limit = self.config.idle_timeout if self._greeted else \
                        self.config.preface_timeout
                    async with curio.ignore_after(limit) as idle:
                        data = await sock.recv(READ_SIZE)
                    if idle.expired:
                        log.debug("%s: %s for %g s, closing", self.peer,
                                  "idle" if self._greeted else "no preface", limit)
                        await self.send_goaway()
                        return
            except OSError as exc:
                await self._lose(exc)
                return
            if not data:
                await self._lose(None)
                return
            self._arrived = time.monotonic()
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                # h2 has queued a GOAWAY with the right error code, except for an invalid
                # connection preface (RFC 9113 section 3.4 lets it be omitted): send one
                # there too, so the client learns why. Then close.
                log.info("%s: HTTP/2 protocol error, closing: %s", self.peer, exc)
                if conn.state_machine.state is not h2.connection.ConnectionState.CLOSED:
                    conn.close_connection(error_code=exc.error_code)
                await self.flush()
                await self._linger()
                return
            self._greeted = True
            for event in events:
                await self._on_event(event)
                if self._calm is not None:
                    await self._enhance_your_calm()
                    return
            if self._uploads and self._arrived - self._swept > 1.0:
                await self._sweep_uploads()
            if self._ended:
                ended, self._ended = self._ended, []
                for state in ended:
                    if not state.closed:
                        await self._dispatch(state)
            if self._oversized_frame_pending():
                log.info("%s: HTTP/2 frame larger than SETTINGS_MAX_FRAME_SIZE, closing",
                         self.peer)
                conn.close_connection(error_code=h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
                await self.flush()
                return
            await self.flush()
            self._batches += 1
            if self._spawned or self._batches >= YIELD_EVERY:
                # curio switches tasks only when an operation would block: yield so a busy
                # connection starves neither the tasks it just started nor the others.
                self._spawned = False
                self._batches = 0
                await curio.sleep(0)

    def _oversized_frame_pending(self) -> bool:
        """True when the incomplete frame h2 is buffering announces an illegal length.

        h2 checks a frame's length only once all of it has arrived, so a peer announcing a
        16 MiB frame would be buffered up to 16 MiB (or wait forever) before its
        FRAME_SIZE_ERROR. Its 9-byte header already tells: refuse it now.
        """
        buffer = self.h2.incoming_buffer
        # Where h2 keeps the bytes of an incomplete frame: ``_data`` (4.2+) or ``data``.
        pending = getattr(buffer, "_data", None)
        if pending is None:
            pending = getattr(buffer, "data", None)
        if not isinstance(pending, (bytes, bytearray)) or len(pending) < 9:
            return False
        return int.from_bytes(pending[:3], "big") > self.h2.max_inbound_frame_size

    async def _on_event(self, event: Any) -> None:
        kind = type(event)
        if kind is h2.events.RequestReceived:
            await self._on_request(event)
        elif kind is h2.events.DataReceived:
            await self._on_data(event)
        elif kind is h2.events.StreamEnded:
            # h2 reports the end of a request here, also when it came with the headers.
            state = self.streams.get(event.stream_id)
            if state is not None and not state.refused:
                state.ended = True
                self._uploads.discard(state)
                if state.source is not None:
                    await state.source.end()  # its handler runs already
                else:
                    self._ended.append(state)
        elif kind is h2.events.StreamReset:
            if not self._resets.spend(self._arrived):
                self._calm = (f"{self._resets.total} streams reset by the client, over "
                              f"{self._resets.limit} a second (rapid reset)")
            await self._on_reset(event.stream_id)
        elif kind is h2.events.TrailersReceived:
            await self._on_trailers(event)
        elif kind is StreamError:
            # Reset by the rules of ``stream_errors``; counted as a reset, so a flood of
            # them is a flood of resets.
            if not self._resets.spend(self._arrived):
                self._calm = (f"{self._resets.total} streams reset, over "
                              f"{self._resets.limit} a second")
            if self._resets.total <= 3:
                log.info("%s: stream %d: %s; reset (%s)", self.peer, event.stream_id,
                         event.reason, event.error_code.name)
            await self._on_reset(event.stream_id)
        elif kind is h2.events.WindowUpdated:
            if not self.streams:
                self._idle_frame()  # nothing is being sent: the update is for nothing
            await self._on_window(event.stream_id)
        elif kind is h2.events.RemoteSettingsChanged:
            self._idle_frame()
            await self._on_window(0)
        elif kind is h2.events.PingReceived:
            self._idle_frame()
        elif kind is h2.events.PriorityUpdated:
            # Priority carried by a request's HEADERS is part of that request; a PRIORITY
            # frame for any other stream moves nothing forward.
            if event.stream_id not in self.streams:
                self._idle_frame()
        elif kind is h2.events.ConnectionTerminated:
            log.debug("%s: GOAWAY from peer (%s)", self.peer, event.error_code)
            self.closed = True

    async def _on_request(self, event: h2.events.RequestReceived) -> None:
        if self.goaway_sent_after is not None and event.stream_id > self.goaway_sent_after:
            # Opened after our GOAWAY crossed it: refused, so the client may retry it on a
            # new connection (RFC 9113 section 8.7).
            self._reset(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        try:
            headers = request_headers(event.headers)
        except MalformedRequest as exc:
            log.info("%s: malformed request on stream %d (%s); reset", self.peer,
                     event.stream_id, exc)
            self._reset(event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        length = headers.get("content-length")
        if event.stream_ended is not None and length not in (None, "0"):
            # No body follows, yet one was announced (RFC 9113 section 8.1.1).
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
        self._ack(size, stream_id)
        await self.wake_writer()

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

    async def _on_reset(self, stream_id: int) -> None:
        state = self.streams.pop(stream_id, None)
        if state is None:
            return
        state.closed = True
        self._uploads.discard(state)
        self._drop_body(state)
        if state.source is not None:
            await state.source.fail(closed_error(stream_id))
        if state.window_event is not None:
            await state.window_event.set()
        if state.task is not None and not state.task.terminated:
            await state.task.cancel(blocking=False)

    async def _on_window(self, stream_id: int) -> None:
        if stream_id == 0:
            for each in list(self.streams.values()):
                if each.window_event is not None:
                    await each.window_event.set()
            return
        state = self.streams.get(stream_id)
        if state is not None and state.window_event is not None:
            await state.window_event.set()

    async def leave_read_loop(self) -> None:
        """When running inside the read loop, go on in a task first.

        The move to a task happens at the first kernel trap; this makes it a harmless one
        that the read loop recognises and answers by handing the request to the job runner.
        A check-then-wait (an ``Event``, the flush turn) must not straddle a move: the
        check would run here, the wait later in the task, and a wake-up in between (the
        rest of the batch, other ready tasks) would find no waiter.
        """
        if self.inline:
            await _move()

    async def wait_for_window(self, state: _StreamState) -> None:
        """Block the sender of one stream until the peer opens its window.

        The event exists before the flush: a WINDOW_UPDATE handled while the flush waits on
        the socket sets it, instead of finding nothing to wake and being lost.
        """
        await self.leave_read_loop()
        state.window_event = event = curio.Event()
        try:
            await self.flush()
            if self.closed or state.closed:
                return  # the sender's next check raises StreamClosed
            if self.h2.local_flow_control_window(state.stream_id) < 1:
                async with curio.ignore_after(self.config.send_timeout) as waited:
                    await event.wait()
                if waited.expired:
                    # The peer stopped reading: let go of the file and buffers.
                    log.info("%s: stream %d waited %g s for the peer to read; reset",
                             self.peer, state.stream_id, self.config.send_timeout)
                    state.closed = True
                    self.streams.pop(state.stream_id, None)
                    self._reset(state.stream_id, h2.errors.ErrorCodes.CANCEL)
                    await self.wake_writer()
        finally:
            state.window_event = None

    # -- requests --------------------------------------------------------------------------

    async def _dispatch(self, state: _StreamState) -> None:
        body = b"".join(state.body) if state.body else b""
        self.buffered -= len(body)
        self.config.bodies.used -= len(body)
        state.body = []
        stream = Stream(state.stream_id, state.headers, body, state.source)
        request = Request(stream, client=self.client, arrived=self._arrived)
        response = Response(state.stream_id, StreamChannel(self, state),
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

    def _step(self, state: _StreamState, job: Coroutine[Any, Any, None]) -> Any:
        """Run ``job`` here until it finishes (``None``) or yields a kernel trap (returned).

        A queued job (one that stopped at ``leave_read_loop``) whose stream was reset, or
        whose connection closed, meanwhile is told so at that point, instead of running
        user code for nobody.
        """
        self.inline = True
        try:
            if state.closed or self.closed:
                return job.throw(StreamClosed(f"stream {state.stream_id} closed by the peer"))
            return job.send(None)
        except StopIteration:
            return None
        except BaseException:  # noqa: B036 - e.g. sys.exit() in a handler: not the loop's end
            log.exception("%s: handler stopped stream %d", self.peer, state.stream_id)
            self.streams.pop(state.stream_id, None)
            self._reset(state.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return None
        finally:
            self.inline = False

    async def _hand_to_runner(self, state: _StreamState,
                              job: Coroutine[Any, Any, None]) -> None:
        """Queue a request for the job runner, starting or waking it.

        Waking one runner per batch costs far less than a task per request, and answers
        that never block (most API handlers) all leave in the runner's one flush.
        """
        if self._jobs is None:
            self._jobs = deque()
            self._runner_wake = curio.Event()
        self._jobs.append((state, job))
        if self._runner is None:
            self._runner = await self._spawn(self._run_jobs())
        elif not self._runner_wake.is_set():
            await self._runner_wake.set()

    async def _run_jobs(self) -> None:
        """The job runner: run queued requests in turn, each until it ends or blocks.

        A job that blocks keeps this task as its own, from the very trap it yielded: its
        check-then-wait stays whole, because nothing else runs between the check and the
        wait (the spawn of the next runner does not switch tasks). A new runner takes over
        the queue.
        """
        me = await curio.current_task()
        jobs, wake = self._jobs, self._runner_wake
        assert jobs is not None and wake is not None
        while True:
            while jobs:
                state, job = jobs.popleft()
                trap = self._step(state, job)
                if trap is None:
                    continue
                self._runner = None
                if jobs:
                    self._runner = await self._spawn(self._run_jobs())
                state.task = me
                # What this turn queued (this job's own head, as an event stream sends it
                # before it waits, or the answers of the jobs before it) must not wait for
                # a later send: the writer flushes it.
                await self.wake_writer()
                await _resume(job, trap)
                return
            await self.flush()  # the answers of this turn leave together
            if not jobs and not self.closed:
                wake.clear()
                await wake.wait()
            if self.closed:
                return

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
        if source.held:
            self._ack(source.held, state.stream_id)
            source.held = 0
        if not state.ended and not state.closed:
            self._reset(state.stream_id, h2.errors.ErrorCodes.NO_ERROR)

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass

    # -- writing ---------------------------------------------------------------------------

    async def queued(self, size: int) -> None:
        """``size`` more body bytes wait in h2: flush them now past the threshold (that is
        the back-pressure of large bodies), else let them leave with the batch."""
        self.unflushed += size
        if self.unflushed >= FLUSH_THRESHOLD:
            await self.flush()
        elif not self.inline:
            await self.wake_writer()

    async def wake_writer(self) -> None:
        """Ask the writer task to flush soon: frames of many streams leave together.

        Inside the read loop there is nothing to do (the loop flushes after the batch). The
        writer task is started by the first request that needs it, so an idle connection
        holds no second task.
        """
        if self.inline:
            return
        if self._writer_wake is None:
            self._writer_wake = curio.Event()
            await self._spawn(self._writer())
        if not self._writer_wake.is_set():
            await self._writer_wake.set()

    async def _writer(self) -> None:
        while True:
            await self._writer_wake.wait()
            self._writer_wake.clear()
            await self.flush()
            if self.lost:
                return

    async def _spawn(self, coro: Coroutine[Any, Any, None]) -> Any:
        """A daemon task of this connection, cancelled by ``_close`` if still running.

        A plain set rather than a ``TaskGroup``: a group's bookkeeping on every task's end
        costs more than the rest of a quick API answer's task. Given a coroutine object,
        not a function: curio makes one from a function through a slower, general path.
        """
        if self._tasks is None:
            self._tasks = set()
        elif len(self._tasks) >= TASKS_PRUNE:
            self._tasks = {task for task in self._tasks if not task.terminated}
        task = await curio.spawn(coro, daemon=True)
        self._tasks.add(task)
        return task

    async def flush(self) -> None:
        """Send everything h2 has queued; the only path that writes to the socket.

        A failed write means the peer is gone: the connection is marked lost (one log line)
        and every sender stops at its next check, instead of each raising its own error.
        """
        if self._sending:
            await self.leave_read_loop()
        while self._sending:
            if self._sent is None:
                self._sent = curio.Event()
            await self._sent.wait()
        self._sending = True
        try:
            data = self.h2.data_to_send()
            if self._unsent:
                data, self._unsent = self._unsent + data, b""
            if self._raw_frames:
                data += b"".join(self._raw_frames)
                self._raw_frames.clear()
            self.unflushed = 0
            if data and not self.lost:
                # Watched by the server's watchdog (``stalled``): a peer that stops reading
                # the socket itself makes this wait for ever.
                self.sending_since = time.monotonic()
                try:
                    await self.sock.sendall(data)
                except OSError as exc:
                    await self._lose(exc)
                except curio.CancelledError as exc:
                    # The sender's stream was reset (or the server stops) mid-write: the
                    # peer may hold part of a frame, and other streams' frames are in
                    # ``data`` too. They go first in the next flush.
                    self._unsent = data[getattr(exc, "bytes_sent", 0):]
                    raise
                finally:
                    self.sending_since = 0.0
        finally:
            self._sending = False
            if self._sent is not None:
                sent, self._sent = self._sent, None
                await sent.set()
            if self._unsent and not self.closed:
                await self.wake_writer()

    async def _lose(self, error: OSError | None) -> None:
        """The socket failed (``error``) or the peer closed it (``None``): stop everything.

        Logged once per connection: at INFO when responses were cut short, since that is
        something a developer may want to know; an idle connection closing is routine.
        """
        if self.lost:
            return
        self.lost = True
        self.closed = True
        unfinished = sum(1 for s in self.streams.values()
                         if s.task is not None and not s.task.terminated)
        if error is None:
            reason = "closed by the client"
        else:
            text = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
            reason = str(text).split(" (_ssl.c:")[0]
        if unfinished:
            log.info("%s: connection lost with %d unfinished response%s (%s)", self.peer,
                     unfinished, "" if unfinished == 1 else "s", reason)
        else:
            log.debug("%s: connection closed (%s)", self.peer, reason)
        await self._wake_senders()

    async def _wake_senders(self) -> None:
        for state in list(self.streams.values()):
            state.closed = True
            if state.window_event is not None:
                await state.window_event.set()

    # -- shutdown --------------------------------------------------------------------------

    async def send_goaway(self) -> None:
        """Tell the peer no new streams will be served; streams in flight may finish.

        The GOAWAY frame is built here rather than by ``h2.close_connection()``: after that
        call h2's connection state machine refuses every frame, so the responses in flight
        could not finish. h2 keeps serving the open streams; the streams the peer opens
        after this point are refused in ``_on_request``.
        """
        if self.closed or self.goaway_sent_after is not None:
            return
        if self.h2.state_machine.state is h2.connection.ConnectionState.CLOSED:
            return  # a GOAWAY already went out (a protocol error) or came in
        last = self.h2.highest_inbound_stream_id
        self.goaway_sent_after = last
        self._raw_frames.append(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())
        await self.flush()

    def stalled(self, now: float) -> bool:
        """True when a write has waited longer than ``send_timeout`` for the peer to read."""
        return bool(self.sending_since) and now - self.sending_since > self.config.send_timeout

    async def abort(self, why: str) -> None:
        """Stop this connection from outside (the watchdog): one log line, then close."""
        if self.lost or self._task is None:
            return
        log.info("%s: %s; closing", self.peer, why)
        self.lost = True
        self.closed = True
        await self._task.cancel(blocking=False)

    def busy(self) -> bool:
        """True while a request is still arriving or its response is being produced."""
        return any(s.task is None or not s.task.terminated for s in self.streams.values())

    async def _close(self) -> None:
        self.closed = True
        # Bodies never dispatched (the peer left mid-upload) leave the process's budget.
        self.config.bodies.used -= self.buffered
        self.buffered = 0
        if self._resets.total and self._calm is None:
            log.debug("%s: %d streams reset by the client", self.peer, self._resets.total)
        await self._wake_senders()
        await self.flush()
        if self._tasks is not None:
            for task in list(self._tasks):
                if not task.terminated:
                    await task.cancel()
            self._tasks = None
        while self._jobs:
            # Requests still queued for the runner learn that their stream is gone.
            state, job = self._jobs.popleft()
            if self._step(state, job) is not None:
                self.inline = True  # nothing may wait while the job unwinds
                try:
                    job.close()
                finally:
                    self.inline = False


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], trap: Any) -> Generator[Any, Any, None]:
    """Drive ``coro`` on from the kernel trap it yielded when it first blocked.

    The read loop ran ``coro`` until it yielded ``trap``; here the trap goes to the kernel
    on behalf of the task this runs in, and every result or exception (a cancellation, a
    timeout) goes back into ``coro``, as if it had run in this task from the start.
    """
    while True:
        try:
            value = yield trap
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: B036 - cancellation must reach the handler
            try:
                trap = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                trap = coro.send(value)
            except StopIteration:
                return


def _trap_of(coro: Coroutine[Any, Any, Any]) -> Any:
    """The kernel trap ``coro`` yields first (``coro`` is then closed unrun)."""
    trap = coro.send(None)
    coro.close()
    return trap


# The trap of ``curio.current_task()``: harmless anywhere, and known by identity to the
# read loop as "go on in a task" (see ``leave_read_loop``).
_MOVE = _trap_of(curio.current_task())


@types.coroutine
def _move() -> Generator[Any, Any, None]:
    yield _MOVE


async def _resume_in_task(coro: Coroutine[Any, Any, None], trap: Any) -> None:
    await _resume(coro, trap)

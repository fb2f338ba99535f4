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
- every received DATA frame is acknowledged, so uploads never stall (a ``stream=True``
  route's body is acknowledged as its handler reads it: that is its back-pressure).

The connection is built from parts, one concern each: ``h2requests`` (a stream's headers
and body -> a request run), ``eager`` (running a request inline until it first waits; the
job runner), ``h2write`` (the one flush path, the writer task, losing the peer),
``h2guard`` (refusals, budgets, ENHANCE_YOUR_CALM) and ``h2stream`` (a stream's state and
its response channel). This module keeps the life cycle: the read loop, the events, the
windows, GOAWAY and closing.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from .._curio import curio
from .bodies import closed_error
from .config import READ_SIZE, ConnectionConfig, EarlyAnswer, Handler, StreamsBody
from .eager import EagerDispatch
from .h2guard import H2Guards
from .h2requests import H2Requests
from .h2stream import StreamChannel, _StreamState
from .h2write import H2Writer
from .limits import RateBudget
from .stream_errors import StreamError
from .tuning import new_connection, new_settings
from .watchdog import Watched

# Names other modules and tests import from here.
__all__ = ["READ_SIZE", "ConnectionConfig", "EarlyAnswer", "H2Connection", "Handler",
           "StreamChannel", "StreamsBody", "_StreamState"]

log = logging.getLogger("hyper2web.server")

# A connection whose socket always has data yields to other tasks after this many batches.
YIELD_EVERY = 4


class H2Connection(H2Requests, EagerDispatch, H2Writer, H2Guards, Watched):
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
        self._headers_priority = 0  # the request whose HEADERS carried priority, just read
        # Requests whose body is still arriving, watched for ``body_timeout``.
        self._uploads: set[_StreamState] = set()
        self._swept = 0.0
        self.sending_since = 0.0  # when the write in progress began; 0: none
        self._task: Any = None  # the task running ``run``, for the watchdog
        self._greeted = False  # the peer's SETTINGS arrived: its preface is complete
        self._born = time.monotonic()

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
                    # The preface is timed as a whole: sent a byte at a time, it still
                    # must be complete within the limit.
                    limit = self.config.idle_timeout if self._greeted else \
                        max(0.0, self._born + self.config.preface_timeout - time.monotonic())
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
                self.closed = True  # handlers still running stop at their next send
                await self.flush()
                await self._linger()
                return
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
            if event.priority_updated is not None:
                self._headers_priority = event.stream_id
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
            self._spend_reset(by_client=True)
            await self._on_reset(event.stream_id)
        elif kind is h2.events.TrailersReceived:
            await self._on_trailers(event)
        elif kind is StreamError:
            # Reset by the rules of ``stream_errors``; counted as a reset, so a flood of
            # them is a flood of resets.
            if self._spend_reset(by_client=False):
                log.info("%s: stream %d: %s; reset (%s)", self.peer, event.stream_id,
                         event.reason, event.error_code.name)
            await self._on_reset(event.stream_id)
        elif kind is h2.events.WindowUpdated:
            if not self.streams:
                self._idle_frame()  # nothing is being sent: the update is for nothing
            await self._on_window(event.stream_id)
        elif kind is h2.events.RemoteSettingsChanged:
            if not self._greeted:
                self._greeted = True  # the client's first SETTINGS: the preface is complete
            else:
                self._idle_frame()
            await self._on_window(0)
        elif kind is h2.events.PingReceived or kind is h2.events.SettingsAcknowledged \
                or kind is h2.events.UnknownFrameReceived:
            self._idle_frame()
        elif kind is h2.events.PriorityUpdated:
            # Priority carried by a request's HEADERS (h2 reports it right after the
            # request) is part of that request; a PRIORITY frame moves nothing forward.
            if event.stream_id == self._headers_priority:
                self._headers_priority = 0
            else:
                self._idle_frame()
        elif kind is h2.events.ConnectionTerminated:
            log.debug("%s: GOAWAY from peer (%s)", self.peer, event.error_code)
            self.closed = True


    async def _on_reset(self, stream_id: int) -> None:
        state = self.streams.pop(stream_id, None)
        if state is None:
            return
        state.closed = True
        self._uploads.discard(state)
        self._drop_body(state)
        if state.source is not None:
            left = state.source.drop()  # never to be read: give its windows back
            if left:
                self._ack(left, stream_id)
                self.config.bodies.used -= left
            await state.source.fail(closed_error(stream_id))
        if state.window_event is not None:
            await state.window_event.set()
        if state.task is not None and not state.task.terminated:
            await state.task.cancel(blocking=False)

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass

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
        if not self.lost:
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


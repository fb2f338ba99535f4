"""The connection driver: one socket, one protocol, the tasks that answer its requests.

The same driver serves HTTP/2 and HTTP/1.1; what differs is the sans-IO protocol object
it is given (``protocol.H2Protocol`` or ``protocol.H11Protocol``). The driver reads, with
the timeouts of ``ConnectionConfig``; hands the bytes to the protocol; turns its events
into ``Request``/``Response`` pairs for the app's handler; keeps request bodies within
the limits (or streams them, ``bodies``); and writes what the protocol queues
(``sending``). Requests run eagerly in the connection's job runner (``eager``).

Every received body byte is taken in at once (and, over HTTP/2, acknowledged), so uploads
never stall; a ``stream=True`` route's body is taken as its handler reads it instead: that
is its back-pressure (HTTP/2's windows, or, over HTTP/1.1, a socket not read).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .._curio import curio
from ..exceptions import ServerStopping, StreamClosed
from ..http import Request, Response, Stream
from .bodies import StreamedBody, closed_error
from .config import READ_SIZE, ConnectionConfig, EarlyAnswer, Handler, StreamsBody
from .eager import JobRunner, end_task
from .intake import BodyIntake
from .protocol import (
    BodyEnded,
    BodyReceived,
    ConnectionEnded,
    Event,
    RequestStarted,
    StreamAborted,
    WindowOpened,
)
from .protocol.events import INTERNAL_ERROR
from .sending import Sender, StreamChannel
from .stream_state import StreamState
from .watchdog import Watched

log = logging.getLogger("hyper2web.server")

# A connection whose socket always has data yields to other tasks after this many batches.
YIELD_EVERY = 4
POLL_CLOSING = 0.5  # HTTP/1.1 reading a streamed body: how often to see if it has ended


class Connection(BodyIntake, Sender, Watched):
    """Serves one TLS connection in the protocol it negotiated."""

    def __init__(self, sock: Any, client: tuple[str, int], handler: Handler,
                 config: ConnectionConfig, protocol: type, early: EarlyAnswer | None = None,
                 streams: StreamsBody | None = None) -> None:
        self.sock = sock
        self.client = client
        self.handler = handler
        self.config = config
        self.early = early
        self.streams_body = streams
        self.proto: Any = protocol(self.peer, config)
        self.runner = JobRunner(self, self.peer)
        # True while the job runner steps a request: it flushes after its turn, so what the
        # request sends need not wake the writer.
        self.inline = False
        self.streams: dict[int, StreamState] = {}
        self.closed = False
        self.lost = False  # the socket failed or the peer left: nothing more can be sent
        self.unflushed = 0
        self.buffered = 0  # request body bytes held for streams not dispatched yet
        self.sending_since = 0.0  # when the write in progress began; 0: none
        self._sending = False  # one sender at a time (``flush``)
        self._sent: Any = None
        self._unsent = b""  # bytes a cancelled write left unsent: they go first
        self._writer_wake: Any = None
        self._tasks: set[Any] | None = None
        self._reader_wake: Any = None  # set when a paused read loop may go on
        self._batches = 0
        self._handed = False  # requests of this batch went to the runner
        self._arrived = 0.0  # ``time.monotonic()`` when the current batch was read
        # Requests complete in the current batch: started once the whole batch is read,
        # so one reset in the same batch ("rapid reset") costs no handler run.
        self._ended: list[StreamState] = []
        self._uploads: set[StreamState] = set()  # bodies arriving, watched for stalls
        self._swept = 0.0
        self._task: Any = None  # the task running ``run``, for the watchdog
        self._born = time.monotonic()

    # -- life cycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the peer leaves, a protocol error, or shutdown.

        The read loop is this coroutine itself: an idle connection keeps every frame
        between its task and the socket's wait alive.
        """
        self._task = task = await curio.current_task()
        proto = self.proto
        proto.start()
        try:
            # Our preface leaves with the answer to a first request already here: one write.
            early = self._sent_already() if proto.concurrent else None
            if early is None:
                await self.flush()
            while not self.closed:
                if proto.closing:
                    await self._finish()
                    return
                if not proto.concurrent and await self._between_requests():
                    continue
                data: bytes | None
                if early is not None:
                    data, early = early, None
                else:
                    cycles = task.cycles
                    data = await self._receive()
                    if task.cycles != cycles:
                        self._batches = 0  # the read waited: every other task had its turn
                if data is None:
                    await self._finish()
                    return
                if not data:
                    await self._lose(None)
                    return
                self._arrived = time.monotonic()
                await self._process(proto.receive(data, self._arrived))
                self._batches += 1
                if self._handed:
                    # The runner answers while the next read waits, which keeps the socket
                    # registered with the selector (a yield would not). Bytes already here
                    # are a later batch: the runner goes first.
                    self._handed = False
                    early = self._sent_already()
                if early is not None or self._batches >= YIELD_EVERY:
                    # curio switches tasks only when an operation would block: this yield
                    # keeps a connection whose reads never wait from starving the others.
                    self._batches = 0
                    await curio.sleep(0)
        except OSError as exc:
            await self._lose(exc)
        except curio.CancelledError:
            if not self.lost:
                raise  # the server stops: not ours to swallow
            # ``abort`` stopped a connection whose peer stopped reading: done.
        finally:
            await self._close()

    def _sent_already(self) -> bytes | None:
        """What the peer sent before we asked, without waiting; None when nothing yet."""
        received = getattr(self.sock, "received", None)  # ``sockets.ServerSocket``'s
        return None if received is None else received(READ_SIZE)

    async def _between_requests(self) -> bool:
        """HTTP/1.1 before a read: True when it acted instead (see the comments).

        HTTP/2 reads all the time; HTTP/1.1 reads only while a head or body is due.
        """
        proto = self.proto
        if not proto.wants_data or self._held_back():
            # A request is being answered, or a streamed body waits for its handler: read
            # on once woken (the response ended, the body was read).
            if self._reader_wake is None:
                self._reader_wake = curio.Event()
            self._reader_wake.clear()
            await self._reader_wake.wait()
            await self._process(proto.next_events(time.monotonic()))
            return True
        pending = proto.next_events(time.monotonic())
        if pending:  # a pipelined request, read with the one before it
            await self._process(pending)
            return True
        if proto.before_read():
            await self.flush()  # 100 Continue
        return False

    async def _receive(self) -> bytes | None:
        """The next bytes from the peer (``b""``: it closed); None: stop (timed out)."""
        proto, config = self.proto, self.config
        while True:
            # What the wait is for is decided before it: other tasks change both sets.
            uploads, answering = bool(self._uploads), bool(self.streams)
            if uploads:
                limit = config.body_timeout
            elif answering:
                if proto.flow_controlled:
                    return await self.sock.recv(READ_SIZE)
                limit = POLL_CLOSING
            else:
                limit, why = proto.quiet_limit(time.monotonic(), self._born)
            async with curio.ignore_after(limit) as quiet:
                data: bytes = await self.sock.recv(READ_SIZE)
            if not quiet.expired:
                return data
            if uploads:
                await self._sweep_uploads()
            elif not answering:
                log.debug("%s: %s for %g s, closing", self.peer, why, limit)
                proto.quiet()
                return None
            if proto.closing:
                return None

    async def _process(self, events: list[Event]) -> None:
        """Act on a batch of the protocol's events, start what they completed, flush."""
        for event in events:
            kind = type(event)
            if kind is BodyReceived:
                await self._on_body(event)  # type: ignore[arg-type]
            elif kind is RequestStarted:
                await self._on_request(event)  # type: ignore[arg-type]
            elif kind is BodyEnded:
                state = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
                if state is not None:
                    state.ended = True
                    self._uploads.discard(state)
                    if state.source is not None:
                        await state.source.end()  # its handler runs already
                    else:
                        self._ended.append(state)
            elif kind is StreamAborted:
                await self._on_reset(event.stream_id)  # type: ignore[attr-defined]
            elif kind is WindowOpened:
                await self._on_window(event.stream_id)  # type: ignore[attr-defined]
            elif kind is ConnectionEnded:
                # Nothing more is read: send what the protocol queued last (a GOAWAY, a
                # 400), lingering if that is an error report. Handlers still running stop
                # at their next send.
                self._ended.clear()
                await self._finish()
                return
        if self._uploads and self._arrived - self._swept > 1.0:
            await self._sweep_uploads()
        if self._ended:
            ended, self._ended = self._ended, []
            for state in ended:
                if not state.closed:
                    await self._dispatch(state)
        if self._handed:
            # The runner answers the batch right after the read loop yields, and flushes
            # what the batch queued (window updates, settings) with its answers.
            await self.runner.start()
        else:
            await self.flush()

    async def _finish(self) -> None:
        """The protocol closes: send what it queued (an answer, a GOAWAY), then linger if
        that was an error report."""
        self.closed = True
        await self.flush()
        if self.proto.linger:
            await self._linger()

    async def _wake_reader(self) -> None:
        if self._reader_wake is not None and not self._reader_wake.is_set():
            await self._reader_wake.set()

    # -- requests --------------------------------------------------------------------------

    async def _on_request(self, event: RequestStarted) -> None:
        state = StreamState(event.stream_id, event.headers, event.http_version)
        self.streams[event.stream_id] = state
        if event.ended:
            return
        state.progress = self._arrived
        self._uploads.add(state)
        headers = event.headers
        method, path = headers.get(":method", ""), headers.get(":path", "/")
        if self.early is not None:
            answer = self.early(method, path)
            if answer is not None:
                status, extra = answer
                self._refuse_body(state, status, b"%d\n" % status, extra, stop=False)
                return
        if self.streams_body is not None and self.streams_body(method, path):
            # The handler runs now and reads the body as it arrives (``bodies``).
            # A tunnel (a WebSocket) may stay quiet for as long as it likes.
            timeout = None if ":protocol" in headers else self.config.body_timeout
            state.source = StreamedBody(self, state.stream_id, timeout)
            self._uploads.discard(state)
            await self._dispatch(state)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.config.max_body_size:
            self._refuse_too_large(state)

    async def _dispatch(self, state: StreamState) -> None:
        body = b"".join(state.body) if state.body else b""
        self.buffered -= len(body)
        self.config.bodies.used -= len(body)
        state.body = []
        stream = Stream(state.stream_id, state.headers, body, state.source)
        request = Request(stream, client=self.client, http_version=state.version,
                          arrived=self._arrived)
        response = Response(state.stream_id, StreamChannel(self, state),
                            head_only=request.method == "HEAD")
        if self.closed:
            # The connection failed earlier in this batch: nobody is left to answer.
            self.streams.pop(state.stream_id, None)
            return
        job = self._serve(state, request, response)
        if state.source is not None:
            # Its handler reads the body as it arrives: it starts now.
            await self.runner.submit(state, job)
        elif self.proto.concurrent:
            self.runner.queue(state, job)  # started with the rest of the batch
            self._handed = True
        else:
            # HTTP/1.1: one request at a time, and a streamed body aside, nothing to read
            # meanwhile: the reading task answers it itself.
            await self.runner.run_here(state, job)

    async def _serve(self, state: StreamState, request: Request, response: Response) -> None:
        sid = state.stream_id
        try:
            await self.handler(request, response)
            if not response.finished:
                # The handler layer answers unfinished responses itself; this is the last net.
                self.proto.reset(sid, INTERNAL_ERROR)
        except StreamClosed:
            log.debug("%s: stream %d closed before its response ended", self.peer, sid)
        except (Exception, SystemExit):  # sys.exit() in a handler must not stop the server
            log.exception("%s: unhandled error on stream %d", self.peer, sid)
            self.proto.reset(sid, INTERNAL_ERROR)
        finally:
            self.streams.pop(sid, None)
            if state.source is not None:
                self._end_streamed_body(state)
            self.proto.done(sid)
            if self._reader_wake is not None:
                await self._wake_reader()
            if not self.inline:
                await self.wake_writer()

    # -- what the job runner asks (``eager.RunnerHost``) -----------------------------------

    def job_gone(self, key: Any) -> bool:
        return bool(key.closed or self.closed)

    def job_failed(self, key: Any) -> None:
        self.streams.pop(key.stream_id, None)
        self.proto.reset(key.stream_id, INTERNAL_ERROR)

    def job_owned(self, key: Any, task: Any) -> None:
        key.task = task

    # -- refusals and resets ---------------------------------------------------------------

    async def _on_reset(self, stream_id: int) -> None:
        state = self.streams.pop(stream_id, None)
        if state is None:
            return
        state.closed = True
        self._uploads.discard(state)
        self._drop_body(state)
        if state.source is not None:
            self._release_source(state)  # never to be read
            await state.source.fail(closed_error(stream_id))
        if state.window_event is not None:
            await state.window_event.set()
        if state.task is not None and not state.task.terminated:
            await state.task.cancel(blocking=False)

    # -- shutdown --------------------------------------------------------------------------

    async def send_goaway(self) -> None:
        """Shutdown: no new requests; those in flight may finish. An HTTP/1.1 connection
        with no request in progress closes now."""
        if self.closed:
            return
        for state in list(self.streams.values()):
            if state.source is not None and ":protocol" in state.headers:
                await state.source.fail(ServerStopping("the server is shutting down"))
        if self.proto.goaway():
            if self._task is not None:
                self.lost = True
                await self._task.cancel(blocking=False)
            return
        await self.flush()

    def busy(self) -> bool:
        """True while a request is still arriving or its response is being produced."""
        return any(s.task is None or not s.task.terminated for s in self.streams.values())

    async def _close(self) -> None:
        self.closed = True
        # Bodies never dispatched (the peer left mid-upload) leave the process's budget.
        self.config.bodies.used -= self.buffered
        self.buffered = 0
        for state in self.streams.values():
            if state.source is not None:
                self._release_source(state)
        if self.proto.resets:
            log.debug("%s: %d streams reset", self.peer, self.proto.resets)
        await self._wake_senders()
        if not self.lost:
            await self.flush()
        if self._tasks is not None:
            for task in list(self._tasks):
                await end_task(task)
            self._tasks = None
        self.runner.release()

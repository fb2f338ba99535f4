"""One HTTP/2 connection: bytes from the socket -> h2 events -> request tasks -> frames.

h2 owns the protocol state (sans-IO); this module owns the socket and the tasks. It knows
nothing about routing or files: it builds a ``Request``/``Response`` pair per stream and
hands it to the ``handler`` it was given.

Three rules keep it correct and fast:
- every request runs in its own task, never inside the read loop, so a slow handler never
  delays the other streams, and a response larger than the flow-control window cannot
  deadlock the loop that would read the WINDOW_UPDATE;
- every write to the socket goes through one lock (``_flush``), and small responses only
  wake the writer task, so the frames of many streams leave in one ``sendall``;
- every received DATA frame is acknowledged, so uploads never stall.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .._curio import curio
from ..exceptions import StreamClosed
from ..http import Request, Response, Stream

log = logging.getLogger("hyper2web.server")

Handler = Callable[[Request, Response], Awaitable[None]]

# Above this many unflushed bytes, a sender flushes itself instead of waking the writer:
# that is the back-pressure that keeps a large download from piling up in memory.
FLUSH_THRESHOLD = 64 * 1024
READ_SIZE = 65536


@dataclass
class ConnectionConfig:
    """Limits of one connection; one object shared by all connections of a server."""

    max_concurrent_streams: int = 128
    max_body_size: int = 64 * 1024 * 1024
    initial_window_size: int = 1024 * 1024
    connection_window_size: int = 16 * 1024 * 1024
    max_header_list_size: int = 64 * 1024
    default_headers: list[tuple[str, str]] = field(default_factory=list)


class _StreamState:
    __slots__ = ("stream_id", "headers", "body", "size", "task", "closed", "window_event",
                 "refused")

    def __init__(self, stream_id: int, headers: dict[str, str]) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.body: list[bytes] = []
        self.size = 0
        self.task: Any = None
        self.closed = False
        self.window_event: Any = None
        self.refused = False


class StreamChannel:
    """The ``Channel`` of one stream: sends its headers and data with flow control."""

    __slots__ = ("_conn", "_state")

    def __init__(self, conn: H2Connection, state: _StreamState) -> None:
        self._conn = conn
        self._state = state

    async def send_head(self, status: int, headers: list[tuple[str, str]],
                        end_stream: bool) -> None:
        conn = self._conn
        self._check_open()
        block = [(":status", str(status))]
        block.extend(headers)
        block.extend(conn.config.default_headers)
        try:
            conn.h2.send_headers(self._state.stream_id, block, end_stream=end_stream)
        except h2.exceptions.StreamClosedError:
            raise StreamClosed(f"stream {self._state.stream_id} closed") from None
        await conn.wake_writer()

    async def send_data(self, data: bytes, end_stream: bool) -> None:
        conn = self._conn
        state = self._state
        sid = state.stream_id
        h2conn = conn.h2
        view = memoryview(data)
        try:
            if not view:
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
                conn.unflushed += size
                if conn.unflushed >= FLUSH_THRESHOLD:
                    await conn.flush()
                else:
                    await conn.wake_writer()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            raise StreamClosed(f"stream {sid} closed") from None

    def _check_open(self) -> None:
        if self._state.closed or self._conn.closed:
            raise StreamClosed(f"stream {self._state.stream_id} closed by the peer")


class H2Connection:
    """Serves one TLS connection that negotiated ``h2``."""

    def __init__(self, sock: Any, client: tuple[str, int], handler: Handler,
                 config: ConnectionConfig) -> None:
        self.sock = sock
        self.client = client
        self.handler = handler
        self.config = config
        self.h2 = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.streams: dict[int, _StreamState] = {}
        self.closed = False
        self.unflushed = 0
        self._write_lock = curio.Lock()
        self._writer_wake = curio.Event()
        self._tasks: Any = None

    # -- life cycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the peer leaves, a protocol error, or shutdown."""
        conn = self.h2
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                    self.config.max_concurrent_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.config.initial_window_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE:
                    self.config.max_header_list_size,
            },
        )
        conn.initiate_connection()
        extra = self.config.connection_window_size - 65535
        if extra > 0:
            conn.increment_flow_control_window(extra)
        async with curio.TaskGroup() as tasks:
            self._tasks = tasks
            await tasks.spawn(self._writer, daemon=True)
            try:
                await self.flush()
                await self._read_loop()
            except OSError as exc:
                log.debug("%s: connection lost: %s", self.peer, exc)
            finally:
                await self._close(tasks)

    @property
    def peer(self) -> str:
        host, port = self.client[0], self.client[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def _read_loop(self) -> None:
        conn = self.h2
        sock = self.sock
        while not self.closed:
            try:
                data = await sock.recv(READ_SIZE)
            except OSError as exc:
                log.info("%s: connection lost: %s", self.peer, exc)
                return
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                # h2 has queued a GOAWAY with the right error code: send it, then close.
                log.info("%s: HTTP/2 protocol error, closing: %s", self.peer, exc)
                await self.flush()
                return
            for event in events:
                await self._on_event(event)
            await self.flush()
            # curio switches tasks only when an operation would block: yield so a busy
            # connection does not starve the request tasks it just spawned, or the others.
            await curio.sleep(0)

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
                await self._dispatch(state)
        elif kind is h2.events.StreamReset:
            await self._on_reset(event.stream_id)
        elif kind is h2.events.WindowUpdated:
            await self._on_window(event.stream_id)
        elif kind is h2.events.RemoteSettingsChanged:
            await self._on_window(0)
        elif kind is h2.events.ConnectionTerminated:
            log.debug("%s: GOAWAY from peer (%s)", self.peer, event.error_code)
            self.closed = True

    async def _on_request(self, event: h2.events.RequestReceived) -> None:
        headers: dict[str, str] = {}
        for name, value in event.headers:
            if name in headers:
                sep = "; " if name == "cookie" else ", "
                headers[name] = headers[name] + sep + value
            else:
                headers[name] = value
        state = _StreamState(event.stream_id, headers)
        self.streams[event.stream_id] = state
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.config.max_body_size:
            await self._refuse_too_large(state)

    async def _on_data(self, event: h2.events.DataReceived) -> None:
        sid = event.stream_id
        # Acknowledge every DATA frame, even on a stream we refused, or the connection
        # window shrinks until the peer can send nothing at all.
        if event.flow_controlled_length:
            try:
                self.h2.acknowledge_received_data(event.flow_controlled_length, sid)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
        state = self.streams.get(sid)
        if state is None or state.refused:
            return
        state.size += len(event.data)
        if state.size > self.config.max_body_size:
            await self._refuse_too_large(state)
            return
        state.body.append(event.data)

    async def _refuse_too_large(self, state: _StreamState) -> None:
        """413 before the body is read, then RST_STREAM(NO_ERROR) to stop the upload."""
        state.refused = True
        state.body = []
        body = b"request body too large\n"
        try:
            self.h2.send_headers(state.stream_id, [
                (":status", "413"), ("content-type", "text/plain; charset=utf-8"),
                ("content-length", str(len(body))),
            ])
            self.h2.send_data(state.stream_id, body, end_stream=True)
            self.h2.reset_stream(state.stream_id, h2.errors.ErrorCodes.NO_ERROR)
        except h2.exceptions.ProtocolError:
            pass
        log.info("%s: refused a request body over %d bytes", self.peer,
                 self.config.max_body_size)

    async def _on_reset(self, stream_id: int) -> None:
        state = self.streams.pop(stream_id, None)
        if state is None:
            return
        state.closed = True
        if state.window_event is not None:
            await state.window_event.set()
        if state.task is not None and not state.task.terminated:
            await state.task.cancel(blocking=False)

    async def _on_window(self, stream_id: int) -> None:
        if stream_id == 0:
            for state in list(self.streams.values()):
                if state.window_event is not None:
                    await state.window_event.set()
            return
        state = self.streams.get(stream_id)
        if state is not None and state.window_event is not None:
            await state.window_event.set()

    async def wait_for_window(self, state: _StreamState) -> None:
        """Block the sender of one stream until the peer opens its window."""
        await self.flush()
        state.window_event = curio.Event()
        try:
            await state.window_event.wait()
        finally:
            state.window_event = None

    # -- requests --------------------------------------------------------------------------

    async def _dispatch(self, state: _StreamState) -> None:
        body = b"".join(state.body) if state.body else b""
        state.body = []
        stream = Stream(state.stream_id, state.headers, body)
        request = Request(stream, client=self.client)
        response = Response(state.stream_id, StreamChannel(self, state),
                            head_only=request.method == "HEAD")
        state.task = await self._tasks.spawn(self._serve, state, request, response,
                                             daemon=True)

    async def _serve(self, state: _StreamState, request: Request, response: Response) -> None:
        try:
            await self.handler(request, response)
            if not response.finished:
                # The handler layer answers unfinished responses itself; this is the last net.
                self._reset(state.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        except StreamClosed:
            log.debug("%s: stream %d closed before its response ended", self.peer,
                      state.stream_id)
        except Exception:
            log.exception("%s: unhandled error on stream %d", self.peer, state.stream_id)
            self._reset(state.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        finally:
            self.streams.pop(state.stream_id, None)
            await self.wake_writer()

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass

    # -- writing ---------------------------------------------------------------------------

    async def wake_writer(self) -> None:
        """Ask the writer task to flush soon: frames of many streams leave together."""
        if not self._writer_wake.is_set():
            await self._writer_wake.set()

    async def _writer(self) -> None:
        while True:
            await self._writer_wake.wait()
            self._writer_wake.clear()
            try:
                await self.flush()
            except OSError:
                self.closed = True
                return

    async def flush(self) -> None:
        """Send everything h2 has queued; the only path that writes to the socket."""
        async with self._write_lock:
            data = self.h2.data_to_send()
            self.unflushed = 0
            if data:
                await self.sock.sendall(data)

    # -- shutdown --------------------------------------------------------------------------

    async def send_goaway(self) -> None:
        """Tell the peer no new streams will be served; streams in flight may finish."""
        if self.closed:
            return
        try:
            self.h2.close_connection()
            await self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            self.closed = True

    def busy(self) -> bool:
        """True while a response is still being produced."""
        return any(s.task is not None and not s.task.terminated for s in self.streams.values())

    async def _close(self, tasks: Any) -> None:
        # The task group cancels the request tasks still running when it exits.
        self.closed = True
        for state in list(self.streams.values()):
            state.closed = True
            if state.window_event is not None:
                await state.window_event.set()
        try:
            await self.flush()
        except OSError:
            pass

"""The sending half of a connection: one flush path, a writer task, windows, the end.

Every write to the socket goes through ``flush``, one sender at a time, taking whatever the
protocol has queued: what a batch of requests answered leaves in one ``sendall``, and
tasks wake a writer task (started on first need) so the frames of many streams leave
together too. A sender that has queued more than ``FLUSH_THRESHOLD`` flushes itself: the
back-pressure of large downloads. A sender whose window is closed waits for the peer
(``wait_for_window``), at most ``send_timeout``. A connection that ends on an error report
lingers briefly so the report is not destroyed (``_linger``). ``StreamChannel`` is the
``Channel`` of one response, the same for both protocols.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from .._curio import curio
from ..exceptions import StreamClosed
from .config import READ_SIZE, ConnectionConfig
from .protocol.events import CANCEL

if TYPE_CHECKING:
    from .connection import Connection
    from .stream_state import StreamState

log = logging.getLogger("hyper2web.server")

# Above this many unflushed bytes, a sender flushes itself instead of waking the writer:
# that is the back-pressure that keeps a large download from piling up in memory.
FLUSH_THRESHOLD = 64 * 1024
TASKS_PRUNE = 64  # finished tasks are dropped from a connection's set past this many
# After an error report (GOAWAY, 400), what the peer still sends is read and dropped for
# this long (and up to this many bytes) before the socket closes: see ``_linger``.
LINGER_SECONDS = 0.1
LINGER_BYTES = 4 * 1024 * 1024
# A write larger than this is corked (Linux's TCP_CORK) for its length. OpenSSL hands the
# kernel one 16 KiB record per system call, and with TCP_NODELAY each would leave as a
# segment of its own; corked, the kernel joins them into full-sized segments (64 KiB on
# loopback), a quarter of the packets for both ends to process. Small answers skip it:
# two more system calls would cost them more than it saves.
CORK_ABOVE = 64 * 1024
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


class Sender:
    """The sending half of ``Connection``: flush, the writer task, windows, losses."""

    proto: Any
    sock: Any
    config: ConnectionConfig
    streams: dict[int, StreamState]
    closed: bool
    lost: bool
    unflushed: int
    sending_since: float
    _sending: bool
    _sent: Any
    _unsent: bytes
    _writer_wake: Any
    _tasks: set[Any] | None
    inline: bool  # the job runner steps a request: it flushes after its turn

    if TYPE_CHECKING:  # provided by Connection
        @property
        def peer(self) -> str: ...

    async def queued(self, size: int) -> None:
        """``size`` more body bytes wait in the protocol: flush them now past the threshold
        (that is the back-pressure of large bodies), else let them leave with the batch."""
        self.unflushed += size
        if self.unflushed >= FLUSH_THRESHOLD:
            await self.flush()
        elif not self.inline:
            await self.wake_writer()

    async def wake_writer(self) -> None:
        """Ask the writer task to flush soon: frames of many streams leave together.

        While a batch is being answered there is nothing to do (the batch is flushed
        after its turn). The writer task is started by the first request that needs it,
        so an idle connection holds no second task.
        """
        if self.inline:
            return
        if self._writer_wake is None:
            self._writer_wake = curio.Event()
            await self.spawn(self._writer())
        if not self._writer_wake.is_set():
            await self._writer_wake.set()

    async def _writer(self) -> None:
        while True:
            await self._writer_wake.wait()
            self._writer_wake.clear()
            await self.flush()
            if self.lost:
                return

    async def spawn(self, coro: Coroutine[Any, Any, Any]) -> Any:
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
        """Send everything the protocol has queued; the only path that writes to the socket.

        A failed write means the peer is gone: the connection is marked lost (one log line)
        and every sender stops at its next check, instead of each raising its own error.
        """
        if self.lost:
            return  # nothing more can leave; a sender stuck in a write is cancelled
        while self._sending:
            if self._sent is None:
                self._sent = curio.Event()
            await self._sent.wait()
        self._sending = True
        try:
            data = self.proto.data_to_send()
            if self._unsent:
                data, self._unsent = self._unsent + data, b""
            self.unflushed = 0
            if data and not self.lost:
                # Watched by the server's watchdog (``stalled``): a peer that stops reading
                # the socket itself makes this wait for ever.
                self.sending_since = time.monotonic()
                corked = len(data) > CORK_ABOVE and self._cork(1)
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
                else:
                    self.proto.recycle(data)  # written whole: the protocol may reuse it
                finally:
                    self.sending_since = 0.0
                    if corked:
                        self._cork(0)
        finally:
            self._sending = False
            if self._sent is not None:
                sent, self._sent = self._sent, None
                await sent.set()
            if self._unsent and not self.closed:
                await self.wake_writer()

    def _cork(self, on: int) -> bool:
        """Set or clear TCP_CORK on the socket; False where it cannot be (not Linux, a
        socket already closed), and the write simply goes uncorked."""
        if _TCP_CORK is None:
            return False
        try:
            self.sock._socket.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, on)
        except (OSError, AttributeError):
            return False
        return True

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
        for state in list(self.streams.values()):
            if state.source is not None:  # a streamed body or tunnel: its reader ends
                await state.source.fail(StreamClosed(f"connection lost ({reason})"))

    async def _linger(self) -> None:
        """Read and drop what the peer still sends, briefly, before the socket closes.

        Closing a socket that holds unread data makes the kernel answer with a TCP reset,
        which can destroy the error report still on its way. The sending side is shut
        first, so the client sees the end right after it; the reading is bounded in time
        and bytes, so an attacker cannot hold anything.
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

    async def _wake_senders(self) -> None:
        for state in list(self.streams.values()):
            state.closed = True
            if state.window_event is not None:
                await state.window_event.set()

    # -- flow control: a sender waits for the peer's window --------------------------------

    async def _on_window(self, stream_id: int) -> None:
        if stream_id == 0:
            for each in list(self.streams.values()):
                if each.window_event is not None:
                    await each.window_event.set()
            return
        state = self.streams.get(stream_id)
        if state is not None and state.window_event is not None:
            await state.window_event.set()

    async def wait_for_window(self, state: StreamState) -> None:
        """Block the sender of one stream until the peer opens its window.

        The event exists before the flush: a window update handled while the flush waits
        on the socket sets it, instead of finding nothing to wake and being lost.
        """
        state.window_event = event = curio.Event()
        try:
            await self.flush()
            if self.closed or state.closed:
                return  # the sender's next check raises StreamClosed
            if self.proto.sendable(state.stream_id, 1) < 1:
                async with curio.ignore_after(self.config.send_timeout) as waited:
                    await event.wait()
                if waited.expired:
                    # The peer stopped reading: let go of the file and buffers.
                    log.info("%s: stream %d waited %g s for the peer to read; reset",
                             self.peer, state.stream_id, self.config.send_timeout)
                    state.closed = True
                    self.streams.pop(state.stream_id, None)
                    self.proto.reset(state.stream_id, CANCEL)
                    await self.wake_writer()
        finally:
            state.window_event = None


class StreamChannel:
    """The ``Channel`` of one response: its head and body, within the peer's windows."""

    __slots__ = ("_conn", "_state")

    def __init__(self, conn: Connection, state: StreamState) -> None:
        self._conn = conn
        self._state = state

    async def send_head(self, status: int, headers: Sequence[tuple[str, str]],
                        end_stream: bool) -> None:
        conn = self._conn
        self._check_open()
        conn.proto.send_head(self._state.stream_id, status, headers, end_stream)
        if not conn.inline:
            await conn.wake_writer()
        if status == 101 and conn._reader_wake is not None:
            await conn._wake_reader()  # HTTP/1.1 after Switching Protocols reads on

    async def send_informational(self, status: int,
                                 headers: Sequence[tuple[str, str]]) -> None:
        """A 1xx response (e.g. 103 Early Hints); the final response follows."""
        self._check_open()
        self._conn.proto.send_informational(self._state.stream_id, status, headers)
        if not self._conn.inline:
            await self._conn.wake_writer()

    async def send_data(self, data: bytes | memoryview, end_stream: bool) -> None:
        conn = self._conn
        proto = conn.proto
        sid = self._state.stream_id
        self._check_open()
        size = len(data)
        if not size:
            if end_stream:  # an empty chunk alone sends nothing
                proto.send_data(sid, b"", True)
                await conn.wake_writer()
            return
        if proto.send_whole(sid, data, end_stream):
            # The common case, a body that fits one frame and the window: no slicing.
            await conn.queued(size)
            return
        view = memoryview(data)
        while view:
            self._check_open()
            size = proto.sendable(sid, len(view))
            if size < 1:
                await conn.wait_for_window(self._state)
                continue
            proto.send_data(sid, view[:size], end_stream and size == len(view))
            view = view[size:]
            await conn.queued(size)

    def body_slots(self, size: int) -> Any:
        """Room for the next ``size`` body bytes in the protocol's own framing
        (``framed.FramedChunk``: fill its ``views``, then ``send_slots``), so a file is read
        where it is sent from, with no copy; None where the protocol has no such room now
        (then ``send_data``)."""
        make = getattr(self._conn.proto, "framed_chunk", None)
        if make is None or self._state.closed or self._conn.closed:
            return None
        return make(self._state.stream_id, size)

    async def send_slots(self, slots: Any, count: int, end_stream: bool) -> None:
        """Send the ``count`` bytes read into ``body_slots``; a short read, or windows that
        shrank meanwhile, send them the ordinary way (``send_data``)."""
        self._check_open()
        if count == slots.size and \
                self._conn.proto.send_framed(self._state.stream_id, slots, end_stream):
            await self._conn.queued(count)
            return
        await self.send_data(slots.payload(count), end_stream)

    def _check_open(self) -> None:
        if self._state.closed or self._conn.closed:
            raise StreamClosed(f"stream {self._state.stream_id} closed by the peer")

"""Writing an HTTP/2 connection: one flush path, a writer task, back-pressure, losses.

Every write to the socket goes through ``flush``, one sender at a time: what the read loop
answered leaves in one ``sendall`` per batch of received frames, and tasks wake a writer
task (started on first need) so the frames of many streams leave together too. A sender
that has queued more than ``FLUSH_THRESHOLD`` flushes itself: the back-pressure of large
downloads. A sender whose window is closed waits for the peer's WINDOW_UPDATE
(``wait_for_window``), at most ``send_timeout``. ``H2Writer`` is a part of ``H2Connection``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import h2.errors

from .._curio import curio
from .config import ConnectionConfig

if TYPE_CHECKING:
    from .h2stream import _StreamState

log = logging.getLogger("hyper2web.server")

# Above this many unflushed bytes, a sender flushes itself instead of waking the writer:
# that is the back-pressure that keeps a large download from piling up in memory.
FLUSH_THRESHOLD = 64 * 1024
TASKS_PRUNE = 64  # finished tasks are dropped from a connection's set past this many


class H2Writer:
    """The writing half of ``H2Connection``."""

    h2: Any
    sock: Any
    config: ConnectionConfig
    streams: dict[int, Any]
    inline: bool
    closed: bool
    lost: bool
    unflushed: int
    sending_since: float
    _sending: bool
    _sent: Any
    _unsent: bytes
    _raw_frames: list[bytes]
    _writer_wake: Any
    _tasks: set[Any] | None
    _task: Any

    if TYPE_CHECKING:  # provided by H2Connection and its other parts
        @property
        def peer(self) -> str:
            ...

        async def leave_read_loop(self) -> None:
            ...

        def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
            ...

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
        if self.lost:
            return  # nothing more can leave; a sender stuck in a write is cancelled
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

    # -- flow control: a sender waits for the peer's window --------------------------

    async def _on_window(self, stream_id: int) -> None:
        if stream_id == 0:
            for each in list(self.streams.values()):
                if each.window_event is not None:
                    await each.window_event.set()
            return
        state = self.streams.get(stream_id)
        if state is not None and state.window_event is not None:
            await state.window_event.set()

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

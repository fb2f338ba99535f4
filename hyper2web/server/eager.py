"""Running a request inline until it first really waits (curio's form of an eager task).

The read loop starts each request by stepping its coroutine by hand (``_step``): a cached
file or a quick answer finishes without ever blocking and costs no task. The first kernel
trap a request yields (a window to wait for, a file read in a thread, a sleep) is handed,
as it is, to a new task that goes on from exactly there (``_resume``), so results,
exceptions and cancellation reach the request as if it had always run in that task.

User handlers and event streams first call ``leave_read_loop`` (through
``Response.own_task``): a harmless trap (``_MOVE``) that the read loop knows by identity
and answers by queueing the request for the connection's job runner (``_run_jobs``), one
task that runs queued requests in turn. Code that checks a curio ``Event``/``Lock``/
``Queue`` and then waits on it must not be moved between the check and the wait, or a
wake-up in between is lost: in the runner, a request that blocks keeps the runner's task
as its own from the very trap it yielded, and a new runner takes the queue.

Nothing outside ``server/`` knows about this module; ``EagerDispatch`` is a part of
``H2Connection``.
"""

from __future__ import annotations

import logging
import types
from collections import deque
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

import h2.errors

from .._curio import curio
from ..exceptions import StreamClosed

if TYPE_CHECKING:
    from .h2stream import _StreamState

log = logging.getLogger("hyper2web.server")


class EagerDispatch:
    """The stepping and the job runner of ``H2Connection`` (see the module docstring)."""

    inline: bool
    closed: bool
    streams: dict[int, Any]
    _jobs: deque[tuple[Any, Coroutine[Any, Any, None]]] | None
    _runner: Any
    _runner_wake: Any

    if TYPE_CHECKING:  # provided by H2Connection and its other parts
        @property
        def peer(self) -> str:
            ...

        def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
            ...

        async def _spawn(self, coro: Coroutine[Any, Any, None]) -> Any:
            ...

        async def wake_writer(self) -> None:
            ...

        async def flush(self) -> None:
            ...

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

"""Eager request running: a request runs at once, in a shared task, until it first waits.

Python 3.12 gave asyncio "eager tasks" for the same reason: most requests (a cached file, a
quick API answer) finish without ever waiting, and a task of their own would cost more than
the answer. Each connection has one job runner, a task that runs queued requests in turn by
stepping their coroutines (``step``). A request that finishes leaves nothing behind; its
answer leaves with the others of the turn in one write. A request that waits (a window, a
file read in a thread, a sleep, a user's ``Event``) keeps the runner's task as its own,
from the very trap it yielded, and a new runner takes over the queue.

Keeping the task is what makes this safe: the request is never moved between tasks, so
code that checks an ``Event``, ``Lock`` or ``Queue`` and then waits on it never loses a
wake-up in between; nothing above ``server/`` needs to know any of this. The only curio
traps seen here are the ones a request yields, passed on untouched (``_resume``).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Coroutine, Generator
from typing import Any, Protocol

from .._curio import curio

log = logging.getLogger("hyper2web.server")

Job = Coroutine[Any, Any, None]


class RunnerHost(Protocol):
    """What a job runner asks of its connection."""

    inline: bool  # set while a job is stepped: its sends need not wake the writer

    async def spawn(self, coro: Job) -> Any:
        """Start a task of the connection (cancelled when it closes)."""

    async def flush(self) -> None:
        """Send what a turn answered."""

    async def wake_writer(self) -> None:
        """Ask for a flush soon, from another task."""

    def job_gone(self, key: Any) -> bool:
        """True when ``key``'s stream closed: a queued job is dropped unrun."""

    def job_failed(self, key: Any) -> None:
        """``key``'s job raised (already logged): reset its stream."""

    def job_owned(self, key: Any, task: Any) -> None:
        """``key``'s job waits, and from now on runs in ``task``."""


class JobRunner:
    """Runs the requests of one connection: eagerly, in turn, each in the task it began in."""

    def __init__(self, host: RunnerHost, name: str = "") -> None:
        self.host = host
        self.name = name
        # A list, not a deque: a deque's first block is 0.5 KB on every idle connection, and
        # a batch is at most a connection's concurrent streams long.
        self.jobs: list[tuple[Any, Job]] = []
        self.closed = False
        self._runner: Any = None
        self._wake: Any = None

    async def submit(self, key: Any, job: Job) -> None:
        """Queue ``job``, starting or waking the runner.

        Waking one runner per batch of requests costs far less than a task per request,
        and answers that never block all leave in the runner's one flush.
        """
        self.jobs.append((key, job))
        await self.start()

    def queue(self, key: Any, job: Job) -> None:
        """Queue ``job`` without starting it: ``start`` follows once the batch is queued."""
        self.jobs.append((key, job))

    async def start(self) -> None:
        """Start the runner, or wake it, for what is queued (nothing once closed)."""
        if self.closed:
            self.close()  # drops what was queued
        elif self._runner is None:
            if self._wake is None:
                self._wake = curio.Event()
            self._runner = await self.host.spawn(self._run())
        elif not self._wake.is_set():
            await self._wake.set()

    async def run_here(self, key: Any, job: Job) -> None:
        """Run ``job`` in the calling task: eagerly, then, once it waits, to its end.

        For a connection that answers one request at a time (HTTP/1.1), whose reading task
        has nothing else to do meanwhile: no hand-over to the runner at all.
        """
        trap = self.step(key, job)
        if trap is None:
            return
        self.host.job_owned(key, await curio.current_task())
        await self.host.wake_writer()
        await _resume(job, trap)

    def step(self, key: Any, job: Job) -> Any:
        """Run ``job`` here until it finishes (``None``) or yields a kernel trap (returned)."""
        if self.closed:
            job.close()  # queued, never started: no user code runs for nobody
            return None
        host = self.host
        host.inline = True
        try:
            if host.job_gone(key):
                job.close()
                return None
            return job.send(None)
        except StopIteration:
            return None
        except BaseException:  # noqa: B036 - e.g. sys.exit() in a handler: not the runner's end
            log.exception("%s: handler stopped stream %s", self.name,
                          getattr(key, "stream_id", key))
            self.host.job_failed(key)
            return None
        finally:
            host.inline = False

    async def _run(self) -> None:
        """The runner: run queued jobs in turn, each until it ends or first waits.

        A job that waits keeps this task as its own: nothing else runs between its check
        and its wait (starting the next runner does not switch tasks).
        """
        me = await curio.current_task()
        jobs, wake = self.jobs, self._wake
        while True:
            while jobs:
                key, job = jobs.pop(0)
                trap = self.step(key, job)
                if trap is None:
                    continue
                self._runner = None
                if jobs:
                    self._runner = await self.host.spawn(self._run())
                self.host.job_owned(key, me)
                # What this turn queued (this job's own head, as an event stream sends it
                # before it waits, or the answers of the jobs before it) must not wait for
                # a later send: the writer flushes it.
                await self.host.wake_writer()
                await _resume(job, trap)
                return
            await self.host.flush()  # the answers of this turn leave together
            if not jobs and not self.closed:
                wake.clear()
                await wake.wait()
            if self.closed:
                self._runner = None
                return

    def close(self) -> None:
        """The connection is closing: queued jobs are dropped unrun."""
        self.closed = True
        while self.jobs:
            _, job = self.jobs.pop(0)
            job.close()

    def release(self) -> None:
        """Forget the host once its tasks have ended. The two refer to each other, and a
        reference cycle is freed only by the cyclic garbage collector: the connection, its
        TLS state included, would stay in memory until the next full collection."""
        self.close()
        self._runner = None
        del self.host


async def end_task(task: Any) -> None:
    """Cancel ``task`` if it still runs, then drop the traceback of how it ended.

    A task keeps the exception it ended with (a cancellation, say), and the traceback holds
    the task's own frames: a reference cycle, freed only by the cyclic garbage collector,
    with all those frames hold (a connection's, its TLS state included) waiting for it.
    """
    if not task.terminated:
        await task.cancel()
    exc = task.exception
    if exc is not None:
        exc.__traceback__ = None


@types.coroutine
def _resume(coro: Job, trap: Any) -> Generator[Any, Any, None]:
    """Drive ``coro`` on from the kernel trap it yielded when it first blocked.

    The runner ran ``coro`` until it yielded ``trap``; here the trap goes to the kernel on
    behalf of the same task, and every result or exception (a cancellation, a timeout)
    goes back into ``coro``, as if it had been awaited from the start.
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

"""The job runner on its own (``server/eager.py``): requests run eagerly in one task, and a
request that waits keeps the task it began in, so no wake-up is lost and nothing above
``server/`` has to help."""

from __future__ import annotations

from typing import Any

from hyper2web._curio import curio
from hyper2web.server.eager import JobRunner


class Key:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False
        self.task: Any = None

    def __repr__(self) -> str:
        return self.name


class Host:
    """What a connection gives its runner, recording what the runner did."""

    def __init__(self) -> None:
        self.tasks: list[Any] = []
        self.flushes = 0
        self.wakes = 0
        self.failed: list[Key] = []

    async def spawn(self, coro: Any) -> Any:
        task = await curio.spawn(coro, daemon=True)
        self.tasks.append(task)
        return task

    async def flush(self) -> None:
        self.flushes += 1

    async def wake_writer(self) -> None:
        self.wakes += 1

    def job_gone(self, key: Key) -> bool:
        return key.closed

    def job_failed(self, key: Key) -> None:
        self.failed.append(key)

    def job_owned(self, key: Key, task: Any) -> None:
        key.task = task


def test_quick_jobs_share_one_task_and_one_flush() -> None:
    host, done = Host(), []

    async def job(n: int) -> None:
        done.append(n)

    async def main() -> None:
        runner = JobRunner(host)
        for n in range(5):
            await runner.submit(Key(str(n)), job(n))
        await curio.sleep(0.01)

    curio.run(main)
    assert done == [0, 1, 2, 3, 4]
    assert len(host.tasks) == 1 and host.flushes == 1


def test_a_wait_and_its_wake_up_in_the_same_turn_are_not_lost() -> None:
    # The first job checks an event and waits on it; the second, run right after in the
    # same turn, sets it. The check and the wait happen in one task with nothing between.
    host, order = Host(), []

    async def main() -> None:
        event = curio.Event()
        runner = JobRunner(host)

        async def waiter() -> None:
            if not event.is_set():
                await event.wait()
            order.append("woken")

        async def setter() -> None:
            await event.set()
            order.append("set")

        first, second = Key("waiter"), Key("setter")
        await runner.submit(first, waiter())
        await runner.submit(second, setter())
        async with curio.timeout_after(2):
            while "woken" not in order:
                await curio.sleep(0.001)
        assert first.task is host.tasks[0]  # kept the runner's first task

    curio.run(main)
    assert order == ["set", "woken"]
    assert host.wakes >= 1  # the hand-over woke the writer for what the turn queued


def test_results_exceptions_and_cancellation_reach_a_waiting_job() -> None:
    host, seen = Host(), {}

    async def main() -> None:
        runner = JobRunner(host)

        async def threaded() -> None:
            seen["value"] = await curio.run_in_thread(lambda: 41 + 1)

        async def timed() -> None:
            try:
                async with curio.timeout_after(0.02):
                    await curio.sleep(5)
            except curio.TaskTimeout:
                seen["timeout"] = True

        async def forever() -> None:
            try:
                await curio.sleep(60)
            except curio.CancelledError:
                seen["cancelled"] = True
                raise

        keys = [Key("threaded"), Key("timed"), Key("forever")]
        for key, job in zip(keys, (threaded(), timed(), forever()), strict=True):
            await runner.submit(key, job)
        await curio.sleep(0.1)
        await keys[2].task.cancel()

    curio.run(main)
    assert seen == {"value": 42, "timeout": True, "cancelled": True}


def test_a_job_whose_stream_closed_is_dropped_unrun(caplog: Any) -> None:
    host, seen = Host(), []

    async def job() -> None:
        seen.append("ran")

    async def main() -> None:
        runner = JobRunner(host)
        gone = Key("gone")
        gone.closed = True
        await runner.submit(gone, job())
        await curio.sleep(0.01)

    curio.run(main)
    assert seen == [] and host.failed == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_failing_job_is_reported_and_the_runner_goes_on(caplog: Any) -> None:
    host, seen = Host(), []

    async def bad() -> None:
        raise SystemExit(3)

    async def good() -> None:
        seen.append("good")

    async def main() -> None:
        runner = JobRunner(host)
        await runner.submit(Key("bad"), bad())
        await runner.submit(Key("good"), good())
        await curio.sleep(0.01)

    curio.run(main)
    assert [k.name for k in host.failed] == ["bad"] and seen == ["good"]
    assert "handler stopped stream bad" in caplog.text


def test_run_here_keeps_the_calling_task() -> None:
    host, seen = Host(), {}

    async def main() -> None:
        runner = JobRunner(host)
        me = await curio.current_task()

        async def job() -> None:
            await curio.sleep(0.01)
            seen["task"] = await curio.current_task()

        key = Key("here")
        await runner.run_here(key, job())
        seen["me"] = me
        assert key.task is me

    curio.run(main)
    assert seen["task"] is seen["me"] and host.tasks == []


def test_close_drops_queued_jobs_unrun() -> None:
    seen: list[str] = []

    async def job() -> None:
        seen.append("ran")

    runner = JobRunner(Host())
    queued = job()
    runner.jobs.append((Key("queued"), queued))
    runner.close()
    assert runner.closed and not runner.jobs and seen == []
    assert queued.cr_frame is None  # closed, never to run


def test_a_released_runner_forgets_its_host_and_runs_nothing_more() -> None:
    """Released once its connection's tasks have ended: no reference back to the
    connection (a cycle only the cyclic collector would free), and a late job is closed
    unrun instead of starting a task for nobody."""
    seen: list[str] = []
    host = Host()

    async def job() -> None:
        seen.append("ran")

    async def main() -> None:
        runner = JobRunner(host)
        runner.release()
        assert not hasattr(runner, "host")
        late = job()
        await runner.submit(Key("late"), late)
        assert late.cr_frame is None and not runner.jobs

    curio.run(main)
    assert seen == [] and host.tasks == []

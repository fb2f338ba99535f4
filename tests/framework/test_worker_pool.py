"""``WorkerPool``: start-up failures, crash loops and stopping, with real forked workers."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import pytest

from hyper2web import workers
from hyper2web.workers import WorkerPool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="workers fork")


def test_a_worker_dying_before_it_listens_fails_the_start() -> None:
    def main(index: int, listening: Callable[[], None]) -> None:
        raise SystemExit(3)

    started = []
    assert WorkerPool(2, main).run(lambda: started.append(True)) == 1
    assert not started


def test_a_crash_loop_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "MAX_RESTARTS", 3)

    def main(index: int, listening: Callable[[], None]) -> None:
        listening()
        if index == 1:
            raise RuntimeError("crash")  # the traceback goes to stderr; the pool restarts it
        time.sleep(30)

    began = time.monotonic()
    assert WorkerPool(2, main).run() == 1
    assert time.monotonic() - began < 15  # the healthy worker was stopped too


def test_sigterm_stops_every_worker_and_returns_0(tmp_path) -> None:
    marks = tmp_path / "stopped"
    marks.mkdir()

    def main(index: int, listening: Callable[[], None]) -> None:
        def on_term(signum: int, frame: object) -> None:
            (marks / str(index)).write_text("bye")
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, on_term)
        listening()
        time.sleep(30)

    pool = WorkerPool(3, main)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM))

    def ready() -> None:
        timer.start()

    try:
        assert pool.run(ready) == 0
    finally:
        timer.cancel()
    assert sorted(p.name for p in marks.iterdir()) == ["0", "1", "2"]
    assert not pool.pids


def test_an_error_in_the_parent_stops_the_workers() -> None:
    def main(index: int, listening: Callable[[], None]) -> None:
        listening()
        time.sleep(30)

    pool = WorkerPool(2, main)

    def ready() -> None:
        raise RuntimeError("banner failed")

    with pytest.raises(RuntimeError, match="banner failed"):
        pool.run(ready)
    assert not pool.pids  # stopped and reaped, not left running


_SIGNAL_AT_FORK: list[int] = []  # a signal each new child sends itself as it is forked


def _signal_at_fork() -> None:
    for signum in _SIGNAL_AT_FORK:
        os.kill(os.getpid(), signum)


os.register_at_fork(after_in_child=_signal_at_fork)


def test_a_stop_signal_reaching_a_worker_as_it_forks_stops_it(tmp_path, caplog) -> None:
    """The earliest SIGTERM a worker can get, before it has handlers of its own, still
    stops it: with the parent's handler in the worker's copy it would be lost."""
    ran = tmp_path / "ran"

    def main(index: int, listening: Callable[[], None]) -> None:
        ran.write_text("the signal was lost")
        listening()
        time.sleep(30)

    pool = WorkerPool(1, main)
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    _SIGNAL_AT_FORK.append(signal.SIGTERM)
    try:
        code = pool.run(timer.start)
    finally:
        _SIGNAL_AT_FORK.clear()
        timer.cancel()
    assert not ran.exists()
    assert code == 1  # it ended before it listened
    assert "worker 0 exited during start-up (exited with code 0)" in caplog.text


def test_a_worker_never_returns_into_the_parents_code(monkeypatch, caplog) -> None:
    """Whatever escapes a worker (a late signal's exception) ends that process: a forked
    copy that returned would go on running its parent's code, here the whole test session."""
    test_process = os.getpid()

    def escape(self: WorkerPool, *args: object) -> int:
        raise RuntimeError("raised outside the worker's own error handling")

    def main(index: int, listening: Callable[[], None]) -> None:
        listening()

    monkeypatch.setattr(WorkerPool, "_worker", escape)
    try:
        code = WorkerPool(1, main).run()
    finally:
        if os.getpid() != test_process:
            os._exit(99)  # the worker came back here
    assert code == 1
    assert "worker 0 exited during start-up (exited with code 1)" in caplog.text

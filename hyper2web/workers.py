"""Several worker processes serving one port, kept running by their parent.

Each worker is a forked copy of the parent with a listening socket of its own on the same
port (``SO_REUSEPORT``): the kernel spreads new connections over the workers, and each runs
its own curio kernel on its own core. The parent only watches: it starts the workers, waits
until every one listens, starts a new one when one dies, and on SIGINT/SIGTERM stops them
all. Workers are forked before any thread exists in the parent, so no lock is copied while
held; whatever a worker needs threads for (file watching, the access log) it starts itself.
A worker whose parent is gone (killed with SIGKILL, crashed) stops by itself: nothing else
would ever stop it, and it would hold the port.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger("hyper2web")

# A worker gets its index and a function to call once its socket listens.
WorkerMain = Callable[[int, Callable[[], None]], None]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
MAX_RESTARTS = 5  # within RESTART_WINDOW seconds; more means a crash loop: give up
RESTART_WINDOW = 10.0
POLL = 0.05
PARENT_CHECK = 0.5  # how often a worker looks whether its parent still runs (seconds)
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class WorkerPool:
    """Runs ``count`` workers of ``main`` until a signal or a crash loop stops them."""

    def __init__(self, count: int, main: WorkerMain) -> None:
        if count < 1:
            raise ValueError("at least one worker is needed")
        self.count = count
        self.main = main
        self.pids: dict[int, int] = {}  # pid -> worker index
        self.stopping = False
        self._restarts: list[float] = []
        self._ready_r = self._ready_w = -1

    def run(self, ready: Callable[[], None] | None = None) -> int:
        """Start the workers, call ``ready`` once all listen, supervise; the exit code."""
        self._ready_r, self._ready_w = os.pipe()
        previous = {signum: signal.signal(signum, self._on_signal)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            for index in range(self.count):
                self._start(index)
            if not self._wait_until_listening():
                self.stop()
                self._reap_all()
                return 1
            if ready is not None:
                ready()
            return self._supervise()
        except BaseException:
            # A failed fork, an error in ``ready``: never leave workers without a parent.
            self.stop()
            self._reap_all()
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._ready_r)
            os.close(self._ready_w)

    # -- workers ---------------------------------------------------------------------------

    def _start(self, index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        # Until the worker has handlers of its own, a stop signal sent to it would run the
        # parent's handler in the worker's copy and be lost: keep them pending until then.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:  # the worker: it never returns into the parent's code
                code = 1
                try:
                    code = self._worker(index, parent, mask)
                finally:
                    os._exit(code)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.pids[pid] = index
        log.debug("worker %d started (pid %d)", index, pid)

    def _worker(self, index: int, parent: int, mask: set[int | signal.Signals]) -> int:
        code = 0
        try:
            # The parent's handlers would only set its flag in this copy. The worker's server
            # installs its own; until then a stop signal ends the worker quietly.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, _exit_quietly)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(self._ready_r)
            _stop_when_orphaned(parent)
            self.main(index, self._say_listening)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except KeyboardInterrupt:
            code = 0
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # the worker is ending
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        return code

    def _say_listening(self) -> None:
        """In a worker: tell the parent that this worker's socket listens."""
        os.write(self._ready_w, b"x")

    def _wait_until_listening(self) -> bool:
        """True once every worker said it listens; False if one died first or time ran out."""
        waiting = self.count
        deadline = time.monotonic() + START_TIMEOUT
        while waiting and not self.stopping:
            readable, _, _ = select.select([self._ready_r], [], [], POLL)
            if readable:
                waiting -= len(os.read(self._ready_r, waiting))
            ended = self._reap()
            for _, index, code in ended:
                log.error("hyper2web: worker %d exited during start-up (%s)", index,
                          describe_exit(code))
            if ended:
                return False
            if time.monotonic() > deadline:
                log.error("hyper2web: workers did not start within %g s", START_TIMEOUT)
                return False
        return not self.stopping

    def _supervise(self) -> int:
        while self.pids:
            if self.stopping:
                self.stop()  # again: a worker forked while the signal arrived missed it
                self._reap_all()
                return 0
            for pid, index, code in self._reap():
                if self.stopping:
                    continue
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
                if len(self._restarts) >= MAX_RESTARTS:
                    log.error("hyper2web: workers keep exiting (%d restarts in %g s); "
                              "stopping", MAX_RESTARTS, RESTART_WINDOW)
                    self.stop()
                    self._reap_all()
                    return 1
                self._restarts.append(now)
                self._start(index)
                new_pid = next(p for p, i in self.pids.items() if i == index)
                log.warning("worker %d (pid %d) %s; started a new one (pid %d)", index, pid,
                            describe_exit(code), new_pid)
            time.sleep(POLL)
        return 0

    def _reap(self) -> list[tuple[int, int, int]]:
        """Workers that ended since the last look, forgotten: ``(pid, index, exit code)``.

        The exit code is -N for a worker killed by signal N.
        """
        ended = []
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left at all (reaped elsewhere)
                ended += [(pid, index, -1) for pid, index in self.pids.items()]
                self.pids.clear()
                break
            if pid == 0:
                break
            if pid in self.pids:
                ended.append((pid, self.pids.pop(pid), os.waitstatus_to_exitcode(status)))
        return ended

    # -- stopping --------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Ask every worker to stop (SIGTERM: each drains its connections and exits)."""
        self.stopping = True
        for pid in list(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _reap_all(self) -> None:
        """Wait for every worker to exit; SIGKILL those still running after STOP_TIMEOUT."""
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.pids:
            self._reap()
            if not self.pids:
                break
            if time.monotonic() > deadline:
                for pid in list(self.pids):
                    log.warning("worker pid %d did not stop; killing it", pid)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                deadline = float("inf")
            time.sleep(POLL)


def _exit_quietly(signum: int, frame: object) -> None:
    """SIGTERM in a worker whose server does not run (yet, or any more): exit with code 0."""
    raise SystemExit(0)


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM this worker (a graceful stop) once ``parent`` is no longer its parent."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK)
        log.warning("hyper2web: the parent process (pid %d) is gone; worker pid %d stops",
                    parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="hyper2web-parent-watch").start()


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"

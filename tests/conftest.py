"""Fixtures: real servers on loopback ports, certificates, and tool checks.

Servers bind port 0 and report the port they got; nothing here hard-codes a port.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hyper2web import App
from hyper2web._curio import curio
from hyper2web.certs import write_certificates
from tests.support import CliServer, start_cli

# Every process the session starts inherits this variable; one still running when the
# session ends was left behind (an unstopped server, a forked worker that kept going).
SESSION_MARK = "HYPER2WEB_TEST_SESSION"
LEFT_BEHIND_GRACE = 5.0  # seconds a process stopped at the very end may take to exit


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ[SESSION_MARK] = uuid.uuid4().hex


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    mark = os.environ.get(SESSION_MARK)
    if not mark:
        return
    deadline = time.monotonic() + LEFT_BEHIND_GRACE
    while (left := _processes_marked(f"{SESSION_MARK}={mark}")) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not left:
        return
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("=", "processes left running by the tests (now killed)", red=True)
        for pid, command in left.items():
            reporter.write_line(f"  {pid}: {command}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _processes_marked(entry: str) -> dict[int, str]:
    """Running processes other than this one whose environment holds ``entry``."""
    wanted = entry.encode()
    found = {}
    for folder in Path("/proc").glob("[0-9]*"):
        pid = int(folder.name)
        if pid == os.getpid():
            continue
        try:
            if wanted not in (folder / "environ").read_bytes().split(b"\0"):
                continue
            command = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if command:  # a zombie has no command line: it has exited
            found[pid] = command
    return found


@pytest.fixture(scope="session")
def cert_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One certificate for localhost, shared by every test of the session."""
    folder = tmp_path_factory.mktemp("certs")
    return write_certificates(folder)


class RunningApp:
    """An ``App`` serving in a background thread of this process."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def port(self) -> int:
        return self.app.port

    @property
    def url(self) -> str:
        return f"https://localhost:{self.app.port}"

    def start(self) -> RunningApp:
        server = self.app.make_server()
        ready = threading.Event()

        def run() -> None:
            try:
                curio.run(server.serve, lambda _: ready.set())
            except BaseException as exc:  # reported by stop()
                self.error = exc
                ready.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("server did not start within 10 s")
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        self.app.shutdown()
        if self.thread is not None:
            self.thread.join(10)
            assert not self.thread.is_alive(), "server did not stop within 10 s"
        if self.error:
            raise self.error


@pytest.fixture
def serve_app(cert_pair: tuple[Path, Path]) -> Iterator[Callable[..., RunningApp]]:
    """``serve_app(app)`` or ``serve_app(root=..., **App kwargs)``: a running server."""
    running: list[RunningApp] = []

    def start(app: App | None = None, **kwargs: object) -> RunningApp:
        if app is None:
            kwargs.setdefault("port", 0)
            kwargs.setdefault("certfile", cert_pair[0])
            kwargs.setdefault("keyfile", cert_pair[1])
            app = App(**kwargs)  # type: ignore[arg-type]
        else:
            app.port = 0 if app.port == 5000 else app.port
            app.certfile, app.keyfile = str(cert_pair[0]), str(cert_pair[1])
        server = RunningApp(app).start()
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def cli_server(tmp_path: Path) -> Iterator[Callable[..., CliServer]]:
    """``cli_server(["serve", root, "--port", "0"], cwd=...)``; stopped after the test."""
    started: list[CliServer] = []
    home = tmp_path / "home"
    home.mkdir()

    def start(args: list[str], cwd: Path | None = None,
              env: dict[str, str] | None = None) -> CliServer:
        server = start_cli(args, cwd or tmp_path,
                           {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                            **(env or {})})
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small site: index, css, js, a sub folder with an index, a dotfile, a 2 KB page."""
    root = tmp_path / "public"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text(
        "<!doctype html><html><head><title>Home</title></head><body>home</body></html>")
    (root / "style.css").write_text("body { color: red; }\n")
    (root / "app.js").write_text("console.log('hi');\n")
    (root / "mod.mjs").write_text("export const x = 1;\n")
    (root / "docs" / "index.html").write_text("<!doctype html><title>Docs</title>docs")
    (root / ".env").write_text("SECRET=1\n")
    (root / "empty.txt").write_bytes(b"")
    return root

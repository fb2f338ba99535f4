"""``serve --workers N``: N processes share the port, a dead one is replaced, Ctrl+C stops
them all, and live reload reaches the tabs of every worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reload.livekit import HttpxEventStream, edit, prime_site, wait_output, wait_until
from tests.server.h2client import H2Client

Serve = Callable[..., Any]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads worker processes from /proc")


def worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def established_connections(pid: int) -> int:
    """TCP connections in state ESTABLISHED whose socket belongs to process ``pid``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def test_workers_share_the_port_and_are_replaced(serve: Serve) -> None:
    server = serve("--workers", "2")
    wait_output(server, "Workers: 2 processes")
    pids = worker_pids(server.proc.pid)
    assert len(pids) == 2
    clients = [H2Client(server.port, timeout=10) for _ in range(16)]
    try:
        for client in clients:
            assert client.get("/index.html", timeout=5).status == 200
        # The kernel spread the connections over both workers.
        assert all(established_connections(pid) > 0 for pid in pids), \
            [established_connections(pid) for pid in pids]
    finally:
        for client in clients:
            client.close()

    os.kill(pids[0], signal.SIGKILL)
    output = wait_output(server, "started a new one")
    assert f"(pid {pids[0]}) was killed by SIGKILL" in output
    wait_until(lambda: len(worker_pids(server.proc.pid)) == 2, 5, "no new worker")
    replaced = worker_pids(server.proc.pid)
    assert pids[0] not in replaced and pids[1] in replaced
    for _ in range(8):
        with H2Client(server.port, timeout=10) as client:
            assert client.get("/hello.txt", timeout=5).body == b"hello world\n"

    assert server.stop(signal.SIGINT) == 0
    for pid in replaced:
        wait_until(lambda pid=pid: not os.path.exists(f"/proc/{pid}/status") or
                   "Z" in Path(f"/proc/{pid}/status").read_text().split("State:")[1][:4],
                   5, f"worker {pid} still runs")


def test_workers_stop_when_their_parent_is_killed(serve: Serve) -> None:
    # SIGKILL cannot be caught: the workers themselves notice they lost their parent.
    server = serve("--workers", "2")
    wait_output(server, "Workers: 2 processes")
    pids = worker_pids(server.proc.pid)
    assert len(pids) == 2
    server.proc.kill()
    server.proc.wait(5)
    for pid in pids:
        wait_until(lambda pid=pid: not os.path.exists(f"/proc/{pid}/status") or
                   "Z" in Path(f"/proc/{pid}/status").read_text().split("State:")[1][:4],
                   5, f"worker {pid} outlived its parent")
    output = wait_output(server, "is gone; worker pid")
    assert f"(pid {server.proc.pid}) is gone" in output


def test_live_reload_reaches_the_tabs_of_every_worker(
        serve: Serve, project: Path, subscribe: Callable[..., HttpxEventStream]) -> None:
    # Over HTTP/2 and over HTTP/1.1: each worker serves the event stream on both.
    server = serve("--workers", "2")
    wait_output(server, "Workers: 2 processes")
    pids = worker_pids(server.proc.pid)
    streams = [subscribe(server.url) for _ in range(12)]
    try:
        for stream in streams:
            assert stream.next().kind == "hello"
        boot_ids = {stream.parser.events[0].data["id"] for stream in streams}
        assert len(boot_ids) == 1, "a tab reconnecting to another worker would reload"
        assert all(established_connections(pid) > 0 for pid in pids)
        for stream in streams:
            prime_site(stream, project / "public")
        edit(project / "public" / "index.html", "<!doctype html><title>new</title>new")
        for stream in streams:
            event = stream.until(lambda e: "/index.html" in e.paths or "/" in e.paths)
            assert event.kind == "reload"
    finally:
        for stream in streams:
            stream.close()


def test_a_bad_worker_count_is_a_clear_error(project: Path,
                                             cert_pair: tuple[Path, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hyper2web_cli", "serve", "public", "--workers", "0",
         "--cert", str(cert_pair[0]), "--key", str(cert_pair[1])],
        cwd=project, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "Invalid value for '--workers'" in done.stderr
    assert "Traceback" not in done.stderr


def test_app_up_with_workers(tmp_path: Path, cert_pair: tuple[Path, Path]) -> None:
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("<!doctype html><title>w</title>w")
    script = tmp_path / "app.py"
    script.write_text(
        "import os\n"
        "from hyper2web import app\n"
        "async def pid(request, response):\n"
        "    await response.send(str(os.getpid()).encode())\n"
        f"app = app.App(port=0, certfile={str(cert_pair[0])!r}, keyfile={str(cert_pair[1])!r})\n"
        "app.get('pid', pid)\n"
        "app.up(lambda a: print('PORT', a.port, flush=True), workers=2)\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("PORT"):
                port = int(line.split()[1])
        assert port, "the app did not start"
        seen = set()
        for _ in range(24):
            with H2Client(port, timeout=10) as client:
                seen.add(client.get("/pid", timeout=5).body)
        assert len(seen) == 2, f"answered by {len(seen)} process(es)"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_to_one_worker_stops_that_worker(serve: Serve) -> None:
    server = serve("--workers", "2")
    wait_output(server, "Workers: 2 processes")
    first, second = worker_pids(server.proc.pid)
    for _ in range(3):  # each worker has its own shutdown signal: never the other's
        os.kill(first, signal.SIGTERM)
        output = wait_output(server, f"(pid {first}) exited with code 0; started a new one")
        assert f"(pid {second}) exited" not in output
        assert os.path.exists(f"/proc/{second}")
        wait_until(lambda: len(worker_pids(server.proc.pid)) == 2, 5, "no new worker")
        first = next(pid for pid in worker_pids(server.proc.pid) if pid != second)
    assert server.stop(signal.SIGINT) == 0


def test_a_port_held_by_other_workers_is_in_use(serve: Serve, project: Path,
                                                cert_pair: tuple[Path, Path]) -> None:
    server = serve("--workers", "2")
    wait_output(server, "Workers: 2 processes")
    other = subprocess.run(
        [sys.executable, "-m", "hyper2web_cli", "serve", "public", "--workers", "2",
         "--port", str(server.port), "--strict-port", "--no-reload",
         "--cert", str(cert_pair[0]), "--key", str(cert_pair[1])],
        cwd=project, capture_output=True, text=True, timeout=30)
    assert other.returncode == 1, other.stdout + other.stderr
    assert "already in use" in other.stderr

"""The three servers under test: how each is configured, started, measured and stopped."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h2.exceptions
import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*

from tests.server.h2client import HOST, H2Client

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers"
BIG = 1_000_000_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 (bind port 0, read it, let it go)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def venv_script(name: str, missing: str = "") -> str:
    """The console script ``name`` beside this Python, else from PATH; ``missing`` is what
    to say when there is neither."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(missing or f"{name} not found: run 'make bench' (it installs "
                                    ".[bench])")
    return found


def pin(cpu: int | str | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


@dataclass
class Paths:
    """Everything the servers share: the site, the certificate, a HOME, a scratch folder."""

    site: Path
    cert: Path
    key: Path
    home: Path
    scratch: Path

    @property
    def public(self) -> Path:
        return self.site / "public"


@dataclass
class Server:
    name: str
    paths: Paths
    cpu: int | str | None  # one CPU, or a list such as "0,1"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    # what each server type fills in
    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.paths.home)}

    def cwd(self) -> Path:
        return self.paths.site

    def output_files(self, tag: str) -> tuple[Path, Path]:
        """Where stdout and stderr go (never the terminal)."""
        return (self.paths.scratch / f"{self.name}{tag}.out",
                self.paths.scratch / f"{self.name}{tag}.err")

    def launch(self, port: int, tag: str = "") -> subprocess.Popen[bytes]:
        out, err = self.output_files(tag)
        self.logs += [out, err]
        with open(out, "ab") as stdout, open(err, "ab") as stderr:
            return subprocess.Popen(pin(self.cpu) + self.command(port), cwd=self.cwd(),
                                    env=self.env(), stdout=stdout, stderr=stderr,
                                    stdin=subprocess.DEVNULL)

    def start(self) -> None:
        self.port = free_port()
        self.proc = self.launch(self.port)
        wait_ready(self.proc, self.port, self.name, self.logs)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def shown_command(self) -> str:
        return shlex.join(pin(self.cpu) + self.command(self.port))

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's process and all its descendants."""
        assert self.proc is not None
        return sum(_cpu_seconds(pid) for pid in [self.proc.pid, *_descendants(self.proc.pid)])

    def rss_kb(self) -> int:
        """VmRSS of the server's process and all its descendants, in KB."""
        assert self.proc is not None
        return sum(_rss_kb(pid) for pid in [self.proc.pid, *_descendants(self.proc.pid)])


class Hyper2web(Server):
    """``hyper2web serve`` as a developer runs it: live reload on, access log on (to a file)."""

    def command(self, port: int) -> list[str]:
        return [venv_script("hyper2web"), "serve", str(self.paths.public),
                "--host", HOST, "--port", str(port), "--strict-port",
                "--cert", str(self.paths.cert), "--key", str(self.paths.key)]


class Hyper2webWorkers(Hyper2web):
    """``hyper2web serve --workers N``, not pinned: its workers may use every core."""

    workers: int = 1

    def command(self, port: int) -> list[str]:
        return [*super().command(port), "--workers", str(self.workers)]


class Hypercorn(Server):
    """hypercorn (asyncio worker) + starlette StaticFiles, one process, at its defaults except
    for limits that would otherwise fail or close connections during a run."""

    def config(self, port: int) -> Path:
        path = self.paths.scratch / f"hypercorn-{port}.toml"
        path.write_text("\n".join([
            f'bind = ["{HOST}:{port}"]',
            f'certfile = "{self.paths.cert}"',
            f'keyfile = "{self.paths.key}"',
            'worker_class = "asyncio"',
            "workers = 0",  # serve in this process: one process, like the others
            f"keep_alive_max_requests = {BIG}",
            "keep_alive_timeout = 3600",
            "backlog = 2048",
            "",
        ]))
        return path

    def command(self, port: int) -> list[str]:
        return [venv_script("hypercorn"), "--config", str(self.config(port)),
                f"{PEERS / 'starlette_app'}:app"]

    def env(self) -> dict[str, str]:
        return {**super().env(), "BENCH_SITE": str(self.paths.site)}


class Nginx(Server):
    """nginx with one worker, HTTP/2 over TLS, a fixed JSON answer for the API route."""

    def config(self, port: int) -> Path:
        prefix = self.paths.scratch / "nginx"
        prefix.mkdir(exist_ok=True)
        records = json.dumps(json.loads((self.paths.site / "records.json").read_text()),
                             separators=(",", ":"))
        listen = (f"listen {HOST}:{port} ssl; http2 on;" if nginx_version() >= (1, 25, 1)
                  else f"listen {HOST}:{port} ssl http2;")
        temp = "\n".join(f"  {name}_temp_path {prefix / name};"
                         for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        path = prefix / f"nginx-{port}.conf"
        path.write_text(f"""\
worker_processes 1;
daemon off;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} warn;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
  types {{
    text/html html;
    text/javascript js;
    application/json json;
    application/octet-stream bin;
  }}
  default_type application/octet-stream;
  access_log {prefix / 'access.log'};
{temp}
  sendfile on;
  keepalive_requests {BIG};
  keepalive_timeout 3600s;
  server {{
    {listen}
    server_name localhost;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {self.paths.cert};
    ssl_certificate_key {self.paths.key};
    root {self.paths.public};
    location = {'/api/records'} {{
      default_type application/json;
      return 200 '{records}';
    }}
  }}
}}
""")
        return path

    def command(self, port: int) -> list[str]:
        prefix = self.paths.scratch / "nginx"
        return ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"),
                "-c", str(self.config(port))]


def nginx_version() -> tuple[int, ...]:
    text = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    version = text.strip().rpartition("/")[2].split()[0]
    return tuple(int(part) for part in version.split("."))


def h2_status(port: int) -> int | None:
    """GET /index.html over HTTP/2 (greeting done first, the server's SETTINGS read); None
    while the server is not listening yet or reset the stream."""
    try:
        with H2Client(port, timeout=5, handshake=True, track_frames=False) as client:
            return client.get("/index.html").status
    except (OSError, h2.exceptions.ProtocolError):  # OSError: ConnectionError, timeouts
        return None


def wait_ready(proc: subprocess.Popen[bytes], port: int, name: str, logs: list[Path],
               limit: float = 30.0,
               probe: Callable[[int], int | None] = h2_status) -> float:
    """Poll GET /index.html (``probe``) until a 200; returns the seconds waited. Exits on
    failure."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with code {proc.returncode} while starting\n"
                             + log_tails(logs))
        status = probe(port)
        if status is None:
            time.sleep(0.002)
            continue
        if status == 200:
            return time.perf_counter() - started
        raise SystemExit(f"{name} answered {status} to GET /index.html\n" + log_tails(logs))
    stop_process(proc)
    raise SystemExit(f"{name} did not answer within {limit:g} s\n" + log_tails(logs))


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def log_tails(logs: list[Path]) -> str:
    parts = []
    for path in logs:
        if path.exists() and path.stat().st_size:
            lines = path.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {path}\n" + "\n".join(lines))
    return "\n".join(parts)


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found

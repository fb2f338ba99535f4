"""make bench: hyper2web against hypercorn + starlette and nginx, on one site and certificate.

Starts the three servers on loopback (free ports), the server pinned to one CPU and the load
generator (h2load) to another, runs every throughput scenario once per server per round
(interleaved, ROUNDS rounds) and reports medians. Prints one table and writes it, with the
machine, the versions and the exact commands, to bench/RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import benchsite
import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*
import servers
from servers import Hyper2web, Hypercorn, Nginx, Paths, Server

from tests.server.h2client import HOST, h2_get

ROUNDS = 3
WORKER_COUNTS = (1, 2)
WORKER_SCENARIOS = ("S1", "S4", "S4h")
DURATION = 2  # seconds of each timed h2load run
HANDSHAKE_RUNS = 3  # S4h runs per server per round (each is only 100 requests)
IDLE_CONNECTIONS = 1000
STARTS = 10
NOISY = 0.25  # a run during which other processes used this much of a core is marked
RESULTS = servers.BENCH / "RESULTS.md"
PROFILES = servers.BENCH / "profiles"
NAMES = ("hyper2web", "hypercorn", "nginx")


# ---------------------------------------------------------------------------- scenarios

@dataclass
class Scenario:
    key: str
    title: str
    unit: str
    args: list[str] = field(default_factory=list)  # h2load options
    path: str = ""
    headers: Callable[[Server], list[str]] | None = None
    expect: str = "2xx"  # the status class every response must have
    figure: Callable[[dict[str, float]], float] = lambda run: run["rps"]
    runs: int = 1
    higher_is_better: bool = True
    target: str = ""
    met: Callable[[dict[str, float]], bool] | None = None
    skip: tuple[str, ...] = ()  # servers not measured here (shown as "-"), and why: README


def _ratio_to(peer: str, key: str, factor: float) -> Callable[[dict[str, float]], bool]:
    return lambda figures: figures[f"{key}:{peer}"] >= 0 and \
        figures[f"{key}:hyper2web"] >= factor * figures[f"{key}:{peer}"]


ETAGS: dict[str, str] = {}
TIMED = ["-D", str(DURATION)]

SCENARIOS = [
    Scenario("S1", "small file (2 KB html)", "req/s", [*TIMED, "-c", "10", "-m", "10"],
             benchsite.PAGE, target=">= 6x hypercorn and >= 10,000 req/s",
             met=lambda f: _ratio_to("hypercorn", "S1", 6)(f) and f["S1:hyper2web"] >= 10_000),
    Scenario("S2", "30 KB js", "req/s", [*TIMED, "-c", "10", "-m", "10"], benchsite.SCRIPT),
    Scenario("S3", "1 MB file", "MB/s", [*TIMED, "-c", "4", "-m", "1"], benchsite.LARGE,
             figure=lambda run: run["rps"] * benchsite.LARGE_SIZE / 1e6,
             target=">= 1.5x hypercorn", met=_ratio_to("hypercorn", "S3", 1.5)),
    # S4 as the reference figures measure it (nginx ~19,500 req/s there): 100
    # connections opened inside the timed window, handshakes included, one stream at a time.
    Scenario("S4", "100 fresh connections, one stream each", "req/s",
             [*TIMED, "-c", "100", "-m", "1"], benchsite.PAGE,
             target=">= 3x hypercorn", met=_ratio_to("hypercorn", "S4", 3)),
    # The handshake alone: each of the 100 connections carries a single request.
    Scenario("S4h", "100 fresh connections, one request each (handshake-bound)", "req/s",
             ["-n", "100", "-c", "100", "-m", "1"], benchsite.PAGE, runs=HANDSHAKE_RUNS),
    Scenario("S5", f"module page: 1 html + {benchsite.MODULES} ES modules, 1 connection",
             "req/s", [*TIMED, "-c", "1", "-m", "100"],
             target=">= 6x hypercorn", met=_ratio_to("hypercorn", "S5", 6)),
    Scenario("S6", "API route returning JSON", "req/s", [*TIMED, "-c", "10", "-m", "10"],
             benchsite.API, target=">= 4x hypercorn", met=_ratio_to("hypercorn", "S6", 4)),
    Scenario("S9", "304 revalidation (if-none-match, 30 KB js)", "req/s",
             [*TIMED, "-c", "10", "-m", "10"], benchsite.SCRIPT, expect="3xx",
             headers=lambda server: ["-H", f"if-none-match: {ETAGS[server.name]}"]),
    # HTTP/1.1 clients (curl --http1.1, urllib, test tools): keep-alive, no pipelining.
    Scenario("S10", "small file (2 KB html) over HTTP/1.1", "req/s",
             [*TIMED, "--h1", "-c", "10", "-m", "1"], benchsite.PAGE,
             # hypercorn's HTTP/1.1 status line has no reason phrase ("HTTP/1.1 200 "),
             # which h2load counts as a failed request: no figure to compare.
             skip=("hypercorn",)),
]
S7 = Scenario("S7", f"RSS per idle h2 connection ({IDLE_CONNECTIONS} open)", "KB/conn",
              higher_is_better=False, target="<= 30 KB",
              met=lambda f: 0 <= f["S7:hyper2web"] <= 30)
S8 = Scenario("S8", "start-up: launch to first 200", "ms", higher_is_better=False,
              target="<= 300 ms", met=lambda f: 0 <= f["S8:hyper2web"] <= 300)
ORDER = ["S1", "S2", "S3", "S4", "S4h", "S5", "S6", "S7", "S8", "S9", "S10"]


# ---------------------------------------------------------------------------- h2load

@dataclass
class Run:
    command: list[str]
    output: str
    rps: float = -1.0
    bad: int = 0  # failed, errored, timed out, unfinished, or with an unexpected status
    problem: str = ""
    others: float = 0.0  # cores used by processes other than this server and h2load
    steal: float = 0.0  # cores taken by the hypervisor


def machine_cpu() -> tuple[float, float]:
    """(user + nice + system, steal) seconds of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:3]) / servers.CLOCK_TICKS, values[7] / servers.CLOCK_TICKS


def own_cpu() -> float:
    """CPU seconds of this process and of the children it has waited for (h2load runs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


H2LOAD_FINISHED = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
H2LOAD_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                             r"(\d+) failed, (\d+) errored, (\d+) timeout")
H2LOAD_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def h1_get(port: int, path: str) -> tuple[int, bytes]:
    """One GET over HTTP/1.1 (ALPN http/1.1), for the checks before S10."""
    import http.client
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    conn = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def h2load(args: list[str], url: str, expect: str, cpu: int | str | None) -> Run:
    command = servers.pin(cpu) + ["h2load", *args, url]
    limit = (DURATION + 60) if "-D" in args else 120
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode()
        return Run(command, output, bad=1, problem=f"h2load did not finish in {limit} s")
    output = done.stdout + done.stderr
    run = Run(command, output)
    finished = H2LOAD_FINISHED.search(output)
    requests = H2LOAD_REQUESTS.search(output)
    status = H2LOAD_STATUS.search(output)
    if done.returncode != 0 or not (finished and requests and status):
        run.bad = max(1, int(requests.group(1)) if requests else 1)
        run.problem = f"h2load exited with code {done.returncode}"
        return run
    run.rps = float(finished.group(1))
    total, _, finished_count, _, failed = (int(value) for value in requests.groups()[:5])
    codes = dict(zip(("2xx", "3xx", "4xx", "5xx"), (int(v) for v in status.groups()),
                     strict=True))
    unexpected = sum(count for name, count in codes.items()
                     if name in ("2xx", "3xx") and name != expect)
    run.bad = failed + unexpected + max(0, total - finished_count)
    if run.bad:
        run.problem = (f"{failed} failed, {unexpected} with a status other than {expect}, "
                       f"{max(0, total - finished_count)} unfinished")
    if total == 0:
        run.bad, run.rps, run.problem = 1, -1.0, "no request completed"
    return run


# ---------------------------------------------------------------------------- the bench

class ServerCrashed(Exception):
    """A server exited during a run: (title, command, output)."""


class Bench:
    def __init__(self, scratch: Path) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        self.usable_cpus = len(cpus)
        # This process is pinned to the client's CPU below; what it starts unpinned must
        # name every CPU, or it would inherit that one.
        self.every_cpu = ",".join(str(cpu) for cpu in cpus) if shutil.which("taskset") else None
        self.worker_figures: dict[tuple[str, int], float] = {}
        self.worker_commands: dict[tuple[str, int], str] = {}
        two = len(cpus) >= 2 and shutil.which("taskset") is not None
        self.server_cpu = cpus[0] if two else None
        self.client_cpu = cpus[1] if two else None
        if self.client_cpu is not None:
            os.sched_setaffinity(0, {self.client_cpu})  # this process is a client too
        self.paths = prepare(scratch)
        self.servers: list[Server] = [cls(name, self.paths, self.server_cpu) for name, cls in
                                      zip(NAMES, (Hyper2web, Hypercorn, Nginx), strict=True)]
        self.samples: dict[str, list[float]] = {}
        self.bad: dict[str, int] = {}
        self.commands: dict[str, list[str]] = {}
        self.problems: list[str] = []
        self.tls: dict[str, str] = {}
        self.rss_notes: list[str] = []
        self.noise: list[tuple[float, float]] = []  # (others, steal) per timed run
        self.noisy: dict[str, list[float]] = {}  # key:server -> others of each run

    def record(self, key: str, server: str, value: float, bad: int, command: str) -> None:
        name = f"{key}:{server}"
        if value >= 0:
            self.samples.setdefault(name, []).append(value)
        self.bad[name] = self.bad.get(name, 0) + bad
        commands = self.commands.setdefault(name, [])
        if command not in commands:
            commands.append(command)

    def problem(self, title: str, command: str, output: str) -> None:
        self.problems.append(f"{title}\n\n    {command}\n\n" + "\n".join(
            "    " + line for line in output.strip().splitlines()[-25:]))
        print(f"  ! {title}", flush=True)

    # ---- runs

    def start(self) -> None:
        for server in self.servers:
            server.start()
            print(f"  {server.name} on port {server.port} (pid {server.proc.pid})", flush=True)

    def check_content(self) -> None:
        """Every server answers the same bytes; fetch the etags S9 revalidates with."""
        site = self.paths.site
        expected = {
            benchsite.SCRIPT: (site / "public/app.js").read_bytes(),
            benchsite.LARGE: (site / "public/files/large.bin").read_bytes(),
            "/modules/m000.js": (site / "public/modules/m000.js").read_bytes(),
        }
        page = (site / "public/index.html").read_bytes()
        records = json.loads((site / "records.json").read_text())
        for server in self.servers:
            for path, body in expected.items():
                result = h2_get(server.port, path)
                status, got = result.status, result.body
                if status != 200 or got != body:
                    raise SystemExit(f"{server.name}: GET {path} gave {status}, "
                                     f"{len(got)} bytes, not the file's {len(body)}")
            status, got = h1_get(server.port, benchsite.SCRIPT)
            if status != 200 or got != expected[benchsite.SCRIPT]:
                raise SystemExit(f"{server.name}: GET {benchsite.SCRIPT} over HTTP/1.1 gave "
                                 f"{status}, {len(got)} bytes")
            result = h2_get(server.port, benchsite.PAGE)
            status, got = result.status, result.body
            # hyper2web injects its live reload client into HTML: the page plus a script tag
            if status != 200 or (got != page and (server.name != "hyper2web" or
                                                  b"__hyper2web__" not in got)):
                raise SystemExit(f"{server.name}: GET {benchsite.PAGE} gave {status}, "
                                 f"{len(got)} bytes")
            result = h2_get(server.port, benchsite.API)
            status, got = result.status, result.body
            if status != 200 or json.loads(got) != records or \
                    not (result.header("content-type") or "").startswith("application/json"):
                raise SystemExit(f"{server.name}: GET {benchsite.API} gave {status}, {got[:80]!r}")
            ETAGS[server.name] = etag_of(server.port, benchsite.SCRIPT)
            status = h2_get(server.port, benchsite.SCRIPT,
                            headers=[("if-none-match", ETAGS[server.name])]).status
            if status != 304:
                raise SystemExit(f"{server.name}: if-none-match {ETAGS[server.name]} "
                                 f"gave {status}, not 304")

    def uri_file(self, server: Server) -> Path:
        path = self.paths.scratch / f"uris-{server.name}.txt"
        base = f"https://{HOST}:{server.port}"
        path.write_text("".join(f"{base}{p}\n" for p in benchsite.module_paths()))
        return path

    def h2load_run(self, scenario: Scenario, server: Server, pinned: bool = True) -> Run:
        args = list(scenario.args)
        if scenario.headers is not None:
            args += scenario.headers(server)
        if scenario.key == "S5":
            args += ["-i", str(self.uri_file(server))]
            url = ""
        else:
            url = f"https://{HOST}:{server.port}{scenario.path}"
        busy, steal = machine_cpu()
        ours = own_cpu() + server.cpu_seconds()
        started = time.perf_counter()
        run = h2load(args, url, scenario.expect, self.client_cpu if pinned else self.every_cpu)
        wall = time.perf_counter() - started
        busy_after, steal_after = machine_cpu()
        ours = own_cpu() + server.cpu_seconds() - ours
        run.others = max(0.0, (busy_after - busy) - ours) / wall
        run.steal = (steal_after - steal) / wall
        self.noise.append((run.others, run.steal))
        if not url:
            run.command = run.command[:-1]
        return run

    def warm_up(self) -> None:
        for server in self.servers:
            scenario = Scenario("warm-up", "", "", ["-n", "2000", "-c", "10", "-m", "10"],
                                benchsite.PAGE)
            run = self.h2load_run(scenario, server)
            for name in ("TLS Protocol", "Cipher", "Server Temp Key", "Application protocol"):
                found = re.search(rf"^{name}: (.+)$", run.output, re.M)
                if found:
                    self.tls[server.name] = self.tls.get(server.name, "") + \
                        ("; " if server.name in self.tls else "") + found.group(1)
            self.record("warm-up", server.name, run.rps, run.bad, shlex.join(run.command))
            if run.bad:
                self.problem(f"warm-up on {server.name}: {run.problem}",
                             shlex.join(run.command), run.output)

    def throughput(self) -> None:
        for round_number in range(ROUNDS):
            print(f"  round {round_number + 1}/{ROUNDS}", flush=True)
            shift = round_number % len(self.servers)
            order = self.servers[shift:] + self.servers[:shift]
            for scenario in SCENARIOS:
                line = []
                for server in order:
                    if server.name in scenario.skip:
                        continue
                    values = []
                    for _ in range(scenario.runs):
                        run = self.h2load_run(scenario, server)
                        value = scenario.figure({"rps": run.rps}) if run.rps >= 0 else -1
                        self.record(scenario.key, server.name, value, run.bad,
                                    shlex.join(run.command))
                        self.noisy.setdefault(f"{scenario.key}:{server.name}", []).append(
                            run.others)
                        values.append(value)
                        if run.bad:
                            self.problem(f"{scenario.key} on {server.name}, round "
                                         f"{round_number + 1}: {run.problem}",
                                         shlex.join(run.command), run.output)
                        if server.proc.poll() is not None:
                            raise ServerCrashed(
                                f"{server.name} exited with code {server.proc.returncode} "
                                f"during {scenario.key}, round {round_number + 1}",
                                shlex.join(run.command),
                                run.output + "\n" + servers.log_tails(server.logs))
                    busy = max(self.noisy[f"{scenario.key}:{server.name}"][-scenario.runs:])
                    mark = f" (others {busy:.2f} cores)" if busy >= NOISY else ""
                    line.append(f"{server.name} {statistics.median(values):,.0f}{mark}")
                print(f"    {scenario.key} {scenario.unit}: " + ", ".join(line), flush=True)

    def compare_workers(self) -> None:
        """S1, S4 and S4h against ``serve --workers 1`` and ``--workers 2``, neither pinned."""
        for count in WORKER_COUNTS:
            server = servers.Hyper2webWorkers(f"hyper2web --workers {count}", self.paths,
                                              self.every_cpu)
            server.workers = count
            server.start()
            try:
                for scenario in SCENARIOS:
                    if scenario.key not in WORKER_SCENARIOS:
                        continue
                    values = []
                    for _ in range(ROUNDS * scenario.runs):
                        run = self.h2load_run(scenario, server, pinned=False)
                        values.append(run.rps)
                        self.bad[f"workers:{count}"] = self.bad.get(f"workers:{count}", 0) + \
                            run.bad
                        if run.bad:
                            self.problem(f"{scenario.key} on {server.name}: {run.problem}",
                                         shlex.join(run.command), run.output)
                    self.worker_figures[(scenario.key, count)] = statistics.median(values)
                    self.worker_commands[(scenario.key, count)] = shlex.join(run.command)
                    print(f"    {scenario.key} --workers {count}: "
                          f"{statistics.median(values):,.0f} req/s", flush=True)
                self.worker_commands[("serve", count)] = server.shown_command()
            finally:
                server.stop()

    def workers_table(self) -> list[str]:
        if not self.worker_figures:
            return []
        first, last = WORKER_COUNTS[0], WORKER_COUNTS[-1]
        out = [f"## hyper2web --workers {last} against --workers {first}", "",
               f"Same site and certificate; servers and h2load not pinned (the workers may use "
               f"every one of the {self.usable_cpus} cores, h2load shares them). Medians of "
               f"{ROUNDS} runs (S4h: {ROUNDS * HANDSHAKE_RUNS}).", "",
               "| scenario | " + " | ".join(f"--workers {n}" for n in WORKER_COUNTS) +
               " | ratio |", "|---|" + "---:|" * (len(WORKER_COUNTS) + 1)]
        for key, title in (("S1", "small file (2 KB html), req/s"),
                           ("S4", "100 fresh connections, one stream each, req/s"),
                           ("S4h", "100 fresh connections, one request each, req/s")):
            values = [self.worker_figures.get((key, n), -1.0) for n in WORKER_COUNTS]
            ratio = _ratio(values[-1], values[0])
            out.append(f"| {key} {title} | " + " | ".join(f"{v:,.0f}" for v in values) +
                       f" | {ratio} |")
        out += ["", "Commands:", ""]
        out += [f"    {command}" for _, command in sorted(self.worker_commands.items())]
        return out + [""]

    def idle_connections(self) -> None:
        client = [sys.executable, str(servers.BENCH / "idle_connections.py")]
        for server in self.servers:
            time.sleep(0.5)
            before = server.rss_kb()
            command = servers.pin(self.client_cpu) + client + [str(server.port),
                                                                 str(IDLE_CONNECTIONS)]
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
            assert proc.stdin is not None and proc.stdout is not None
            try:
                opened_line = proc.stdout.readline().split(maxsplit=3)
                if not opened_line or opened_line[0] != "opened":
                    raise SystemExit(f"S7 client on {server.name} gave {opened_line!r}")
                opened, failed = int(opened_line[1]), int(opened_line[2])
                time.sleep(1.0)
                after = server.rss_kb()
                proc.stdin.write("\n")
                proc.stdin.flush()
                alive_line = proc.stdout.readline().split()
                alive = int(alive_line[1]) if len(alive_line) == 2 else 0
                proc.wait(60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            per_connection = (after - before) / opened if opened else -1
            bad = failed + (opened - alive)
            shown = shlex.join(command)
            self.record("S7", server.name, per_connection, bad, shown)
            self.rss_notes.append(f"{server.name}: {before:,} KB -> {after:,} KB with "
                                  f"{opened} connections open ({alive} answered a PING)")
            print(f"    S7 {server.name}: {per_connection:.1f} KB/conn "
                  f"({before:,} -> {after:,} KB, {opened} opened, {alive} alive)", flush=True)
            if bad:
                detail = " ".join(opened_line[3:]) if len(opened_line) > 3 else ""
                self.problem(f"S7 on {server.name}: {failed} connections failed to open, "
                             f"{opened - alive} did not answer a PING", shown, detail)

    def startup(self) -> None:
        contenders = [server for server in self.servers if server.name != "nginx"]
        for number in range(STARTS):
            for server in contenders if number % 2 == 0 else contenders[::-1]:
                port = servers.free_port()
                started = time.perf_counter()
                proc = server.launch(port, tag="-startup")
                try:
                    servers.wait_ready(proc, port, server.name, server.logs)
                    elapsed = (time.perf_counter() - started) * 1000
                finally:
                    servers.stop_process(proc)
                self.record("S8", server.name, elapsed, 0,
                            shlex.join(servers.pin(server.cpu) + server.command(port)))
        line = ", ".join(f"{s.name} {statistics.median(self.samples[f'S8:{s.name}']):.0f}"
                         for s in contenders)
        print(f"    S8 ms: {line}", flush=True)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    # ---- report

    def medians(self) -> dict[str, float]:
        figures = {}
        for key in ORDER:
            for name in NAMES:
                values = self.samples.get(f"{key}:{name}")
                figures[f"{key}:{name}"] = statistics.median(values) if values else -1.0
        return figures

    def table(self) -> tuple[list[str], list[list[str]]]:
        figures = self.medians()
        scenarios = {s.key: s for s in [*SCENARIOS, S7, S8]}
        header = ["", "scenario", "unit", *NAMES, "vs hypercorn", "vs nginx",
                  "failed (h2w/hc/nginx)", "target", "met"]
        rows = []
        for key in ORDER:
            scenario = scenarios[key]
            values = [figures[f"{key}:{name}"] for name in NAMES]
            measured = [f"{key}:{name}" in self.bad for name in NAMES]
            cells = [_number(v, scenario.unit) if shown else "-"
                     for v, shown in zip(values, measured, strict=True)]
            ratios = [_ratio(values[0], peer) if shown else "-"
                      for peer, shown in zip(values[1:], measured[1:], strict=True)]
            failed = "/".join(str(self.bad[f"{key}:{name}"]) if f"{key}:{name}" in self.bad
                              else "-" for name in NAMES)
            met = "" if scenario.met is None else ("yes" if scenario.met(figures) else "NO")
            rows.append([key, scenario.title, scenario.unit, *cells, *ratios, failed,
                         scenario.target, met])
        return header, rows

    def noise_summary(self) -> str:
        if not self.noise:
            return ""
        others = [value for value, _ in self.noise]
        steal = [value for _, value in self.noise]
        noisy = sum(value >= NOISY for value in others)
        text = (f"Noise: while h2load ran, processes other than the server under test and "
                f"h2load used {statistics.mean(others):.2f} of a core on average (max "
                f"{max(others):.2f}); the hypervisor took {statistics.mean(steal):.2f} on "
                f"average (steal). {noisy} of {len(others)} runs had other processes at "
                f">= {NOISY} of a core")
        return text + (": the figures are noisy." if noisy > len(others) / 10 else ".")

    def total_bad(self) -> int:
        return sum(self.bad.values())


def _number(value: float, unit: str) -> str:
    if value < 0:
        return "error"
    if unit in ("req/s", "ms"):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _ratio(ours: float, peer: float) -> str:
    if ours < 0 or peer <= 0:
        return "-"
    return f"{ours / peer:.2f}x"


def render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if 3 <= i < len(header) - 2 else "---"
                                for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = set(range(3, len(header) - 2))

    def line(row: list[str]) -> str:
        return "  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                         for i, cell in enumerate(row)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# ---------------------------------------------------------------------------- setup

def need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise SystemExit(f"{tool} not found: install the Debian package {package} "
                         f"(sudo apt-get install {package}) and run make bench again")


def prepare(scratch: Path) -> Paths:
    """The site and a certificate made by ``hyper2web certs`` with HOME in ``scratch``."""
    site = benchsite.make_site(scratch / "site")
    home = scratch / "home"
    home.mkdir()
    certs = scratch / "certs"
    done = subprocess.run([servers.venv_script("hyper2web"), "certs", "--out", str(certs)],
                          env={**os.environ, "HOME": str(home)}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit("hyper2web certs failed:\n" + done.stdout + done.stderr)
    return Paths(site, certs / "localhost.crt.pem", certs / "localhost.key", home, scratch)


def etag_of(port: int, path: str) -> str:
    """The etag of ``path``, read with ``curl -k -D -`` (or the built-in client)."""
    if shutil.which("curl"):
        done = subprocess.run(["curl", "-k", "-s", "--http2", "-D", "-", "-o", os.devnull,
                               f"https://{HOST}:{port}{path}"],
                              capture_output=True, text=True, timeout=30)
        found = re.search(r"^etag: *(.+?)\r?$", done.stdout, re.M | re.I)
        if found:
            return found.group(1)
    etag = h2_get(port, path).header("etag")
    if etag is None:
        raise SystemExit(f"no etag on {path} at port {port}")
    return etag


def raise_file_limit() -> None:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def machine(usable: int) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return [
        f"CPU: {model.group(1) if model else platform.processor() or 'unknown'}",
        f"cores: {os.cpu_count()} ({usable} usable)",
        f"memory: {int(memory.group(1)) / 1024 / 1024:.1f} GiB" if memory else "memory: unknown",
        f"kernel: {platform.system()} {platform.release()}",
        f"Python: {platform.python_version()} ({platform.python_implementation()})",
    ]


def versions() -> list[str]:
    lines = []
    for name in ("hyper2web", "h2", "curio", "hypercorn", "starlette"):
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} not installed")
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    lines.append((nginx.stderr or nginx.stdout).strip())
    h2load_version = subprocess.run(["h2load", "--version"], capture_output=True, text=True)
    lines.append(h2load_version.stdout.strip())
    return lines


def write_results(bench: Bench, table: str, elapsed: float, load: tuple[str, str]) -> None:
    scenarios = {s.key: s for s in [*SCENARIOS, S7, S8]}
    out = ["# Benchmark results", "",
           "Written by `make bench` (bench/run.py). Medians of "
           f"{ROUNDS} interleaved rounds (S4h: {ROUNDS * HANDSHAKE_RUNS} runs, S7: one "
           f"measurement, S8: {STARTS} starts). Ratios are hyper2web's figure divided by the "
           "peer's: above 1 is better for hyper2web except in S7 and S8 (KB and ms, lower is "
           "better). `failed` counts requests that failed, errored, timed out, never "
           "finished or had an unexpected status, summed over all runs.", "",
           table, "",
           f"Total time: {elapsed:.0f} s. Failed requests: {bench.total_bad()}.", "",
           bench.noise_summary(), ""]
    out += ["## Machine", "", *(f"- {line}" for line in machine(bench.usable_cpus)),
            f"- load average (1 min) before / after: {load[0]} / {load[1]}",
            f"- server CPU: {bench.server_cpu}, client CPU: {bench.client_cpu} "
            "(taskset -c)" if bench.server_cpu is not None else "- no CPU pinning (one core)",
            "", "## Versions", "", *(f"- {line}" for line in versions()), "",
            "## TLS as negotiated by h2load", "",
            *(f"- {name}: {text}" for name, text in bench.tls.items()), "",
            "## Servers", ""]
    for server in bench.servers:
        out += [f"{server.name}:", "", f"    {server.shown_command()}", ""]
    scratch = bench.paths.scratch
    out += ["hypercorn's config file:", "",
            *("    " + line for line in (scratch / f"hypercorn-{_port(bench, 'hypercorn')}.toml")
              .read_text().splitlines()), "",
            "nginx's config file:", "",
            *("    " + line for line in (scratch / "nginx" / f"nginx-{_port(bench, 'nginx')}.conf")
              .read_text().splitlines()), "",
            "## Samples and commands", ""]
    for key in ORDER:
        scenario = scenarios[key]
        out += [f"### {key}: {scenario.title}", ""]
        for name in NAMES:
            values = bench.samples.get(f"{key}:{name}")
            if f"{key}:{name}" not in bench.bad:
                continue
            shown = ", ".join(_number(v, scenario.unit) for v in values or [])
            out.append(f"{name}: {shown} {scenario.unit}")
            others = bench.noisy.get(f"{key}:{name}")
            if others:
                out.append(f"(other processes during each run, in cores: "
                           f"{', '.join(f'{v:.2f}' for v in others)})")
            out.append("")
            out += [f"    {command}" for command in bench.commands[f"{key}:{name}"][:2]]
            if len(bench.commands[f"{key}:{name}"]) > 2:
                out.append(f"    ... ({len(bench.commands[f'{key}:{name}'])} commands, "
                           "one per start, differing only in the port)")
            out.append("")
        if key == "S7":
            out += [f"- {note}" for note in bench.rss_notes] + [""]
        if key == "S5":
            paths = benchsite.module_paths()
            out += [f"The URI file (-i) lists {len(paths)} URLs, one page load: "
                    f"`https://127.0.0.1:PORT{paths[0]}`, then `{paths[1]}` ... `{paths[-1]}`.",
                    ""]
    out += bench.workers_table()
    out += ["## Problems", ""]
    out += bench.problems or ["None: every request of every run succeeded."]
    out += ["", *profiles()]
    RESULTS.write_text("\n".join(out).rstrip() + "\n")


def profiles() -> list[str]:
    """The profiles kept in bench/profiles/ (``make profile LABEL=...``), oldest first."""
    found = sorted(PROFILES.glob("*.md"), key=lambda path: path.stat().st_mtime)
    if not found:
        return []
    out = ["# Profiles", "",
           "Where hyper2web's CPU time goes in S1 and S3, from `make profile LABEL=<label>` "
           "(bench/profile.py: py-spy samples during h2load), one section per kept profile.",
           ""]
    for path in found:
        # One heading level down, under "Profiles".
        out += [f"#{line}" if line.startswith("#") else line
                for line in path.read_text().strip().splitlines()]
        out.append("")
    return out


def _port(bench: Bench, name: str) -> int:
    return next(s for s in bench.servers if s.name == name).port


def main() -> int:
    need("h2load", "nghttp2-client")
    need("nginx", "nginx (or nginx-light)")
    raise_file_limit()
    started = time.perf_counter()
    load_before = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory(prefix="hyper2web-bench-") as tmp:
        os.chmod(tmp, 0o755)  # nginx started as root serves the site as another user
        bench = Bench(Path(tmp))
        if bench.server_cpu is None:
            print("  one usable core (or no taskset): servers and h2load share it", flush=True)
        try:
            bench.start()
            bench.check_content()
            bench.warm_up()
            print(f"  S7: {IDLE_CONNECTIONS} idle connections per server", flush=True)
            bench.idle_connections()
            bench.throughput()
            print(f"  S8: {STARTS} starts per server", flush=True)
            bench.startup()
            print("  hyper2web --workers " + " and ".join(map(str, WORKER_COUNTS)) +
                  ": S1, S4 and S4h, not pinned", flush=True)
            bench.compare_workers()
        except ServerCrashed as crash:
            bench.problem(*crash.args)
            bench.bad["crash"] = 1
        finally:
            bench.stop()
        elapsed = time.perf_counter() - started
        header, rows = bench.table()
        print()
        print(render(header, rows, markdown=False))
        print(f"\n  {elapsed:.0f} s; failed requests: {bench.total_bad()}; "
              f"load average {load_before} -> {os.getloadavg()[0]:.2f}")
        print(f"  {bench.noise_summary()}")
        write_results(bench, render(header, rows, markdown=True), elapsed,
                      (load_before, f"{os.getloadavg()[0]:.2f}"))
    print(f"  wrote {RESULTS}")
    if bench.total_bad():
        print(f"  FAILED REQUESTS: {bench.total_bad()} (see Problems in {RESULTS.name})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""make bench: hyper2web against hypercorn + starlette, nginx, caddy and granian, on one
site and certificate.

Starts the servers on loopback (free ports), the server pinned to one CPU and the load
generator (h2load) to another, runs every throughput scenario once per server per round
(interleaved, ROUNDS rounds) and reports medians. Prints one table and writes it, with the
machine, the versions and the exact commands, to bench/RESULTS.md. See bench/README.md.

    scenarios.py   what is measured, and the targets
    loadgen.py     one h2load run, and the CPU accounting around it
    checks.py      the byte-for-byte checks before measuring
    footprint.py   S7 (memory per idle connection) and S8 (start-up)
    report.py      the table and RESULTS.md
    servers.py, peer_servers.py   how each server is configured and started
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchsite
import checks
import footprint
import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*
import report
import servers
from loadgen import Run, children_cpu, h2load, machine_cpu, own_cpu
from peer_servers import Caddy, Granian, GranianH1
from scenarios import IDLE_CONNECTIONS, NAMES, NOISY, ROUNDS, SCENARIOS, STARTS, Scenario
from servers import Hyper2web, Hypercorn, Nginx, Paths, Server

from tests.server.h2client import HOST

WORKER_COUNTS = (1, 2)
WORKER_SCENARIOS = ("S1", "S4", "S4h")
CLASSES = dict(zip(NAMES, (Hyper2web, Hypercorn, Nginx, Caddy, Granian), strict=True))
H1_CLASSES = {"granian": GranianH1}  # servers whose HTTP/1.1 runs (S10) go to a second one


class ServerCrashed(Exception):
    """A server exited during a run: (title, command, output)."""


class Bench:
    """The servers under test and everything measured on them."""

    def __init__(self, scratch: Path) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        self.usable_cpus = len(cpus)
        # This process is pinned to the client's CPU below; what it starts unpinned must
        # name every CPU, or it would inherit that one.
        self.every_cpu = ",".join(str(cpu) for cpu in cpus) if shutil.which("taskset") else None
        self.worker_counts = WORKER_COUNTS
        self.worker_figures: dict[tuple[str, int], float] = {}
        self.worker_commands: dict[tuple[str, int], str] = {}
        two = len(cpus) >= 2 and shutil.which("taskset") is not None
        self.server_cpu = cpus[0] if two else None
        self.client_cpu = cpus[1] if two else None
        if self.client_cpu is not None:
            os.sched_setaffinity(0, {self.client_cpu})  # this process is a client too
        self.paths = prepare(scratch)
        self.servers: list[Server] = [cls(name, self.paths, self.server_cpu)
                                      for name, cls in CLASSES.items()]
        self.h1_servers: dict[str, Server] = {
            name: cls(f"{name}-h1", self.paths, self.server_cpu)
            for name, cls in H1_CLASSES.items()}
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

    def total_bad(self) -> int:
        return sum(self.bad.values())

    # ---- runs

    def start(self) -> None:
        for server in [*self.servers, *self.h1_servers.values()]:
            server.start()
            print(f"  {server.name} on port {server.port} (pid {server.proc.pid})", flush=True)

    def h1_instance(self, server: Server) -> Server:
        """The instance that answers HTTP/1.1 for ``server``'s column (granian: --http 1)."""
        return self.h1_servers.get(server.name, server)

    def serving(self, scenario: Scenario, server: Server) -> Server:
        """The instance that answers ``scenario`` for ``server``'s column."""
        return self.h1_instance(server) if scenario.h1 else server

    def check_content(self) -> None:
        checks.check_content([(server, self.h1_instance(server)) for server in self.servers],
                             self.paths)

    def uri_file(self, server: Server) -> Path:
        path = self.paths.scratch / f"uris-{server.name}.txt"
        base = f"https://{HOST}:{server.port}"
        path.write_text("".join(f"{base}{p}\n" for p in benchsite.module_paths()))
        return path

    def h2load_run(self, scenario: Scenario, server: Server, pinned: bool = True,
                   column: str = "") -> Run:
        """One h2load run against ``server``, with the CPU other processes used meanwhile."""
        args = list(scenario.args)
        if scenario.headers is not None:
            args += scenario.headers(column or server.name)
        if scenario.key == "S5":
            args += ["-i", str(self.uri_file(server))]
            url = ""
        else:
            url = f"https://{HOST}:{server.port}{scenario.path}"
        busy, steal = machine_cpu()
        ours = own_cpu() + server.cpu_seconds()
        client = children_cpu()
        started = time.perf_counter()
        run = h2load(args, url, scenario.expect, self.client_cpu if pinned else self.every_cpu)
        wall = time.perf_counter() - started
        run.client = (children_cpu() - client) / wall
        busy_after, steal_after = machine_cpu()
        ours = own_cpu() + server.cpu_seconds() - ours
        run.others = max(0.0, (busy_after - busy) - ours) / wall
        run.steal = (steal_after - steal) / wall
        self.noise.append((run.others, run.steal))
        if not url:
            run.command = run.command[:-1]
        return run

    def warm_up(self) -> None:
        """2,000 requests per server before measuring; also reads the negotiated TLS."""
        scenario = Scenario("warm-up", "", "", ["-n", "2000", "-c", "10", "-m", "10"],
                            benchsite.PAGE)
        for server in self.servers:
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
        """ROUNDS rounds; in each, every scenario on every server, the order rotating."""
        for round_number in range(ROUNDS):
            print(f"  round {round_number + 1}/{ROUNDS}", flush=True)
            shift = round_number % len(self.servers)
            order = self.servers[shift:] + self.servers[:shift]
            for scenario in SCENARIOS:
                line = [self.measure(scenario, server, round_number + 1)
                        for server in order if server.name not in scenario.skip]
                print(f"    {scenario.key} {scenario.unit}: " + ", ".join(line), flush=True)

    def measure(self, scenario: Scenario, column: Server, round_number: int) -> str:
        """``scenario.runs`` runs for one server's column; returns the progress text."""
        server = self.serving(scenario, column)
        key = f"{scenario.key}:{column.name}"
        values = []
        for _ in range(scenario.runs):
            run = self.h2load_run(scenario, server, column=column.name)
            value = scenario.figure({"rps": run.rps}) if run.rps >= 0 else -1
            self.record(scenario.key, column.name, value, run.bad, shlex.join(run.command))
            self.noisy.setdefault(key, []).append(run.others)
            values.append(value)
            if run.bad:
                self.problem(f"{scenario.key} on {server.name}, round {round_number}: "
                             f"{run.problem}", shlex.join(run.command), run.output)
            if server.proc.poll() is not None:
                raise ServerCrashed(
                    f"{server.name} exited with code {server.proc.returncode} during "
                    f"{scenario.key}, round {round_number}", shlex.join(run.command),
                    run.output + "\n" + servers.log_tails(server.logs))
        busy = max(self.noisy[key][-scenario.runs:])
        mark = f" (others {busy:.2f} cores)" if busy >= NOISY else ""
        return f"{column.name} {statistics.median(values):,.0f}{mark}"

    def compare_workers(self) -> None:
        """S1, S4 and S4h against ``serve --workers 1`` and ``--workers 2``, neither pinned."""
        for count in WORKER_COUNTS:
            server = servers.Hyper2webWorkers(f"hyper2web --workers {count}", self.paths,
                                              self.every_cpu)
            server.workers = count
            server.start()
            try:
                for scenario in SCENARIOS:
                    if scenario.key in WORKER_SCENARIOS:
                        self.workers_scenario(scenario, server, count)
                self.worker_commands[("serve", count)] = server.shown_command()
            finally:
                server.stop()

    def workers_scenario(self, scenario: Scenario, server: Server, count: int) -> None:
        values = []
        for _ in range(ROUNDS * scenario.runs):
            run = self.h2load_run(scenario, server, pinned=False)
            values.append(run.rps)
            self.bad[f"workers:{count}"] = self.bad.get(f"workers:{count}", 0) + run.bad
            if run.bad:
                self.problem(f"{scenario.key} on {server.name}: {run.problem}",
                             shlex.join(run.command), run.output)
        self.worker_figures[(scenario.key, count)] = statistics.median(values)
        self.worker_commands[(scenario.key, count)] = shlex.join(run.command)
        print(f"    {scenario.key} --workers {count}: {statistics.median(values):,.0f} req/s",
              flush=True)

    def stop(self) -> None:
        for server in [*self.servers, *self.h1_servers.values()]:
            server.stop()


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


def raise_file_limit() -> None:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def measure_all(bench: Bench) -> None:
    """Everything, in order: checks, warm-up, S7, the rounds, S8, the --workers comparison."""
    bench.start()
    bench.check_content()
    bench.warm_up()
    print(f"  S7: {IDLE_CONNECTIONS} idle connections per server", flush=True)
    footprint.idle_connections(bench)
    bench.throughput()
    print(f"  S8: {STARTS} starts per server", flush=True)
    footprint.startup(bench)
    print("  hyper2web --workers " + " and ".join(map(str, WORKER_COUNTS)) +
          ": S1, S4 and S4h, not pinned", flush=True)
    bench.compare_workers()


def run_bench(scratch: Path, started: float, load_before: str) -> Bench:
    """Measure, print the table and write RESULTS.md; the servers are stopped in any case."""
    bench = Bench(scratch)
    if bench.server_cpu is None:
        print("  one usable core (or no taskset): servers and h2load share it", flush=True)
    try:
        measure_all(bench)
    except ServerCrashed as crash:
        bench.problem(*crash.args)
        bench.bad["crash"] = 1
    finally:
        bench.stop()
    elapsed = time.perf_counter() - started
    header, rows = report.table(bench)
    load_after = f"{os.getloadavg()[0]:.2f}"
    print()
    print(report.render(header, rows, markdown=False))
    print(f"\n  {elapsed:.0f} s; failed requests: {bench.total_bad()}; "
          f"load average {load_before} -> {load_after}")
    print(f"  {report.noise_summary(bench.noise)}")
    report.write_results(bench, report.render(header, rows, markdown=True), elapsed,
                         (load_before, load_after))
    return bench


def compile_bytecode() -> None:
    """Byte-compile hyper2web as ``pip install`` does: an editable install (with
    PYTHONDONTWRITEBYTECODE set, as on some machines) would compile on every start, and
    S8 would time the compiler."""
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "hyper2web"),
                    str(root / "hyper2web_cli")], check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    need("h2load", "nghttp2-client")
    need("nginx", "nginx (or nginx-light)")
    need("caddy", "caddy")
    servers.venv_script("granian")  # exits with a hint when the bench extra is missing
    raise_file_limit()
    compile_bytecode()
    started = time.perf_counter()
    load_before = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory(prefix="hyper2web-bench-") as tmp:
        os.chmod(tmp, 0o755)  # nginx started as root serves the site as another user
        bench = run_bench(Path(tmp), started, load_before)
    print(f"  wrote {report.RESULTS}")
    if bench.total_bad():
        print(f"  FAILED REQUESTS: {bench.total_bad()} (see Problems in {report.RESULTS.name})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

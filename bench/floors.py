"""make bench-floors: the best figure the required stack can reach on this host, beside
hyper2web and granian, for each speed and memory target of bench/scenarios.py.

Two floor servers (bench/floor_server.py) run the same scenarios as ``make bench``, in the
same interleaved rounds as hyper2web and granian, on the same pinned cores:

- ``floor``: curio and Python's ssl, nothing else. HTTP/2 frames are cut by their
  headers and answered with one answer framed in advance; no HPACK decoding, no stream
  states, no file. Whatever hyper2web does, it does on top of this.
- ``floor-libs``: the same with h2 and h11 doing HTTP/2 and HTTP/1.1 as their
  documentation shows.

A target whose line (the figure hyper2web must reach) is above ``floor`` is out of reach
for any server on curio and Python's ssl on this host. Also measured: the interpreter and
the imports a start needs, and OpenSSL's own speed. Writes bench/FLOORS.md (about 3
minutes).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import footprint
import report
import servers
from loadgen import Run
from peer_servers import Granian
from run import Bench, compile_bytecode, need, raise_file_limit
from scenarios import BY_KEY, ROUNDS, Scenario
from servers import BENCH, Hyper2web, Server

FLOORS = BENCH / "FLOORS.md"
KEYS = ("S1", "S3", "S4h", "S5", "S10")
BODIES = {"S3": "files/large.bin", "S5": "modules/m000.js"}  # else index.html
# The lines of scenarios.py: a factor of granian's figure, or a value (KB, ms).
AGAINST_GRANIAN = {"S1": 1.2, "S3": 1.0, "S4h": 1.0, "S5": 1.2, "S10": 1.0}
AT_MOST = {"S7": 20.0, "S8": 100.0}
COLUMNS = ("floor", "floor-libs", "hyper2web", "granian")
IMPORTS = [
    ("the interpreter (`-c pass`)", "pass"),
    ("+ curio, ssl", "import curio, ssl"),
    ("+ the h2 library", "import curio, ssl, h2.connection, h2.config"),
    ("+ click, watchfiles (every required package)",
     "import click, curio, ssl, h2.connection, h2.config, watchfiles"),
    ("`import hyper2web_cli.cli`", "import hyper2web_cli.cli"),
]
IMPORT_RUNS = 11


@dataclasses.dataclass
class Floor(Server):
    """bench/floor_server.py answering every request with one file's bytes."""

    body: str = "index.html"
    libs: bool = False

    def command(self, port: int) -> list[str]:
        return [sys.executable, str(BENCH / "floor_server.py"), str(port),
                str(self.paths.cert), str(self.paths.key), str(self.paths.public / self.body),
                *(["--libs"] if self.libs else [])]


class FloorBench(Bench):
    """hyper2web, granian and the two floors; each floor has an instance per body."""

    def __init__(self, scratch: Path) -> None:
        super().__init__(scratch)
        cpu = self.server_cpu
        self.servers = [Floor("floor", self.paths, cpu),
                        Floor("floor-libs", self.paths, cpu, libs=True),
                        Hyper2web("hyper2web", self.paths, cpu),
                        Granian("granian", self.paths, cpu)]
        self.by_body = {(floor.name, body): Floor(f"{floor.name}-{Path(body).stem}", self.paths,
                                                  cpu, body=body, libs=floor.libs)
                        for floor in self.servers[:2] for body in set(BODIES.values())}
        self.load_cores: dict[str, list[float]] = {}  # key:column -> h2load's cores a run

    def h2load_run(self, scenario: Scenario, server: Server, pinned: bool = True,
                   column: str = "") -> Run:
        """The run, and how much of its core h2load used (is the client the limit?)."""
        run = super().h2load_run(scenario, server, pinned, column)
        self.load_cores.setdefault(f"{scenario.key}:{column or server.name}", []).append(
            run.client)
        return run

    def start(self) -> None:
        super().start()
        for server in self.by_body.values():
            server.start()

    def serving(self, scenario: Scenario, column: Server) -> Server:
        if isinstance(column, Floor):
            return self.by_body.get((column.name, BODIES.get(scenario.key, "")), column)
        return super().serving(scenario, column)

    def stop(self) -> None:
        super().stop()
        for server in self.by_body.values():
            server.stop()


def measure(bench: FloorBench) -> None:
    bench.start()
    bench.warm_up()
    print("  S7: idle connections", flush=True)
    footprint.idle_connections(bench)
    for number in range(ROUNDS):
        print(f"  round {number + 1}/{ROUNDS}", flush=True)
        shift = number % len(bench.servers)
        order = bench.servers[shift:] + bench.servers[:shift]
        for scenario in (BY_KEY[key] for key in KEYS):  # as make bench runs them
            line = [bench.measure(scenario, server, number + 1) for server in order]
            print(f"    {scenario.key} {scenario.unit}: " + ", ".join(line), flush=True)
    print("  S8: starts", flush=True)
    footprint.startup(bench)


def import_times(cpu: int | None) -> list[tuple[str, str, float]]:
    """(label, code, median ms) of starting Python and running ``code``, IMPORT_RUNS times."""
    found = []
    for label, code in IMPORTS:
        times = []
        for _ in range(IMPORT_RUNS):
            started = time.perf_counter()
            subprocess.run([*servers.pin(cpu), sys.executable, "-c", code], check=True)
            times.append((time.perf_counter() - started) * 1000)
        found.append((label, code, statistics.median(times)))
    return found


def openssl_speed(cpu: int | None) -> list[str]:
    """AES-128-GCM in 16 KB records, P-256 signatures and X25519 exchanges, as OpenSSL
    measures them on one core."""
    pin = servers.pin(cpu)
    lines = []
    aes = run_text([*pin, "openssl", "speed", "-seconds", "1", "-evp", "aes-128-gcm"])
    row = re.search(r"^(?:AES-128-GCM|aes-128-gcm)\s.*?([\d.]+)k\s*$", aes, re.M | re.I)
    if row:
        rate = float(row.group(1)) * 1000  # bytes a second, in the 16 KB column (the last)
        lines.append(f"AES-128-GCM, 16 KB records: {rate / 1e9:.2f} GB/s, so one MiB costs "
                     f"{(1 << 20) / rate * 1e6:.0f} us of encryption")
    for name, pattern, what in (
            ("ecdsap256", r"ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)", "P-256 signatures"),
            ("ecdhx25519", r"ecdh \(X25519\)\s+\S+s\s+([\d.]+)", "X25519 exchanges")):
        text = run_text([*pin, "openssl", "speed", "-seconds", "1", name])
        found = re.search(pattern, text)
        if found:
            per_second = float(found.group(1))
            lines.append(f"{what}: {per_second:,.0f} a second ({1e6 / per_second:.0f} us each)")
    return lines or ["openssl speed: no figure could be read"]


def run_text(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return done.stdout + done.stderr


def figure(bench: FloorBench, key: str, column: str) -> float:
    values = bench.samples.get(f"{key}:{column}")
    return statistics.median(values) if values else -1.0


def the_line(bench: FloorBench, key: str) -> float:
    """The figure hyper2web must reach for the target."""
    if key in AT_MOST:
        return AT_MOST[key]
    return AGAINST_GRANIAN[key] * figure(bench, key, "granian")


def verdict(bench: FloorBench, key: str) -> str:
    line, floor = the_line(bench, key), figure(bench, key, "floor")
    if line <= 0 or floor <= 0:
        return "not measured"
    if key in AT_MOST:
        return (f"floor above the line by {floor - line:,.1f}: out of reach" if floor > line
                else f"{line - floor:,.1f} left for everything else")
    share = floor / line
    if share < 1:
        return f"floor at {share:.2f}x the line: out of reach"
    return f"floor at {share:.2f}x the line: {100 * (1 - 1 / share):.0f}% of the time left"


def table(bench: FloorBench) -> list[str]:
    rows = ["| scenario | target | the line | " + " | ".join(COLUMNS) + " | the floor against "
            "the line |", "|---|---|---:|" + "---:|" * len(COLUMNS) + "---|"]
    for key in (*KEYS, "S7", "S8"):
        scenario = BY_KEY[key]
        target = (f"<= {AT_MOST[key]:g} {scenario.unit}" if key in AT_MOST
                  else f">= {AGAINST_GRANIAN[key]:.1f}x granian")
        cells = [report.number(figure(bench, key, name), scenario.unit) for name in COLUMNS]
        rows.append(f"| {key} {scenario.title}, {scenario.unit} | {target} | "
                     f"{report.number(the_line(bench, key), scenario.unit)} | "
                     + " | ".join(cells) + f" | {verdict(bench, key)} |")
    return rows


def load_table(bench: FloorBench) -> list[str]:
    """How much of its core h2load used, median per scenario and server: near 1.0 the
    load generator, not the server, sets the figure."""
    rows = ["| scenario | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for key in KEYS:
        cells = [f"{statistics.median(found):.2f}" if (found := bench.load_cores.get(
            f"{key}:{name}")) else "-" for name in COLUMNS]
        rows.append(f"| {key} | " + " | ".join(cells) + " |")
    return rows


def write(bench: FloorBench, imports: list[tuple[str, str, float]], crypto: list[str],
          elapsed: float) -> None:
    commands = sorted({shlex.join(servers.pin(s.cpu) + s.command(s.port))
                       for s in [*bench.servers, *bench.by_body.values()]})
    loads = sorted({command for name, found in bench.commands.items()
                    if not name.startswith(("S8:", "warm-up")) for command in found})
    lines = [
        "# Floors: what curio and Python's ssl can reach on this host", "",
        "Written by `make bench-floors` (bench/floors.py). Medians of "
        f"{ROUNDS} interleaved rounds, the servers on one core and h2load on the other, as "
        "in `make bench`. `floor` is curio and Python's ssl answering every request with "
        "one answer made in advance (HTTP/2 frames cut by their headers, no HPACK "
        "decoding, no stream states, no file); `floor-libs` is the same with h2 and h11 "
        "doing HTTP/2 and HTTP/1.1 as documented. The line is the figure hyper2web must "
        "reach for its target. Where the floor is below the line, no server on curio and "
        "Python's ssl reaches the target on this host.", "",
        *table(bench), "",
        f"Total time: {elapsed:.0f} s. Failed requests: {bench.total_bad()}. "
        + report.noise_summary(bench.noise), "",
        "## h2load's own core", "",
        "The share of its core h2load used during each server's runs (median). Near 1.00 "
        "the load generator, not the server, sets the figure: that floor is then higher "
        "still.", "",
        *load_table(bench), "",
        "## Starting Python and importing", "",
        f"Launch to exit, median of {IMPORT_RUNS}, on the server's core:", "",
        *(f"- {label}: {ms:.0f} ms" for label, _, ms in imports), "",
        "## OpenSSL on one core (`openssl speed -seconds 1`)", "",
        *(f"- {line}" for line in crypto), "",
        "## Machine", "", *(f"- {line}" for line in report.machine(bench.usable_cpus)), "",
        "## Commands", "", *(f"    {command}" for command in commands), "",
        *(f"    {command}" for command in loads), "",
    ]
    if bench.problems:
        lines += ["## Problems", "", *bench.problems, ""]
    FLOORS.write_text("\n".join(lines))


def main() -> int:
    need("h2load", "nghttp2-client")
    need("openssl", "openssl")
    servers.venv_script("granian")
    raise_file_limit()
    compile_bytecode()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hyper2web-floors-") as tmp:
        os.chmod(tmp, 0o755)
        bench = FloorBench(Path(tmp))
        try:
            measure(bench)
        finally:
            bench.stop()
        imports = import_times(bench.server_cpu)
        crypto = openssl_speed(bench.server_cpu)
        write(bench, imports, crypto, time.perf_counter() - started)
    print("\n".join(table(bench)))
    print(f"  wrote {FLOORS}")
    return 1 if bench.total_bad() else 0


if __name__ == "__main__":
    sys.exit(main())

"""make stress: attacks on a real ``hyper2web serve``, each watched by a normal client.

Starts ``hyper2web serve`` with its default options on 127.0.0.1 (the bench site and a
certificate in a temporary folder), runs the attacks of bench/stressattacks.py one after the
other against it and prints one table: whether the server still answered, its peak RSS, the
latency of a normal client during the attack, what the attacker received. A full run writes
the table, the targets and the machine to bench/STRESS.md.

    python bench/stress.py             # every row at full size (about 3 minutes)
    python bench/stress.py --quick     # small sizes, for development; STRESS.md untouched
    python bench/stress.py --rows 2,7  # only these rows; STRESS.md untouched

The one process it starts (the server) is stopped on the way out, on Ctrl+C, SIGTERM, an
error or past RUN_LIMIT too.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import FrameType

import h2.exceptions
import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*
import run
import servers
import stressattacks as sa  # the attack functions
from stressclients import Bystander, Sampler, open_fds, raise_file_limit

from tests.server.h2client import h2_get

STRESS_MD = servers.BENCH / "STRESS.md"
RUN_LIMIT = 300.0  # seconds: past this the run stops, cleans up and reports what it has


# ---------------------------------------------------------------------------- the rows

@dataclass
class Sizes:
    """How big each attack is: FULL for make stress, QUICK (--quick) while developing."""

    pairs: int  # row 2
    uploaders: int  # row 3: connections, two 63 MB bodies each
    connections: int  # rows 4 and 5
    slow_streams: int  # row 6
    empty_frames: int  # row 8


FULL = Sizes(100_000, 31, 2000, 200, 3_000_000)
QUICK = Sizes(1000, 3, 50, 10, 100_000)


@dataclass
class Attack:
    """One row: its number, its title at the given sizes, its target, its function."""

    number: str
    title: Callable[[Sizes], str]
    target: str
    run: Callable[[Stress], str]


ATTACKS = [
    Attack("1", lambda s: "folder swapped for an outside symlink",
           "404, never the outside bytes", sa.folder_swap),
    Attack("2", lambda s: f"rapid reset, {s.pairs:,} HEADERS+RST_STREAM pairs in one burst",
           "GOAWAY ENHANCE_YOUR_CALM (11), closed within 100 ms; bystander p99 < 50 ms",
           sa.rapid_reset),
    Attack("3", lambda s: f"{s.uploaders} connections x 2 unfinished 63 MB request bodies",
           "peak RSS < 512 MB; bystander served", sa.uploads),
    Attack("4", lambda s: f"{s.connections:,} TLS connections that never send the preface",
           "all closed, at the 10 s preface timeout; bystander served", sa.no_preface),
    Attack("5", lambda s: f"{s.connections:,} connections that keep one request open",
           "408 to all, at the 60 s body timeout", sa.stalled_requests),
    Attack("6", lambda s: f"{s.slow_streams} streams of a 10 MB file with a window of 1, "
           "never read", "RST_STREAM CANCEL to all at the 60 s send timeout; files closed",
           sa.slow_reader),
    Attack("7", lambda s: "stream errors, beside normal streams, a fresh connection each",
           "RST_STREAM PROTOCOL_ERROR for a-c, REFUSED_STREAM for d; others answered",
           sa.stream_errors),
    Attack("8", lambda s: f"{s.empty_frames / 1e6:g} million empty DATA frames on one POST "
           f"({sa.UPLOAD})",
           "GOAWAY ENHANCE_YOUR_CALM quickly; little CPU", sa.empty_data),
    Attack("8b", lambda s: f"the same {s.empty_frames / 1e6:g} million on a POST "
           "already answered 405 (/upload)", "GOAWAY ENHANCE_YOUR_CALM quickly; little CPU",
           sa.empty_data_answered),
    Attack("9", lambda s: "POST of 100 MB to a static file", "405 at once, body not read",
           sa.post_static),
]


# ---------------------------------------------------------------------------- measuring

@dataclass
class Row:
    """One line of the table."""

    number: str
    title: str
    target: str
    received: str
    up: str = ""
    peak_mb: float | None = None
    p99_ms: float | None = None
    samples: int | None = None
    failures: int = 0
    seconds: float = 0.0


@dataclass
class Watched:
    """What ``Stress.watch`` measured while an attack ran."""

    peak_mb: float
    p99_ms: float | None
    samples: int
    failures: int


class Stress:
    """The server under attack, and the measurements taken around each attack."""

    MINIMUM_WATCH = 3.0  # seconds: a 100 ms attack still gets a dozen bystander samples

    def __init__(self, server: servers.Server, sizes: Sizes) -> None:
        assert server.proc is not None
        self.server, self.sizes = server, sizes
        self.port, self.pid = server.port, server.proc.pid
        self.paths = server.paths
        self.watched: Watched | None = None

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Bystander and RSS sampler around the attack proper (not its preparation)."""
        self.watched = None
        bystander, sampler = Bystander(self.port), Sampler(self.pid)
        started = time.perf_counter()
        sampler.start()
        bystander.start()
        try:
            yield
            time.sleep(max(0.0, started + self.MINIMUM_WATCH - time.perf_counter()))
        finally:
            bystander.stop()
            sampler.stop()
        self.watched = Watched(sampler.peak_kb / 1024, bystander.p99_ms(),
                               len(bystander.latencies) + len(bystander.failures),
                               len(bystander.failures))

    def up(self) -> str:
        """Whether the server process lives and answers GET /index.html on a new connection."""
        assert self.server.proc is not None
        if self.server.proc.poll() is not None:
            return f"NO: exited ({self.server.proc.returncode})"
        try:
            result = h2_get(self.port, "/index.html", timeout=10)
        except (OSError, ConnectionError, ssl.SSLError, h2.exceptions.ProtocolError) as exc:
            return f"NO: {type(exc).__name__}"
        if result.reset is not None:
            return f"NO: stream reset ({result.reset})"
        return "yes" if result.status == 200 else f"NO: {result.status}"

    def finish_row(self, number: str, title: str, target: str, received: str) -> Row:
        row = Row(number, title, target, received, up=self.up())
        if self.watched is not None:
            watched = self.watched
            row.peak_mb, row.p99_ms = watched.peak_mb, watched.p99_ms
            row.samples, row.failures = watched.samples, watched.failures
        return row

    def final_row(self) -> Row:
        rss = servers._rss_kb(self.pid) / 1024
        return Row("10", "after all rows: GET /index.html, final RSS", "200",
                   f"final RSS {rss:.0f} MB, {open_fds(self.pid)} open files",
                   up=self.up(), peak_mb=rss)


# ---------------------------------------------------------------------------- the run

class Overtime(BaseException):
    """The whole run passed RUN_LIMIT (a BaseException, so no attack swallows it)."""


def _overtime(signum: int, frame: FrameType | None) -> None:
    raise Overtime(f"the run passed {RUN_LIMIT:g} s")


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt("SIGTERM")  # unwinds like Ctrl+C: the server is stopped


def run_rows(stress: Stress, attacks: list[Attack], rows: list[Row]) -> None:
    """Run ``attacks`` serially against one server, appending to ``rows`` as they finish
    (so an interrupted run still reports the rows it has). A failing attack is a row too."""
    for attack in attacks:
        title = attack.title(stress.sizes)
        print(f"  {attack.number}. {title}", flush=True)
        started = time.perf_counter()
        stress.watched = None
        try:
            received = attack.run(stress)
        except Exception as exc:  # the attack's own surprise: report it, go on
            traceback.print_exc()
            received = f"attack failed: {type(exc).__name__}: {exc}"
        row = stress.finish_row(attack.number, title, attack.target, received)
        row.seconds = time.perf_counter() - started
        print(f"     {row.received}  [{row.seconds:.0f} s]", flush=True)
        rows.append(row)


# ---------------------------------------------------------------------------- the table

HEADER = ["#", "attack", "server up after", "peak RSS (MB)",
          "bystander p99 ms (samples, failed)", "what the attacker received"]


def cells(row: Row) -> list[str]:
    p99 = "-" if row.p99_ms is None else f"{row.p99_ms:.0f}"
    bystander = "-" if row.samples is None else f"{p99} ({row.samples}, {row.failures})"
    rss = "-" if row.peak_mb is None else f"{row.peak_mb:.0f}"
    return [str(row.number), row.title, row.up, rss, bystander, row.received]


def text_table(rows: list[Row]) -> str:
    """Aligned columns for the terminal; the last one runs on."""
    table = [HEADER, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER) - 1)]
    return "\n".join(" | ".join([*(cell.ljust(width) for cell, width in zip(line, widths,
                                                                          strict=False)),
                                 line[-1]]) for line in table)


def markdown_table(rows: list[Row]) -> str:
    header = [*HEADER, "target"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(v.replace("|", "\\|")
                                       for v in [*cells(row), row.target]) + " |")
    return "\n".join(lines)


def machine() -> list[str]:
    return [f"CPUs: {os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})",
            f"Python {platform.python_version()}; `uname -r`: {platform.release()}",
            f"hyper2web {metadata.version('hyper2web')} ({source_state()}), "
            f"h2 {metadata.version('h2')}, curio {metadata.version('curio')}"]


def source_state() -> str:
    """The git commit measured, and whether hyper2web/ had uncommitted edits then."""
    root = servers.BENCH.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=root, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hyper2web"],
                               capture_output=True, text=True, cwd=root, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "commit unknown"
    return f"commit {head or 'unknown'}{' + uncommitted changes in hyper2web/' if dirty else ''}"


INTRO = """\
# Stress: hyper2web under attack

`make stress` (bench/stress.py, with bench/stressattacks.py and bench/stressclients.py)
starts a real `hyper2web serve public --host 127.0.0.1 --port P --strict-port --cert C --key K`
with its default options on loopback (the bench site, and a certificate from `hyper2web
certs`, in a temporary folder), runs the attacks below one after the other against that one
server, and stops it, also on Ctrl+C or an error. It takes about 3 minutes (at most 5) and
overwrites this file; `python bench/stress.py --quick` runs small sizes and writes nothing.

Rows: 1 swaps a served folder for a symlink to a folder outside the root between requests;
2 sends a rapid-reset burst (HEADERS then RST_STREAM(CANCEL), many pairs, one write); 3 opens
request bodies on many connections and keeps sending without ever ending them; 4 opens TLS
connections that never send the HTTP/2 preface; 5 opens connections that each start a POST
and then go silent; 6 asks for a 10 MB file many times with a receive window of 1 byte and
never reads; 7 commits stream-level protocol errors beside normal requests, a fresh
connection per case; 8 floods one open POST with empty DATA frames, 8b the same on a POST
the server has already answered (405); 9 POSTs a 100 MB body to a static file;
10 checks that the server still answers after everything. A POST that no route takes is
answered 405 before its body is read, so rows 3, 5, 7a-b and 8 send their bodies to
`/api/upload`, a POST route in the bench site's routes.py whose body the server buffers.
The *target* column says what a hardened server should show; the table does not judge.

*Server up after*: GET /index.html on a fresh connection once the attack is over. *Peak
RSS*: the server's VmRSS, sampled every 50 ms during the attack. *Bystander*: a thread that
every 250 ms opens a fresh TLS connection (TCP_NODELAY, as browsers do) and GETs /index.html,
timed from connect to full body, for the whole attack and at least 3 s; a failure is an error
or a status other than 200. Most rows get 12 to 60 samples, so their p99 is the slowest
sample; rows 5 and 6 (about 250) leave out the 2 slowest. The bystander shares its process
(and the GIL) with the attack clients, and this machine's cores with the server, so a busy
attack client adds to its latency too.
"""


def write_markdown(rows: list[Row], problem: str, elapsed: float) -> None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [INTRO, "## Results", "", f"Run on {now}; {elapsed:.0f} s in all."
           + (f" {problem}." if problem else ""), "", markdown_table(rows), "",
           "## Machine", "", *(f"- {line}" for line in machine()), ""]
    STRESS_MD.write_text("\n".join(out))


# ---------------------------------------------------------------------------- main

def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Attacks on a real hyper2web serve.")
    parser.add_argument("--quick", action="store_true", help="small sizes; no STRESS.md")
    parser.add_argument("--rows", help="comma-separated row numbers (default: all)")
    return parser.parse_args(argv)


def attack_server(paths: servers.Paths, sizes: Sizes, attacks: list[Attack],
                  rows: list[Row]) -> None:
    """Start the server, run the rows, stop the server whatever happens."""
    server = servers.Hyper2web("hyper2web", paths, None)
    try:
        server.start()
        print(f"  {server.shown_command()}", flush=True)
        stress = Stress(server, sizes)
        run_rows(stress, attacks, rows)
        rows.append(stress.final_row())
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    args = parse(argv)
    sizes = QUICK if args.quick else FULL
    wanted = set(args.rows.split(",")) if args.rows else None
    attacks = [attack for attack in ATTACKS if wanted is None or attack.number in wanted]
    print(f"  {raise_file_limit(2 * sizes.connections + 1024)}", flush=True)
    sys.setswitchinterval(0.001)  # the bystander thread waits less for the GIL
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGALRM, _overtime)
    started = time.perf_counter()
    rows: list[Row] = []
    problem, code = "", 0
    write = not args.quick and wanted is None  # only a full run of every row replaces it
    with tempfile.TemporaryDirectory(prefix="hyper2web-stress-") as tmp:
        signal.setitimer(signal.ITIMER_REAL, RUN_LIMIT)
        try:
            paths = run.prepare(Path(tmp))
            (paths.public / sa.BIG_FILE.lstrip("/")).write_bytes(os.urandom(sa.BIG_FILE_SIZE))
            attack_server(paths, sizes, attacks, rows)
        except Overtime as exc:
            problem, code = f"STOPPED: {exc}; the rows after the last one did not run", 1
        except KeyboardInterrupt as exc:
            problem, code = f"INTERRUPTED ({str(exc) or 'Ctrl+C'}): server stopped", 130
            write = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.perf_counter() - started
    print("\n" + text_table(rows) + f"\n\n  {elapsed:.0f} s in all", flush=True)
    if problem:
        print(f"  {problem}")
    if write and rows:
        write_markdown(rows, problem, elapsed)
        print(f"  wrote {STRESS_MD}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

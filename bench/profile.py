"""Where hyper2web's time goes under load: py-spy samples of S1, S3 and S4h, summarized.

    make profile                   # or: python bench/profile.py [LABEL] [SCENARIO ...]

Starts ``hyper2web serve`` on the benchmark site (pinned like ``make bench``), samples it with
py-spy while h2load runs S1 (2 KB page, -c 10 -m 10), S3 (1 MB file, -c 4 -m 1), S4h
(100 fresh connections with one request each, run again and again) and S10 (the 2 KB page
over HTTP/1.1; naming scenarios after the label profiles only those), and
prints, per scenario, the share of samples by package and the functions with the most
samples of their own (self time). The same text is written to ``bench/profiles/LABEL.md``
(LABEL defaults to ``latest``); ``make bench`` copies every file there into RESULTS.md, so a
``before`` profile kept beside an ``after`` one shows what a change bought.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchsite
import servers
from run import need, prepare

PROFILES = servers.BENCH / "profiles"
SECONDS = 6
TOP = 12
RATE = 250  # samples per second
SCENARIOS = [
    ("S1", "small file (2 KB html), -c 10 -m 10", ["-c", "10", "-m", "10"], benchsite.PAGE),
    ("S3", "1 MB file, -c 4 -m 1", ["-c", "4", "-m", "1"], benchsite.LARGE),
    # Handshake-bound: h2load -n 100 -c 100 over and over, for SECONDS.
    ("S4h", "100 fresh connections, one request each, repeated",
     ["-n", "100", "-c", "100", "-m", "1"], benchsite.PAGE),
    ("S10", "small file (2 KB html) over HTTP/1.1, --h1 -c 10 -m 1",
     ["--h1", "-c", "10", "-m", "1"], benchsite.PAGE),
]
# A sample's leaf frame is put in the first group whose pattern its file name matches.
GROUPS = [
    ("h2", re.compile(r"(^|/)h2/")),
    ("hpack", re.compile(r"(^|/)hpack/")),
    ("hyperframe", re.compile(r"(^|/)hyperframe/")),
    ("h11", re.compile(r"(^|/)h11/")),
    ("hyper2web", re.compile(r"(^|/)hyper2web(_cli)?/")),
    ("curio", re.compile(r"(^|/)curio/")),
    ("ssl + socket (stdlib)", re.compile(r"(^|/)(ssl|socket|selectors)\.py")),
    ("logging (stdlib)", re.compile(r"(^|/)logging/")),
]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def group_of(filename: str) -> str:
    for name, pattern in GROUPS:
        if pattern.search(filename):
            return name
    return "other (stdlib, native)"


def parse_raw(text: str) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """py-spy's raw (collapsed stack) output -> samples by group and by leaf function."""
    groups: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        leaf = stack.split(";")[-1]
        match = _FRAME.match(leaf)
        func, filename = (match["func"], match["file"]) if match else (leaf, "")
        if filename.endswith("threading.py") and func.endswith("wait"):
            continue  # a worker thread of the pool, waiting for work

        groups[group_of(filename)] += samples
        short = filename.split("site-packages/")[-1].split("/lib/python3")[-1]
        leaves[f"{func} ({short})"] += samples
        total += samples
    return groups, leaves, total


def summarize(title: str, raw: str, rps: str) -> str:
    groups, leaves, total = parse_raw(raw)
    lines = [f"### {title}", "", f"h2load: {rps}; {total} samples of busy CPU", "",
             "| package | share |", "|---|---:|"]
    for name, samples in groups.most_common():
        lines.append(f"| {name} | {samples / total:.0%} |")
    lines += ["", f"Top {TOP} functions by self time:", "", "| function | share |", "|---|---:|"]
    for func, samples in leaves.most_common(TOP):
        lines.append(f"| `{func}` | {samples / total:.1%} |")
    return "\n".join(lines) + "\n"


def profile_one(server: servers.Server, args: list[str], path: str, client_cpu: int | None,
                out: Path) -> tuple[str, str]:
    """Sample the server while h2load runs; returns (raw py-spy output, h2load's rate line)."""
    assert server.proc is not None
    spy = subprocess.Popen([servers.venv_script("py-spy"), "record", "--pid",
                            str(server.proc.pid), "--duration", str(SECONDS + 1), "--rate",
                            str(RATE), "--format", "raw", "--output", str(out),
                            "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    url = f"https://127.0.0.1:{server.port}{path}"
    if "-n" in args:  # a fixed number of requests: run it again until the time is up
        requests, began = 0, time.perf_counter()
        while time.perf_counter() - began < SECONDS:
            subprocess.run(servers.pin(client_cpu) + ["h2load", *args, url],
                           capture_output=True, timeout=60)
            requests += int(args[args.index("-n") + 1])
        elapsed = time.perf_counter() - began
        load = subprocess.CompletedProcess(
            [], 0, f"finished in {elapsed:.2f}s, {requests / elapsed:.2f} req/s (h2load "
                   f"started again and again)\n", "")
    else:
        load = subprocess.run(servers.pin(client_cpu) + ["h2load", "-D", str(SECONDS), *args,
                                                         url],
                              capture_output=True, text=True, timeout=SECONDS + 60)
    _, err = spy.communicate(timeout=SECONDS + 30)
    if spy.returncode != 0 or not out.exists():
        raise SystemExit(f"py-spy failed (it needs ptrace rights; run as root or set "
                         f"kernel.yama.ptrace_scope=0):\n{err.decode(errors='replace')}")
    rate = re.search(r"^finished in .*$", load.stdout, re.M)
    return out.read_text(), rate.group(0) if rate else "h2load gave no result"


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "latest"
    only = set(sys.argv[2:])
    unknown = only - {key for key, *_ in SCENARIOS}
    if unknown:
        raise SystemExit(f"no such scenario: {', '.join(sorted(unknown))}")
    if not re.fullmatch(r"[\w.-]+", label):
        raise SystemExit(f"label {label!r}: use letters, digits, '.', '-' or '_'")
    need("h2load", "nghttp2-client")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    sections = [f"## Profile: {label}", "",
                f"py-spy record --rate {RATE} --format raw on `hyper2web serve` (live reload "
                f"and access log on) during `h2load -D {SECONDS}`; busy samples only "
                "(waiting in epoll is left out).", ""]
    with tempfile.TemporaryDirectory(prefix="hyper2web-profile-") as tmp:
        os.chmod(tmp, 0o755)
        paths = prepare(Path(tmp))
        server = servers.Hyper2web("hyper2web", paths, server_cpu)
        server.start()
        try:
            subprocess.run(["h2load", "-n", "2000", "-c", "10", "-m", "10",
                            f"https://127.0.0.1:{server.port}{benchsite.PAGE}"],
                           capture_output=True, timeout=60)
            for key, title, args, path in SCENARIOS:
                if only and key not in only:
                    continue
                raw, rate = profile_one(server, args, path, client_cpu,
                                        Path(tmp) / f"{key}.raw")
                sections.append(summarize(f"{key}: {title}", raw, rate))
        finally:
            server.stop()
    text = "\n".join(sections)
    print(text)
    PROFILES.mkdir(exist_ok=True)
    target = PROFILES / f"{label}.md"
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The load generator: one h2load run, read into a figure and a count of bad requests, and
the CPU accounting that tells how busy the rest of the machine was meanwhile."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*
import servers
from scenarios import DURATION

from tests.server.h2client import HOST


@dataclass
class Run:
    command: list[str]
    output: str
    rps: float = -1.0
    bad: int = 0  # failed, errored, timed out, unfinished, or with an unexpected status
    problem: str = ""
    others: float = 0.0  # cores used by processes other than this server and h2load
    client: float = 0.0  # cores h2load itself used
    steal: float = 0.0  # cores taken by the hypervisor


def machine_cpu() -> tuple[float, float]:
    """(user + nice + system, steal) seconds of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:3]) / servers.CLOCK_TICKS, values[7] / servers.CLOCK_TICKS


def children_cpu() -> float:
    """CPU seconds of the children this process has waited for (the h2load runs)."""
    times = os.times()
    return times.children_user + times.children_system


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
    """Run h2load; a run that did not finish or did not parse counts as failed requests."""
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
    count_bad(run, requests, status, expect)
    return run


def count_bad(run: Run, requests: re.Match[str], status: re.Match[str], expect: str) -> None:
    """Failed, unfinished and wrong-status requests: a fast wrong answer is not a result."""
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

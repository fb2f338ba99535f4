"""An interleaved A/B of two source trees of hyper2web: which one is faster, and by how much.

    python bench/ab.py OLD_TREE NEW_TREE [SCENARIO ...]    # S1, S3, S4h, S5, S10; default S1

A tree is a folder holding ``hyper2web/`` and ``hyper2web_cli/``, for example
``git archive HEAD hyper2web hyper2web_cli | tar -x -C /tmp/old``. Each round starts
``hyper2web serve`` from one tree, then the other (the order alternates), pinned like
``make bench``, and runs every scenario against it; the report gives the medians of each
figure and of the server's CPU time per request. Single ``make bench`` runs move by 10-20%;
running both trees in the same minutes is what makes a 5% change visible. AB_ROUNDS (default
4) and AB_SECONDS (default 4) are read from the environment.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchsite
import servers
from run import prepare

ROUNDS = int(os.environ.get("AB_ROUNDS", "4"))
SECONDS = os.environ.get("AB_SECONDS", "4")
ARGS = {"S1": ["-c", "10", "-m", "10"], "S3": ["-c", "4", "-m", "1"],
        "S5": ["-c", "1", "-m", "100"], "S10": ["--h1", "-c", "10", "-m", "1"]}
HANDSHAKES = ["-n", "100", "-c", "100", "-m", "1"]  # S4h, run HANDSHAKE_RUNS times
HANDSHAKE_RUNS = 15


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def h2load(args: list[str]) -> int:
    """Run h2load; the number of requests done. Exits unless every one of them got a 2xx."""
    out = subprocess.run(["taskset", "-c", "1", "h2load", *args], capture_output=True,
                         text=True, timeout=120).stdout
    done = re.search(r"(\d+) done, (\d+) succeeded, 0 failed, 0 errored, 0 timeout", out)
    if done is None or int(done.group(1)) == 0 or done.group(1) != done.group(2) \
            or "2xx, 0 3xx, 0 4xx, 0 5xx" not in out:
        raise SystemExit(f"h2load {' '.join(args)} failed:\n{out}")
    return int(done.group(1))


def measure(key: str, pid: int, base: str, uris: Path) -> tuple[float, float]:
    """(figure, server CPU microseconds per request) of one scenario run."""
    before = cpu_seconds(pid)
    began = time.perf_counter()
    if key == "S4h":
        requests = sum(h2load([*HANDSHAKES, base + benchsite.PAGE])
                       for _ in range(HANDSHAKE_RUNS))
    else:
        target = ["-i", str(uris)] if key == "S5" else \
            [base + (benchsite.LARGE if key == "S3" else benchsite.PAGE)]
        requests = h2load(["-D", SECONDS, *ARGS[key], *target])
    rate = requests / (time.perf_counter() - began)
    used = 1e6 * (cpu_seconds(pid) - before) / requests
    figure = rate * benchsite.LARGE_SIZE / 1e6 if key == "S3" else rate
    return figure, used


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    trees = {"old": sys.argv[1], "new": sys.argv[2]}
    keys = sys.argv[3:] or ["S1"]
    unknown = [key for key in keys if key not in ARGS and key != "S4h"]
    if unknown:
        print(f"unknown scenario {', '.join(unknown)}: use {', '.join([*ARGS, 'S4h'])}")
        return 2
    for tree in trees.values():
        if not (Path(tree) / "hyper2web").is_dir():
            print(f"{tree} holds no hyper2web/")
            return 2
    results: dict[tuple[str, str], list[tuple[float, float]]] = {
        (key, name): [] for key in keys for name in trees}
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled once, as an install would
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        paths = prepare(Path(tmp))
        for number in range(ROUNDS):
            for name in list(trees) if number % 2 == 0 else list(trees)[::-1]:
                port = servers.free_port()
                proc = subprocess.Popen(
                    ["taskset", "-c", "0", sys.executable, "-m", "hyper2web_cli", "serve",
                     str(paths.public), "--host", "127.0.0.1", "--port", str(port),
                     "--strict-port", "--cert", str(paths.cert), "--key", str(paths.key)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
                    env=dict(env, PYTHONPATH=trees[name]))
                try:
                    servers.wait_ready(proc, port, name, [])
                    base = f"https://127.0.0.1:{port}"
                    uris = Path(tmp) / "uris.txt"
                    uris.write_text("".join(f"{base}{p}\n" for p in benchsite.module_paths()))
                    h2load(["-n", "3000", "-c", "10", "-m", "10", base + benchsite.PAGE])
                    for key in keys:
                        figure, used = measure(key, proc.pid, base, uris)
                        results[(key, name)].append((figure, used))
                        print(f"round {number + 1} {key} {name}: {figure:,.0f}, "
                              f"{used:.1f} us CPU a request", flush=True)
                finally:
                    servers.stop_process(proc)
    for key in keys:
        old, new = results[(key, "old")], results[(key, "new")]
        fig_old, fig_new = (statistics.median(x[0] for x in runs) for runs in (old, new))
        cpu_old, cpu_new = (statistics.median(x[1] for x in runs) for runs in (old, new))
        print(f"{key}: old {fig_old:,.0f} ({cpu_old:.1f} us), new {fig_new:,.0f} "
              f"({cpu_new:.1f} us): {100 * (fig_new / fig_old - 1):+.1f}%, CPU a request "
              f"{100 * (cpu_new / cpu_old - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())

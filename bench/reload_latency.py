"""Save-to-event latency of live reload: a saved file -> the ``reload`` event at a client.

Starts ``hyper2web serve`` on a temporary site (loopback, a free port), reads
``/__hyper2web__/events`` with an HTTP/2 client and saves ``index.html`` 50 times in each
of three ways editors save:

- in place: open, truncate, write, close (most editors);
- atomic rename: write a temporary file, then ``os.replace`` it over the page;
- backup rename, as vim does: rename the page to ``index.html~``, write a new page,
  ``fsync`` it, delete the backup.

For each save it measures the time until the first ``reload`` event arrives, and counts
the events that save caused (wanted: exactly one). Prints p50/p95/max per way.
"""

from __future__ import annotations

import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*

from tests.reload.livekit import edit, save_atomic, save_like_vim

WRITES = 50
TIMEOUT = 5.0
SETTLE = 0.3  # after a save's first event, later events within this time are its own too


def start_server(site: Path) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOME": str(site / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyper2web_cli", "serve", str(site / "public"), "--port", "0",
         "--quiet"],
        cwd=site, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"https://localhost:(\d+)/", line)
        if found:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, int(found.group(1))
    proc.kill()
    raise SystemExit("server did not start")


def read_events(url: str, events: queue.Queue[tuple[float, str]], ready: threading.Event,
                stop: threading.Event) -> None:
    try:
        with httpx.Client(http2=True, verify=False, timeout=None) as client, \
                client.stream("GET", url + "/__hyper2web__/events") as response:
            kind = ""
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    kind = line[7:]
                    if kind == "hello":
                        ready.set()
                elif line.startswith("data: ") and kind == "reload":
                    events.put((time.perf_counter(), line))
    except httpx.HTTPError:
        if not stop.is_set():
            raise


SAVES = [("in place", edit), ("atomic rename", save_atomic),
         ("backup rename (vim)", save_like_vim)]


def measure(page: Path, events: queue.Queue[tuple[float, str]],
            save: Callable[[Path, str], None], first: int) -> tuple[list[float], int, int]:
    """Latencies of ``WRITES`` saves, the saves without an event, and extra events seen."""
    latencies: list[float] = []
    lost = extra = 0
    for number in range(first, first + WRITES):
        while not events.empty():
            events.get_nowait()
        started = time.perf_counter()
        save(page, f"<!doctype html><title>bench</title>{number}")
        try:
            arrived, _ = events.get(timeout=TIMEOUT)
        except queue.Empty:
            lost += 1
            continue
        latencies.append((arrived - started) * 1000)
        time.sleep(SETTLE)
        while not events.empty():
            events.get_nowait()
            extra += 1
        time.sleep(0.05)
    return latencies, lost, extra


def main() -> int:
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "public").mkdir()
        (site / "home").mkdir()
        page = site / "public" / "index.html"
        page.write_text("<!doctype html><title>bench</title>0")
        proc, port = start_server(site)
        events: queue.Queue[tuple[float, str]] = queue.Queue()
        ready, stop = threading.Event(), threading.Event()
        reader = threading.Thread(target=read_events, daemon=True,
                                  args=(f"https://localhost:{port}", events, ready, stop))
        reader.start()
        if not ready.wait(10):
            raise SystemExit("no event stream")
        time.sleep(0.5)  # let the watcher settle
        try:
            for index, (name, save) in enumerate(SAVES):
                latencies, lost, extra = measure(page, events, save, 1 + index * WRITES)
                latencies.sort()
                p50 = statistics.median(latencies)
                p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
                print(f"{name}: {len(latencies)} saves, {lost} without an event, "
                      f"{extra} extra events")
                print(f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {latencies[-1]:.1f} ms")
                failed = failed or lost > 0 or extra > 0 or p50 > 10 or p95 > 20
        finally:
            stop.set()
            proc.terminate()
            proc.wait(10)
    print("targets: p50 <= 10 ms, p95 <= 20 ms, exactly one reload event per save")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

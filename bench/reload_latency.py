"""Write-to-event latency of live reload: a file write -> the ``reload`` event at a client.

Starts ``hyper2web serve`` on a temporary site (loopback, a free port), reads
``/__hyper2web__/events`` with an HTTP/2 client, rewrites ``index.html`` 50 times and
measures, for each write, the time until its ``reload`` event arrives. Prints p50/p95/max.
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
from pathlib import Path

import httpx

WRITES = 50
TIMEOUT = 5.0


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


def main() -> None:
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
        latencies: list[float] = []
        lost = 0
        try:
            for number in range(1, WRITES + 1):
                while not events.empty():
                    events.get_nowait()
                started = time.perf_counter()
                page.write_text(f"<!doctype html><title>bench</title>{number}")
                try:
                    arrived, _ = events.get(timeout=TIMEOUT)
                except queue.Empty:
                    lost += 1
                    continue
                latencies.append((arrived - started) * 1000)
                time.sleep(0.45)  # past the watcher's debounce: one write, one event
        finally:
            stop.set()
            proc.terminate()
            proc.wait(10)
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    print(f"live reload latency over {len(latencies)} writes ({lost} without an event):")
    print(f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {latencies[-1]:.1f} ms")
    print("  targets: p50 <= 100 ms, p95 <= 200 ms")


if __name__ == "__main__":
    main()

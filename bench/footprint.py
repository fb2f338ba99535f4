"""S7 and S8: what a server costs beyond throughput, memory per idle connection and the
time from launch to its first answer."""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import servers
from scenarios import IDLE_CONNECTIONS, STARTS

if TYPE_CHECKING:
    from run import Bench
    from servers import Server

# nginx is not started here: its pid file is fixed in its config (one nginx at a time).
NOT_STARTED = ("nginx",)


def idle_connections(bench: Bench) -> None:
    """S7 on each running server: RSS growth with IDLE_CONNECTIONS idle h2 connections."""
    for server in bench.servers:
        time.sleep(0.5)
        idle_connections_on(bench, server)


def idle_connections_on(bench: Bench, server: Server) -> None:
    """Open the connections from another process (bench/idle_connections.py), read RSS,
    then check every connection still answers a PING."""
    client = [sys.executable, str(servers.BENCH / "idle_connections.py")]
    before = server.rss_kb()
    command = servers.pin(bench.client_cpu) + client + [str(server.port), str(IDLE_CONNECTIONS)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
    bench.record("S7", server.name, per_connection, bad, shown)
    bench.rss_notes.append(f"{server.name}: {before:,} KB -> {after:,} KB with "
                           f"{opened} connections open ({alive} answered a PING)")
    print(f"    S7 {server.name}: {per_connection:.1f} KB/conn "
          f"({before:,} -> {after:,} KB, {opened} opened, {alive} alive)", flush=True)
    if bad:
        detail = " ".join(opened_line[3:]) if len(opened_line) > 3 else ""
        bench.problem(f"S7 on {server.name}: {failed} connections failed to open, "
                      f"{opened - alive} did not answer a PING", shown, detail)


def startup(bench: Bench) -> None:
    """S8: STARTS launches per server, alternating the order, each timed to its first 200
    over TLS + HTTP/2."""
    contenders = [server for server in bench.servers if server.name not in NOT_STARTED]
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
            bench.record("S8", server.name, elapsed, 0,
                         shlex.join(servers.pin(server.cpu) + server.command(port)))
    line = ", ".join(f"{s.name} {statistics.median(bench.samples[f'S8:{s.name}']):.0f}"
                     for s in contenders)
    print(f"    S8 ms: {line}", flush=True)

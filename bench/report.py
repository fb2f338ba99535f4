"""The report: the table printed and written to bench/RESULTS.md, with everything needed to
reproduce and judge it (machine, versions, configurations, commands, samples, problems)."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import benchsite
import servers
from scenarios import (
    BY_KEY,
    HANDSHAKE_RUNS,
    NAMES,
    NOISY,
    ORDER,
    PEERS,
    ROUNDS,
    SHORT,
    STARTS,
    Figures,
)

if TYPE_CHECKING:
    from run import Bench

RESULTS = servers.BENCH / "RESULTS.md"
PROFILES = servers.BENCH / "profiles"
WORKER_ROWS = (("S1", "small file (2 KB html), req/s"),
               ("S4", "100 fresh connections, one stream each, req/s"),
               ("S4h", "100 fresh connections, one request each, req/s"))


# ---------------------------------------------------------------------------- the table

def medians(samples: dict[str, list[float]]) -> Figures:
    """The median of every scenario and server; -1 where nothing was measured."""
    figures = {}
    for key in ORDER:
        for name in NAMES:
            values = samples.get(f"{key}:{name}")
            figures[f"{key}:{name}"] = statistics.median(values) if values else -1.0
    return figures


def number(value: float, unit: str) -> str:
    if value < 0:
        return "error"
    if unit in ("req/s", "ms"):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def ratio(ours: float, peer: float) -> str:
    if ours < 0 or peer <= 0:
        return "-"
    return f"{ours / peer:.2f}x"


def table(bench: Bench) -> tuple[list[str], list[list[str]]]:
    """One row per scenario: the figures, hyper2web's ratio to each peer, failures, targets."""
    figures = medians(bench.samples)
    header = ["", "scenario", "unit", *NAMES, *(f"vs {peer}" for peer in PEERS),
              f"failed ({'/'.join(SHORT[name] for name in NAMES)})", "target", "met"]
    rows = []
    for key in ORDER:
        scenario = BY_KEY[key]
        values = [figures[f"{key}:{name}"] for name in NAMES]
        measured = [f"{key}:{name}" in bench.bad for name in NAMES]
        cells = [number(v, scenario.unit) if shown else "-"
                 for v, shown in zip(values, measured, strict=True)]
        ratios = [ratio(values[0], peer) if shown else "-"
                  for peer, shown in zip(values[1:], measured[1:], strict=True)]
        failed = "/".join(str(bench.bad[f"{key}:{name}"]) if f"{key}:{name}" in bench.bad
                          else "-" for name in NAMES)
        rows.append([key, scenario.title, scenario.unit, *cells, *ratios, failed,
                     scenario.target, scenario.met(figures)])
    return header, rows


def render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    """Markdown for RESULTS.md, aligned plain text for the terminal."""
    numeric = set(range(3, len(header) - 2))
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if i in numeric else "---"
                                for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                         for i, cell in enumerate(row)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def noise_summary(noise: list[tuple[float, float]]) -> str:
    """How much of the machine other processes took while h2load ran: are figures noisy?"""
    if not noise:
        return ""
    others = [value for value, _ in noise]
    steal = [value for _, value in noise]
    noisy = sum(value >= NOISY for value in others)
    text = (f"Noise: while h2load ran, processes other than the server under test and "
            f"h2load used {statistics.mean(others):.2f} of a core on average (max "
            f"{max(others):.2f}); the hypervisor took {statistics.mean(steal):.2f} on "
            f"average (steal). {noisy} of {len(others)} runs had other processes at "
            f">= {NOISY} of a core")
    return text + (": the figures are noisy." if noisy > len(others) / 10 else ".")


def workers_table(bench: Bench) -> list[str]:
    """hyper2web --workers 2 against --workers 1, for RESULTS.md."""
    if not bench.worker_figures:
        return []
    counts = bench.worker_counts
    out = [f"## hyper2web --workers {counts[-1]} against --workers {counts[0]}", "",
           f"Same site and certificate; servers and h2load not pinned (the workers may use "
           f"every one of the {bench.usable_cpus} cores, h2load shares them). Medians of "
           f"{ROUNDS} runs (S4h: {ROUNDS * HANDSHAKE_RUNS}).", "",
           "| scenario | " + " | ".join(f"--workers {n}" for n in counts) + " | ratio |",
           "|---|" + "---:|" * (len(counts) + 1)]
    for key, title in WORKER_ROWS:
        values = [bench.worker_figures.get((key, n), -1.0) for n in counts]
        out.append(f"| {key} {title} | " + " | ".join(f"{v:,.0f}" for v in values) +
                   f" | {ratio(values[-1], values[0])} |")
    out += ["", "Commands:", ""]
    out += [f"    {command}" for _, command in sorted(bench.worker_commands.items())]
    return out + [""]


# ---------------------------------------------------------------------------- RESULTS.md

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


def tool_version(command: list[str]) -> str:
    """The first line a program prints about its version (nginx prints it on stderr)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"{command[0]}: {exc}"
    text = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return text[0] if text else f"{command[0]}: no version"


def versions() -> list[str]:
    lines = []
    for name in ("hyper2web", "h2", "curio", "hypercorn", "starlette", "granian"):
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} not installed")
    lines.append(tool_version(["nginx", "-v"]))
    lines.append("caddy " + tool_version(["caddy", "version"]))
    lines.append(tool_version(["h2load", "--version"]))
    return lines


def intro(bench: Bench, table_text: str, elapsed: float) -> list[str]:
    return ["# Benchmark results", "",
            "Written by `make bench` (bench/run.py). Medians of "
            f"{ROUNDS} interleaved rounds (S4h: {ROUNDS * HANDSHAKE_RUNS} runs, S7: one "
            f"measurement, S8: {STARTS} starts). Ratios are hyper2web's figure divided by the "
            "peer's: above 1 is better for hyper2web except in S7 and S8 (KB and ms, lower is "
            "better). `failed` counts requests that failed, errored, timed out, never "
            "finished or had an unexpected status, summed over all runs. In S10 the granian "
            "column is a second granian started with `--http 1`.", "",
            table_text, "",
            f"Total time: {elapsed:.0f} s. Failed requests: {bench.total_bad()}.", "",
            noise_summary(bench.noise), ""]


def environment(bench: Bench, load: tuple[str, str]) -> list[str]:
    pinning = (f"- server CPU: {bench.server_cpu}, client CPU: {bench.client_cpu} (taskset -c)"
               if bench.server_cpu is not None else "- no CPU pinning (one core)")
    return ["## Machine", "", *(f"- {line}" for line in machine(bench.usable_cpus)),
            f"- load average (1 min) before / after: {load[0]} / {load[1]}", pinning,
            "", "## Versions", "", *(f"- {line}" for line in versions()), "",
            "## TLS as negotiated by h2load", "",
            *(f"- {name}: {text}" for name, text in bench.tls.items()), ""]


def config_files(bench: Bench) -> list[tuple[str, Path]]:
    """The configuration files of the running servers, as they were written."""
    scratch = bench.paths.scratch
    port = {server.name: server.port for server in bench.servers}
    return [("hypercorn's config file", scratch / f"hypercorn-{port['hypercorn']}.toml"),
            ("nginx's config file", scratch / "nginx" / f"nginx-{port['nginx']}.conf"),
            ("caddy's Caddyfile", scratch / "caddy" / f"Caddyfile-{port['caddy']}")]


def server_section(bench: Bench) -> list[str]:
    out = ["## Servers", ""]
    for server in [*bench.servers, *bench.h1_servers.values()]:
        out += [f"{server.name}:", "", f"    {server.shown_command()}", ""]
    for title, path in config_files(bench):
        out += [f"{title}:", "", *("    " + line for line in path.read_text().splitlines()),
                ""]
    return out


def samples_section(bench: Bench) -> list[str]:
    out = ["## Samples and commands", ""]
    for key in ORDER:
        scenario = BY_KEY[key]
        out += [f"### {key}: {scenario.title}", ""]
        for name in NAMES:
            if f"{key}:{name}" in bench.bad:
                out += samples_of(bench, key, name, scenario.unit)
        if key == "S7":
            out += [f"- {note}" for note in bench.rss_notes] + [""]
        if key == "S5":
            paths = benchsite.module_paths()
            out += [f"The URI file (-i) lists {len(paths)} URLs, one page load: "
                    f"`https://127.0.0.1:PORT{paths[0]}`, then `{paths[1]}` ... `{paths[-1]}`.",
                    ""]
    return out


def samples_of(bench: Bench, key: str, name: str, unit: str) -> list[str]:
    shown = ", ".join(number(v, unit) for v in bench.samples.get(f"{key}:{name}") or [])
    out = [f"{name}: {shown} {unit}"]
    others = bench.noisy.get(f"{key}:{name}")
    if others:
        out.append(f"(other processes during each run, in cores: "
                   f"{', '.join(f'{v:.2f}' for v in others)})")
    out.append("")
    commands = bench.commands[f"{key}:{name}"]
    out += [f"    {command}" for command in commands[:2]]
    if len(commands) > 2:
        out.append(f"    ... ({len(commands)} commands, one per start, differing only in "
                   "the port)")
    return out + [""]


def write_results(bench: Bench, table_text: str, elapsed: float, load: tuple[str, str]) -> None:
    out = [*intro(bench, table_text, elapsed), *environment(bench, load),
           *server_section(bench), *samples_section(bench), *workers_table(bench),
           "## Problems", ""]
    out += bench.problems or ["None: every request of every run succeeded."]
    out += ["", *targets(), *profiles()]
    RESULTS.write_text("\n".join(out).rstrip() + "\n")


def targets() -> list[str]:
    """bench/TARGETS.md, the notes on each target met or missed (written by hand)."""
    path = servers.BENCH / "TARGETS.md"
    return [*path.read_text().strip().splitlines(), ""] if path.exists() else []


def profiles() -> list[str]:
    """The profiles kept in bench/profiles/ (``make profile LABEL=...``), oldest first."""
    found = sorted(PROFILES.glob("*.md"), key=lambda path: path.stat().st_mtime)
    if not found:
        return []
    out = ["# Profiles", "",
           "Where hyper2web's CPU time goes in S1, S3 and S4h, from `make profile "
           "LABEL=<label>` "
           "(bench/profile.py: py-spy samples during h2load), one section per kept profile.",
           ""]
    for path in found:
        # One heading level down, under "Profiles".
        out += [f"#{line}" if line.startswith("#") else line
                for line in path.read_text().strip().splitlines()]
        out.append("")
    return out

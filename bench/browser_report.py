"""The tables of make bench-browser and bench/BROWSER.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent

METHOD = """\
## Method

- **Site.** `bench/browser_site.py`: `index.html` (a stylesheet, four 1x1 PNGs, one
  `<script type="module" src="/js/main.js">`) and 300 ES modules in 8 levels (1, 3, 8, 18,
  34, 56, 80 and 100 modules). Each module imports its share of the next level plus one more
  module of it chosen at random (seeded), so modules are shared (a DAG, not a tree), and
  exports `v` = its own number + the `v` of everything it imports. When every module has
  evaluated, `main.js` writes `document.body.dataset.ready = v` (which depends on every
  module), `dataset.nav = performance.now()` and `dataset.t = performance.timeOrigin +
  performance.now()`. Every file is dated one day back (a project's files are mostly older
  than the session); an edited file gets the current time. Each server serves its own copy.
- **Servers.** All on 127.0.0.1 and a free port, TLS + HTTP/2 with the certificate of
  `hyper2web certs --out`, output to a file; every response of every load is checked to come
  over `h2` (the protocol columns). hyper2web as a developer runs it: live reload on, its
  access log on. vite's dev server (`server.https` with the certificate and no proxy, so it
  serves HTTP/2) with HMR on, and with `server.hmr: false` for the manual-reload row. caddy:
  `file_server` at its defaults. No CPU pinning: the browser, the servers and this harness
  share the machine's cores.
- **Browser.** Chromium through Playwright, headless, no flag that skips certificate
  checks (Chromium does not cache responses of an origin with a certificate error): the CA
  that signed the certificate is trusted in an NSS database (`certutil -A -t C,,`) in the
  browser's temporary `HOME`. Each profile is a `launch_persistent_context` on a fresh
  temporary folder, so the HTTP cache works as a developer's does.
- **Cold load.** A fresh profile for each load; `page.goto(url)`; the time is the page's own
  `performance.now()` when the marker is written, i.e. from the navigation's start to every
  module evaluated (not to the `load` event). The marker must be the site's value. "first
  load after start" is the first cold load after the server started (not in the median;
  vite transforms the modules then). The rounds rotate the order of the servers.
- **After an edit.** One profile per row: load the page once (not timed), then 10 times:
  wait 0.6 s, rewrite one leaf module in place with a new number (4 digits each time, so the
  same size; a new value every edit, so a copy from any earlier load cannot pass), then
  - *page.reload()* rows: call `page.reload()` right after the write (a normal reload, as
    F5) and take the new page's `performance.now()` at the marker: from the reload's
    navigation start to every module evaluated. The server runs without live reload
    (`hyper2web --no-reload`, vite `server.hmr: false`; caddy has none), so nothing else
    reloads the page.
  - *reloads itself* rows: nothing is done after the write; the server's live reload (its
    file watcher, then its client in the page) reloads the page. The time runs from just
    before the write (`time.time()` in the harness) to the marker (`performance.timeOrigin +
    performance.now()` in the page; both read the system clock), so it includes the watcher's
    delay.
  - **stale**: the reloaded page finished with another value than the new one (old content
    served by the server or from the browser's cache). **no new content**: the new value did
    not show within 10 s. Neither has a time.
- **Requests.** Counted with a CDP session of the page (`Network.requestWillBeSent`), from
  the navigation (cold) or the write (edits) to 0.3 s after the marker: **200** and **304**
  came from the network, **from cache** were answered by the memory cache
  (`Network.requestServedFromCache`) or the disk cache (`fromDiskCache`) without the network.
  The live reload channels are requests too (hyper2web's EventSource is one, usually still
  open); vite's HMR WebSocket is not counted. The figures are medians over the loads.
"""


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def count(value: float) -> str:
    return f"{value:g}"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return (f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})")


def protocols(row: Any) -> str:
    seen = set()
    for sample in row.samples + ([row.first] if row.first else []):
        seen |= sample.counts.protocols
        if sample.protocol:
            seen.add(sample.protocol)
    return ", ".join(sorted(seen)) or "-"


def tables(cold: list[Any], reloads: list[Any], runs: int) -> str:
    lines = [f"Cold load, fresh profile each time: ms from navigation start to every module "
             f"evaluated, median of {runs} (min-max)", "",
             "| server | up (s) | first load after start (ms) | cold load (ms) | requests "
             "| 200 | 304 | from cache | protocol |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in cold:
        lines.append(f"| {row.label} | {row.start_s:.2f} | {fmt(row.first.ms)} | "
                     f"{spread(row.ok_ms())} | {count(row.median('requests'))} | "
                     f"{count(row.median('ok'))} | {count(row.median('not_modified'))} | "
                     f"{count(row.median('cached'))} | {protocols(row)} |")
    lines += ["", f"After editing one leaf module: ms until the page shows the new value, "
              f"median of {runs} edits (min-max)", "",
              "| how the new content arrives | ms | requests | 200 | 304 | from cache "
              "| stale | no new content | protocol |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in reloads:
        stale = sum(1 for sample in row.samples if sample.stale)
        missing = sum(1 for sample in row.samples if sample.ms is None and not sample.stale)
        lines.append(f"| {row.label} | {spread(row.ok_ms())} | "
                     f"{count(row.median('requests'))} | {count(row.median('ok'))} | "
                     f"{count(row.median('not_modified'))} | {count(row.median('cached'))} | "
                     f"{stale} | {missing} | {protocols(row)} |")
    notes = []
    for row in reloads:
        waits = [sample.extra["write to navigation start"] for sample in row.samples
                 if "write to navigation start" in sample.extra]
        if waits:
            notes.append(f"- {row.label}: from the write to the reload's navigation start "
                         f"{spread(waits)} ms (the watcher and the live reload message)")
    return "\n".join(lines + ([""] + notes if notes else []))


def machine() -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return [f"CPU: {model.group(1) if model else platform.processor() or 'unknown'}",
            f"cores: {os.cpu_count()}",
            f"memory: {int(memory.group(1)) / 1024 / 1024:.1f} GiB" if memory else "memory: ?",
            f"kernel: {platform.system()} {platform.release()}",
            f"Python: {platform.python_version()}"]


def samples(rows: list[Any]) -> list[str]:
    out = ["## Samples", "", "ms per load in order; `STALE=value` when the page showed another "
           "value than the expected one; `none` when no new value showed. Then the requests "
           "of each load: 200s / 304s / from the memory cache / from the disk cache / other "
           "(another status, failed or still pending).", ""]
    for row in rows:
        shown = []
        for sample in row.samples:
            if sample.ms is not None:
                shown.append(f"{sample.ms:.0f}")
            else:
                shown.append(f"STALE={sample.marker}" if sample.stale else "none")
        out.append(f"- {row.label}: {', '.join(shown)}")
        out.append("  - requests: " + ", ".join(
            f"{c.ok}/{c.not_modified}/{c.memory}/{c.disk}/{c.other}"
            for c in (sample.counts for sample in row.samples)))
        keys = sorted({key for sample in row.samples for key in sample.extra})
        for key in keys:
            values = [f"{sample.extra[key]:.0f}" if key in sample.extra else "-"
                      for sample in row.samples]
            out.append(f"  - {key}: {', '.join(values)}")
    return out


def write_report(cold: list[Any], reloads: list[Any], servers: list[Any],
                 versions: dict[str, str], elapsed: float, load: tuple[str, str],
                 sites: dict[str, Any], runs: int, chromium: str, args: list[str]) -> str:
    table = tables(cold, reloads, runs)
    site = next(iter(sites.values()))
    out = ["# Page loads in a browser: hyper2web, vite, caddy", "",
           "Written by `make bench-browser` (bench/browser_bench.py). A page of "
           f"{site.modules_total} ES modules 8 levels deep, over TLS + HTTP/2, in headless "
           "Chromium; see Method.", "", table, "",
           f"Total time: {elapsed:.0f} s. Load average (1 min) before / after: {load[0]} / "
           f"{load[1]}.", "", METHOD, "## Machine", "", *(f"- {line}" for line in machine()),
           "", "## Versions", "", *(f"- {name}: {value}" for name, value in versions.items()),
           "", "## Commands and configurations", "",
           f"Chromium: `{chromium}` through Playwright `launch_persistent_context(profile, "
           f"headless=True, args={args})`, `HOME` = a folder whose `.pki/nssdb` trusts the CA.",
           ""]
    for server in servers:
        out += [f"- {server.label}: `{server.shown_command()}`"]
        if server.config_text:
            text = server.config_text.replace(str(server.shared.scratch), "$TMP")
            lang = "js" if server.kind == "vite" else ""
            out += ["", f"  ```{lang}", *(f"  {line}" if line else ""
                                          for line in text.splitlines()), "  ```", ""]
    out += ["", "`$TMP` is the run's temporary folder. vite runs from `bench/browser/` "
            "(`package.json` pins it).", "", *samples(cold + reloads), ""]
    problems = [row for row in cold + reloads if any(
        sample.ms is None and (not sample.stale or row.server.kind == "hyper2web")
        for sample in row.samples)]
    if problems:
        out += ["## Server output of the rows with missing content (and hyper2web's stale)",
                ""]
        for row in problems:
            out += [f"### {row.label}", "", "```", row.server.log_tail(15), "```", ""]
    (BENCH / "BROWSER.md").write_text("\n".join(out).rstrip() + "\n")
    return table

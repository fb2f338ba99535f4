"""make bench-browser: the page load a developer waits for, in a real browser (Chromium,
through Playwright), from hyper2web, vite's dev server and caddy.

    python bench/browser_bench.py

The site (bench/browser_site.py) is one page importing 300 ES modules 8 levels deep, a
stylesheet and four images; the page writes a marker once every module has evaluated.
Measured, for each server over TLS + HTTP/2 with the same certificate: a cold load (a fresh
browser profile each time) and the load after an edit of one leaf module, either reloaded
by hand (``page.reload()``) or reloaded by the server's live reload. The table goes to the
terminal and, with the method, the machine, the versions, the commands, the configurations
and every sample, to bench/BROWSER.md. See bench/README.md.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from browser_report import write_report
from browser_servers import VITE_BIN, Server, Shared, prepare, versions
from browser_site import EDITED_START, Site, make_site

# Cold loads per server (each in a fresh profile); edits per reload row.
RUNS = int(os.environ.get("BENCH_RUNS", "10"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
SETTLE_MS = 300  # after the marker: late requests (images, live reload channels) are counted
GAP_S = 0.6  # between one edit's measurement and the next edit
WAIT_S = 10.0  # longest wait for new content after an edit
MARKER_JS = """() => {
  const body = document.body;
  if (!body || !body.dataset.ready) return null;
  const entry = performance.getEntriesByType("navigation")[0];
  return {ready: body.dataset.ready, nav: Number(body.dataset.nav),
          t: Number(body.dataset.t), origin: performance.timeOrigin,
          protocol: entry ? entry.nextHopProtocol : ""};
}"""


@dataclass
class Counts:
    """What one load asked for, as the browser's network layer reports it (CDP)."""

    requests: int = 0  # every request the page made (data: URLs aside), cache hits included
    ok: int = 0  # 200 from the network
    not_modified: int = 0  # 304 from the network (revalidated)
    memory: int = 0  # from the memory cache, no network
    disk: int = 0  # from the disk cache, no network
    other: int = 0  # another status, failed, or still pending
    websockets: int = 0
    protocols: set[str] = field(default_factory=set)

    @property
    def cached(self) -> int:
        return self.memory + self.disk


class NetLog:
    """Network.* events of one page through its own CDP session.

    The status is the one on the wire (``responseReceivedExtraInfo``): for a document
    revalidated with a 304, ``responseReceived`` reports the cached 200.
    """

    def __init__(self, cdp: Any) -> None:
        self.sent: dict[str, str] = {}
        self.from_cache: set[str] = set()
        self.responses: dict[str, dict[str, Any]] = {}
        self.wire: dict[str, int] = {}
        self.websockets = 0
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestServedFromCache",
               lambda event: self.from_cache.add(event["requestId"]))
        cdp.on("Network.responseReceived",
               lambda event: self.responses.__setitem__(event["requestId"], event["response"]))
        cdp.on("Network.responseReceivedExtraInfo",
               lambda event: self.wire.__setitem__(event["requestId"], event["statusCode"]))
        cdp.on("Network.webSocketCreated", self._websocket)
        cdp.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        if not event["request"]["url"].startswith("data:"):
            self.sent.setdefault(event["requestId"], event["request"]["url"])

    def _websocket(self, event: dict[str, Any]) -> None:
        self.websockets += 1

    def reset(self) -> None:
        for table in (self.sent, self.from_cache, self.responses, self.wire):
            table.clear()
        self.websockets = 0

    def counts(self) -> Counts:
        counts = Counts(requests=len(self.sent), websockets=self.websockets)
        for request_id in self.sent:
            response = self.responses.get(request_id) or {}
            status = self.wire.get(request_id)
            if status is None and response and not (response.get("fromDiskCache")
                                                    or request_id in self.from_cache):
                status = response["status"]  # from the network, without the extra info
            if status is not None:
                if status in (200, 304):
                    counts.protocols.add(response.get("protocol", "?"))
                counts.ok += status == 200
                counts.not_modified += status == 304
                counts.other += status not in (200, 304)
            elif response.get("fromDiskCache"):
                counts.disk += 1
            elif request_id in self.from_cache:
                counts.memory += 1
            else:
                counts.other += 1  # failed, or still pending
        return counts


@dataclass
class Sample:
    ms: float | None  # None: no new content
    counts: Counts
    marker: str | None
    protocol: str = ""
    stale: bool = False
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Row:
    label: str
    server: Server
    samples: list[Sample] = field(default_factory=list)
    first: Sample | None = None  # cold rows: the first load after the server started
    start_s: float = 0.0

    def ok_ms(self) -> list[float]:
        return [sample.ms for sample in self.samples if sample.ms is not None]

    def median(self, name: str) -> float:
        values = [getattr(sample.counts, name) for sample in self.samples]
        return statistics.median(values) if values else 0.0


class Browser:
    """Fresh persistent Chromium profiles, each in a temporary folder."""

    def __init__(self, playwright: Any, shared: Shared) -> None:
        self.playwright = playwright
        self.shared = shared
        self.context: Any = None
        self.profile: Path | None = None

    def open(self) -> tuple[Any, NetLog]:
        self.profile = Path(tempfile.mkdtemp(prefix="profile-", dir=self.shared.scratch))
        self.context = self.playwright.chromium.launch_persistent_context(
            str(self.profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            env={**os.environ, "HOME": str(self.shared.browser_home)}, timeout=30000)
        page = self.context.pages[0] if self.context.pages else self.context.new_page()
        page.set_default_timeout(60000)
        return page, NetLog(self.context.new_cdp_session(page))

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None


def read_marker(page: Any) -> dict[str, Any] | None:
    try:
        return page.evaluate(MARKER_JS)
    except Exception:  # the page is navigating: its context went away
        return None


def wait_marker(page: Any, done: Any, limit: float = WAIT_S) -> dict[str, Any] | None:
    """Poll the marker every 20 ms until ``done(marker)``; the last marker read."""
    deadline = time.monotonic() + limit
    marker = read_marker(page)
    while not (marker and done(marker)) and time.monotonic() < deadline:
        page.wait_for_timeout(20)
        marker = read_marker(page)
    return marker


def cold_load(browser: Browser, server: Server, expected: str) -> Sample:
    """A fresh profile; navigate; time from navigation start to the marker (in the page)."""
    page, net = browser.open()
    try:
        started = time.time() * 1000
        page.goto(server.url, wait_until="load")
        marker = wait_marker(page, lambda m: True)
        page.wait_for_timeout(SETTLE_MS)
        counts = net.counts()
    finally:
        browser.close()
    if marker is None:
        return Sample(None, counts, None)
    good = marker["ready"] == expected
    return Sample(marker["nav"] if good else None, counts, marker["ready"], marker["protocol"],
                  stale=not good, extra={"from goto() call": marker["t"] - started})


def reload_run(browser: Browser, row: Row, site: Site, live: bool) -> None:
    """RUNS edits of one leaf in one browser profile, each followed by a reload."""
    page, net = browser.open()
    try:
        page.goto(row.server.url, wait_until="load")
        marker = wait_marker(page, lambda m: True)
        if marker is None or marker["ready"] != site.marker():
            raise SystemExit(f"{row.label}: the first load showed {marker}, not "
                             f"{site.marker()}")
        for number in range(1, RUNS + 1):
            time.sleep(GAP_S)
            page.wait_for_timeout(1)  # deliver the events of the gap before the reset
            net.reset()
            origin = marker["origin"]
            expected = site.edit(EDITED_START + 1000 + number)  # a new value every edit
            written = site.written_at * 1000
            if live:
                sample = await_live(page, origin, expected, written)
            else:
                called = time.time() * 1000
                page.reload(wait_until="load")
                marker = wait_marker(page, lambda m, o=origin: m["origin"] != o)
                if marker is None or marker["origin"] == origin:
                    sample = Sample(None, Counts(), None)
                else:
                    good = marker["ready"] == expected
                    sample = Sample(marker["nav"] if good else None, Counts(),
                                    marker["ready"], marker["protocol"], stale=not good,
                                    extra={"from reload() call": marker["t"] - called,
                                           "from the write": marker["t"] - written})
            page.wait_for_timeout(SETTLE_MS)
            sample.counts = net.counts()
            row.samples.append(sample)
            marker = read_marker(page) or {"origin": -1.0, "ready": None}
            shown = f"{sample.ms:7.0f} ms" if sample.ms is not None else (
                "  STALE   " if sample.stale else "  no new content")
            print(f"    edit {number:2d}: {shown}  ({sample.counts.requests} requests, "
                  f"{sample.counts.ok} x 200, {sample.counts.not_modified} x 304, "
                  f"{sample.counts.cached} from cache)", flush=True)
    finally:
        browser.close()


def await_live(page: Any, origin: float, expected: str, written: float) -> Sample:
    """Wait for the page to reload by itself and show ``expected``; time from the write."""
    deadline = time.monotonic() + WAIT_S
    stale_seen = False
    marker = None
    while time.monotonic() < deadline:
        marker = read_marker(page)
        if marker is not None and marker["origin"] != origin:
            if marker["ready"] == expected:
                return Sample(marker["t"] - written, Counts(), marker["ready"],
                              marker["protocol"], stale=stale_seen,
                              extra={"write to navigation start": marker["origin"] - written,
                                     "navigation start to marker": marker["nav"]})
            stale_seen = True
        page.wait_for_timeout(20)
    return Sample(None, Counts(), marker["ready"] if marker else None, stale=stale_seen)


def check_tools() -> None:
    for path, hint in ((CHROMIUM, "apt-get install chromium"),
                       ("/usr/bin/caddy", "apt-get install caddy")):
        if not Path(path).exists():
            raise SystemExit(f"bench-browser needs {path} (Debian: {hint})")
    node = shutil.which("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout if (
        node) else ""
    found = re.match(r"v(\d+)\.(\d+)", version)
    major, minor = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    if major < 20 or major == 21 or (major, minor) < (20, 19) or (major == 22 and minor < 12):
        raise SystemExit("bench-browser needs node ^20.19 or >= 22.12 (vite 8) and npm "
                         f"(Debian: apt-get install nodejs npm); found: {version or 'none'}")
    if not VITE_BIN.exists():
        raise SystemExit("vite is not installed: run 'make bench-browser' (it runs npm ci in "
                         "bench/browser)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise SystemExit("bench-browser needs playwright in .venv: make bench-browser")


def main() -> int:
    check_tools()
    from playwright.sync_api import sync_playwright

    began = time.monotonic()
    load_before = Path("/proc/loadavg").read_text().split()[0]
    scratch = Path(tempfile.mkdtemp(prefix="hyper2web-browser-bench-"))
    shared = prepare(scratch)
    sites: dict[str, Site] = {}

    def server(label: str, kind: str, live: bool) -> Server:
        name = f"{kind}-{'live' if live else 'manual'}"
        sites[name] = make_site(scratch / "sites" / name / "public")
        return Server(label, kind, shared, sites[name].root, live_reload=live)

    cold = [Row("hyper2web (live reload on)", server("hyper2web", "hyper2web", True)),
            Row("vite (HMR on)", server("vite", "vite", True)),
            Row("caddy", server("caddy", "caddy", False))]
    manual = [Row("hyper2web --no-reload: edit, page.reload()",
                  server("hyper2web --no-reload", "hyper2web", False)),
              Row("vite, server.hmr false: edit, page.reload()",
                  server("vite hmr-off", "vite", False)),
              Row("caddy: edit, page.reload()", cold[2].server)]
    live = [Row("hyper2web live reload: edit, page reloads itself", cold[0].server),
            Row("vite HMR: edit, page reloads itself", cold[1].server)]
    everything = [row.server for row in cold + manual[:2]]
    try:
        with sync_playwright() as playwright:
            browser = Browser(playwright, shared)
            warm, _ = browser.open()  # the browser's own first start, outside every figure
            warm.goto("data:text/html,<script type=module>document.title = 'warm'</script>")
            browser.close()
            print(f"cold loads: {RUNS} per server, each in a fresh profile", flush=True)
            for row in cold:
                row.start_s = row.server.start()
                row.first = cold_load(browser, row.server, sites[row.server.name].marker())
                print(f"  {row.label}: up in {row.start_s:.2f} s, first load "
                      f"{fmt(row.first.ms)} ms", flush=True)
            for number in range(RUNS):
                shift = number % len(cold)
                for row in cold[shift:] + cold[:shift]:
                    row.samples.append(cold_load(browser, row.server,
                                                 sites[row.server.name].marker()))
                print(f"  round {number + 1}: " + ", ".join(
                    f"{row.server.kind} {fmt(row.samples[-1].ms)} ms" for row in cold),
                      flush=True)
            for row in live:
                print(f"  {row.label}", flush=True)
                reload_run(browser, row, sites[row.server.name], live=True)
            for row in cold[:2]:
                row.server.stop()
            for row in manual:
                print(f"  {row.label}", flush=True)
                if row.server.proc is None:
                    row.start_s = row.server.start()
                reload_run(browser, row, sites[row.server.name], live=False)
    finally:
        for item in everything:
            item.stop()
    elapsed = time.monotonic() - began
    load_after = Path("/proc/loadavg").read_text().split()[0]
    text = write_report(cold, manual + live, everything, versions(), elapsed,
                        (load_before, load_after), sites, RUNS, CHROMIUM, CHROMIUM_ARGS)
    print("\n" + text)
    print(f"\nwritten to {Path(__file__).resolve().parent / 'BROWSER.md'} "
          f"({elapsed:.0f} s)")
    if os.environ.get("BENCH_KEEP"):
        print(f"kept {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    # Exit 1 when hyper2web ever showed old content or none: the peers' results are reported.
    ours = [sample for row in cold + manual + live if row.server.kind == "hyper2web"
            for sample in row.samples]
    return 1 if any(sample.ms is None or sample.stale for sample in ours) else 0


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    sys.exit(main())

"""What make bench measures: the scenarios, their h2load options and their targets.

The targets are printed next to the figures, never asserted: see bench/README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import benchsite

ROUNDS = 3
DURATION = 2  # seconds of each timed h2load run
HANDSHAKE_RUNS = 3  # S4h runs per server per round (each is only 100 requests)
IDLE_CONNECTIONS = 1000
STARTS = 10
NOISY = 0.25  # a run during which other processes used this much of a core is marked
NAMES = ("hyper2web", "hypercorn", "nginx", "caddy", "granian")
PEERS = NAMES[1:]
SHORT = {"hyper2web": "h2w", "hypercorn": "hc", "nginx": "nginx", "caddy": "caddy",
         "granian": "granian"}

Figures = dict[str, float]  # "S1:nginx" -> median; -1 when not measured or in error


@dataclass
class Target:
    """One condition on hyper2web's figure; ``short`` names it in the met column."""

    label: str
    short: str
    check: Callable[[Figures], bool]


def faster(key: str, peer: str, factor: float, shown: str = "") -> Target:
    """hyper2web's figure at least ``factor`` times the peer's (higher is better)."""

    def check(figures: Figures) -> bool:
        ours, theirs = figures[f"{key}:hyper2web"], figures[f"{key}:{peer}"]
        return theirs >= 0 and ours >= factor * theirs

    return Target(f">= {factor:.1f}x {shown or peer}", peer, check)


def at_least(key: str, value: float, unit: str) -> Target:
    """hyper2web's figure at least an absolute ``value``."""
    return Target(f">= {value:,g} {unit}", f"{value:,g} {unit}",
                  lambda figures: figures[f"{key}:hyper2web"] >= value)


def at_most(key: str, value: float, unit: str) -> Target:
    """hyper2web's figure at most ``value`` (KB, ms: lower is better), and measured."""
    return Target(f"<= {value:,g} {unit}", f"<= {value:,g} {unit}",
                  lambda figures: 0 <= figures[f"{key}:hyper2web"] <= value)


@dataclass
class Scenario:
    key: str
    title: str
    unit: str
    args: list[str] = field(default_factory=list)  # h2load options
    path: str = ""
    headers: Callable[[str], list[str]] | None = None  # server name -> h2load options
    expect: str = "2xx"  # the status class every response must have
    figure: Callable[[dict[str, float]], float] = lambda run: run["rps"]
    runs: int = 1
    higher_is_better: bool = True
    targets: list[Target] = field(default_factory=list)
    skip: tuple[str, ...] = ()  # servers not measured here (shown as "-"), and why: README
    h1: bool = False  # over HTTP/1.1: a server's HTTP/1.1 instance answers, if it has one

    @property
    def target(self) -> str:
        return ", ".join(target.label for target in self.targets)

    def met(self, figures: Figures) -> str:
        """"yes", "NO (the unmet targets)", or "" when there is no target."""
        if not self.targets:
            return ""
        missed = [target.short for target in self.targets if not target.check(figures)]
        return f"NO ({', '.join(missed)})" if missed else "yes"


ETAGS: dict[str, str] = {}  # server name -> the etag of benchsite.SCRIPT, for S9
TIMED = ["-D", str(DURATION)]
MANY = [*TIMED, "-c", "10", "-m", "10"]

SCENARIOS = [
    Scenario("S1", "small file (2 KB html)", "req/s", MANY, benchsite.PAGE, targets=[
        faster("S1", "hypercorn", 6), at_least("S1", 10_000, "req/s"),
        faster("S1", "caddy", 1.5), faster("S1", "granian", 1.2), faster("S1", "nginx", 0.5)]),
    Scenario("S2", "30 KB js", "req/s", MANY, benchsite.SCRIPT),
    Scenario("S3", "1 MB file", "MB/s", [*TIMED, "-c", "4", "-m", "1"], benchsite.LARGE,
             figure=lambda run: run["rps"] * benchsite.LARGE_SIZE / 1e6,
             targets=[faster("S3", "hypercorn", 1.5), faster("S3", "granian", 1.0)]),
    # S4 as the reference figures measure it (nginx ~19,500 req/s there): 100
    # connections opened inside the timed window, handshakes included, one stream at a time.
    Scenario("S4", "100 fresh connections, one stream each", "req/s",
             [*TIMED, "-c", "100", "-m", "1"], benchsite.PAGE,
             targets=[faster("S4", "hypercorn", 3)]),
    # The handshake alone: each of the 100 connections carries a single request.
    Scenario("S4h", "100 fresh connections, one request each (handshake-bound)", "req/s",
             ["-n", "100", "-c", "100", "-m", "1"], benchsite.PAGE, runs=HANDSHAKE_RUNS,
             targets=[faster("S4h", "granian", 1.0)]),
    Scenario("S5", f"module page: 1 html + {benchsite.MODULES} ES modules, 1 connection",
             "req/s", [*TIMED, "-c", "1", "-m", "100"],
             targets=[faster("S5", "hypercorn", 6), faster("S5", "granian", 1.2)]),
    Scenario("S6", "API route returning JSON", "req/s", MANY, benchsite.API,
             targets=[faster("S6", "hypercorn", 4)]),
    # granian's static files carry no etag (nothing to revalidate): see README.
    Scenario("S9", "304 revalidation (if-none-match, 30 KB js)", "req/s", MANY,
             benchsite.SCRIPT, expect="3xx",
             headers=lambda name: ["-H", f"if-none-match: {ETAGS[name]}"], skip=("granian",)),
    # HTTP/1.1 clients (curl --http1.1, urllib, test tools): keep-alive, no pipelining.
    Scenario("S10", "small file (2 KB html) over HTTP/1.1 (granian: --http 1)", "req/s",
             [*TIMED, "--h1", "-c", "10", "-m", "1"], benchsite.PAGE, h1=True,
             # hypercorn's HTTP/1.1 status line has no reason phrase ("HTTP/1.1 200 "),
             # which h2load counts as a failed request: no figure to compare.
             skip=("hypercorn",),
             targets=[faster("S10", "granian", 1.0, "granian --http 1")]),
]
S7 = Scenario("S7", f"RSS per idle h2 connection ({IDLE_CONNECTIONS} open)", "KB/conn",
              higher_is_better=False, targets=[at_most("S7", 20, "KB")])
S8 = Scenario("S8", "start-up: launch to first 200", "ms", higher_is_better=False,
              targets=[at_most("S8", 100, "ms")])
ORDER = ["S1", "S2", "S3", "S4", "S4h", "S5", "S6", "S7", "S8", "S9", "S10"]
BY_KEY = {scenario.key: scenario for scenario in [*SCENARIOS, S7, S8]}

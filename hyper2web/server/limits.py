"""Budgets that make floods cost the attacker, not the server.

A dev server is reachable from every page the developer opens, often from a LAN or a
tunnel too. Each budget here is a plain counter, cheap enough to touch on every frame:

- ``RateBudget``: events per second on one connection (streams reset by the client, frames
  that carry no request forward). Past it the connection gets GOAWAY ENHANCE_YOUR_CALM, as
  nginx and h2o do against "rapid reset" (CVE-2023-44487) and control-frame floods.
- ``BodyBudget``: request body bytes buffered across every connection of the process, so
  many connections each holding an unfinished upload cannot take the machine's memory.
- ``raise_open_files_limit``: the process may hold as many sockets as the system allows;
  the listener keeps ``FD_RESERVE`` of them free of connections.
"""

from __future__ import annotations

import time


class RateBudget:
    """At most ``limit`` events within any window of ``period`` seconds, roughly.

    A fixed window restarted by the first event after it ends: one subtraction and one
    comparison per event, where a sliding log would keep a timestamp per event.
    """

    __slots__ = ("limit", "period", "_since", "_count", "total")

    def __init__(self, limit: int, period: float = 1.0) -> None:
        self.limit = limit
        self.period = period
        self._since = 0.0
        self._count = 0
        self.total = 0  # every event seen, for the connection's summary line

    def spend(self, now: float | None = None) -> bool:
        """Count one event; False once the budget of the current window is exceeded."""
        if now is None:
            now = time.monotonic()
        if now - self._since > self.period:
            self._since = now
            self._count = 0
        self._count += 1
        self.total += 1
        return self._count <= self.limit


class FloodGuard:
    """One connection's budgets: streams reset a second (by the client, or by us for a
    malformed request) and frames a second that carry no request forward. Once either is
    overspent, ``reason`` says why the peer is told ENHANCE_YOUR_CALM."""

    __slots__ = ("resets", "idle", "reason")

    def __init__(self, resets_per_second: int, idle_frames_per_second: int) -> None:
        self.resets = RateBudget(resets_per_second)
        self.idle = RateBudget(idle_frames_per_second)
        self.reason: str | None = None

    def reset(self, now: float, by_client: bool) -> bool:
        """Count one reset; True for the first few of a connection, worth a log line."""
        if not self.resets.spend(now) and self.reason is None:
            self.reason = (f"{self.resets.total} streams reset"
                           f"{' by the client' if by_client else ''}, over "
                           f"{self.resets.limit} a second"
                           f"{' (rapid reset)' if by_client else ''}")
        return self.resets.total <= 3

    def idle_frame(self, now: float) -> None:
        """Count a frame that carries no request forward."""
        if not self.idle.spend(now) and self.reason is None:
            self.reason = (f"over {self.idle.limit} frames a second that carry no request "
                           "(PING, SETTINGS, PRIORITY, empty DATA, WINDOW_UPDATE)")


class BodyBudget:
    """Request body bytes buffered by all connections of one process.

    Shared through the ``ConnectionConfig`` every connection of a server holds; curio runs
    them in one thread, so plain integer updates are safe.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def fits(self, size: int) -> bool:
        return self.used + size <= self.limit


# Descriptors kept free of connections: files being sent, the watcher, logs, workers' pipes.
FD_RESERVE = 64


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one; returns the soft limit in force.

    Many systems start processes at 1,024 descriptors while allowing far more: a page of
    300 modules opened in a few tabs, or a load test, would otherwise run out.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20

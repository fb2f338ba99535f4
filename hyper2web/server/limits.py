"""Budgets that make floods cost the attacker, not the server.

A dev server is reachable from every page the developer opens, often from a LAN or a
tunnel too. Each budget here is a plain counter, cheap enough to touch on every frame:

- ``RateBudget``: events per second on one connection (streams reset by the client, frames
  that carry no request forward). Past it the connection gets GOAWAY ENHANCE_YOUR_CALM, as
  nginx and h2o do against "rapid reset" (CVE-2023-44487) and control-frame floods.
- ``BodyBudget``: request body bytes buffered across every connection of the process, so
  many connections each holding an unfinished upload cannot take the machine's memory.
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

"""What a protocol makes of a tuple of prepared header fields, made once per tuple.

A cached file's fields are a tuple built once per file version (``FileEntry.headers``)
and answered again and again. What a response needs of them (HTTP/2's header block and
its HPACK bytes, HTTP/1.1's h11 event) is made on first use and kept here, keyed by the
tuple's identity. Each entry holds the tuple it was made for: while kept, no other tuple
can have its id, and ``is`` tells a stale entry from a live one. Bounded: the kept
entries start over when full.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class PerTuple:
    """A bounded map from (a tuple, by identity, and a small key) to what was made of it."""

    __slots__ = ("limit", "kept")

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self.kept: dict[tuple[int, Any], tuple[tuple[Any, ...], Any]] = {}

    def get(self, fields: tuple[Any, ...], key: Any = None) -> Any:
        """What was made of ``fields`` (for ``key``), or None."""
        found = self.kept.get((id(fields), key))
        return found[1] if found is not None and found[0] is fields else None

    def put(self, fields: tuple[Any, ...], made: Any, key: Any = None) -> Any:
        if len(self.kept) >= self.limit:
            self.kept.clear()
        self.kept[(id(fields), key)] = (fields, made)
        return made

    def make(self, fields: tuple[Any, ...], key: Any,
             maker: Callable[[Any, tuple[Any, ...]], Any]) -> Any:
        """What ``maker(key, fields)`` made of them before, else made now and kept."""
        found = self.get(fields, key)
        return self.put(fields, maker(key, fields), key) if found is None else found

    def __len__(self) -> int:
        return len(self.kept)

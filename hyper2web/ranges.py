"""Byte ranges (RFC 9110 section 14): parse ``range``, check ``if-range``, build multipart.

A ``<video>`` seeks with ranges, and a download resumes with them; both need exact
``content-range`` arithmetic, which lives here alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

MAX_RANGES = 16


class Unsatisfiable(Exception):
    """No requested range overlaps the representation: answer 416."""


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """Inclusive ``(first, last)`` byte positions for a ``range`` header, or None to ignore it.

    None means: no header, another unit, bad syntax, or too many/overlapping ranges that
    would cost more than the whole file; the server then sends the whole file (RFC 9110
    allows ignoring ``range``). Raises ``Unsatisfiable`` when every range misses the file.
    """
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = [p.strip() for p in spec.split(",")]
    if not parts or len(parts) > MAX_RANGES:
        return None
    result: list[tuple[int, int]] = []
    for part in parts:
        first, dash, last = part.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
            return None
        if not first:
            if not last:
                return None
            length = int(last)  # suffix: the last N bytes
            if length == 0 or size == 0:
                continue
            result.append((max(0, size - length), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None
        if start >= size:
            continue
        result.append((start, min(end, size - 1)))
    if not result:
        raise Unsatisfiable
    if len(result) > 1 and sum(b - a + 1 for a, b in result) > size:
        return None
    return result


def if_range_matches(header: str | None, etag: str, last_modified: str) -> bool:
    """True when ``if-range`` is absent or still names this version of the file."""
    if header is None:
        return True
    value = header.strip()
    if value.startswith("W/"):
        return False  # weak validators never allow a range (RFC 9110 13.1.5)
    if value.startswith('"'):
        return value == etag
    return value == last_modified


def content_range(first: int, last: int, size: int) -> str:
    return f"bytes {first}-{last}/{size}"


class Multipart:
    """A ``multipart/byteranges`` body: its headers are known before any byte is read."""

    def __init__(self, ranges: list[tuple[int, int]], size: int, content_type: str) -> None:
        self.boundary = os.urandom(12).hex()
        self.ranges = ranges
        self.heads = [
            (f"\r\n--{self.boundary}\r\ncontent-type: {content_type}\r\n"
             f"content-range: {content_range(a, b, size)}\r\n\r\n").encode()
            for a, b in ranges
        ]
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/byteranges; boundary={self.boundary}"

    @property
    def length(self) -> int:
        return (sum(len(h) for h in self.heads) + len(self.tail)
                + sum(b - a + 1 for a, b in self.ranges))

    def pieces(self) -> Iterator[tuple[bytes, tuple[int, int] | None]]:
        """``(bytes, None)`` for boundaries, ``(b'', (first, last))`` for file slices."""
        for head, span in zip(self.heads, self.ranges, strict=True):
            yield head, None
            yield b"", span
        yield self.tail, None

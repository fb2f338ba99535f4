"""Requests that send a ``:path`` exactly as given, through the suite's raw HTTP/2 client.

httpx (like browsers) normalizes ``..`` and ``.`` segments before sending, so a traversal
attempt never reaches the server through it; ``H2Client(normalize=False)`` sends the header
block with h2's outbound normalization and validation turned off.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tests.server.h2client import h2_request


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(port: int, path: str, method: str = "GET", *, host: str = "127.0.0.1",
                headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> RawResponse:
    """One request on a fresh connection, the path exactly as given; returns once the
    response stream has ended."""
    result = h2_request(port, path, method, headers, host=host, body=body or None,
                        normalize=False)
    if result.reset is not None:
        raise ConnectionError(f"stream reset ({result.reset}) for {path!r}")
    fields = {name: value for name, value in result.headers if not name.startswith(":")}
    return RawResponse(result.status or 0, fields, result.body)

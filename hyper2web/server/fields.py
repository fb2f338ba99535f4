"""Received header fields: RFC 9113 checks and decoding in one pass, fields seen before free.

h2 can check received fields itself, in a chain of generators (one per rule) followed by
decoding to ``str``; for a small request that chain cost more than the rest of serving it.
Here one loop checks each field, decodes it and builds the request's header dict. A field
that passed (``accept: */*``, the same ``user-agent`` on every request) is remembered with
its decoded form, so a repeated field costs one dict lookup.

A malformed request is a stream error (RFC 9113 section 8.1.1): ``MalformedRequest`` tells
the connection to reset that stream with PROTOCOL_ERROR; the connection goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# RFC 9113 section 8.2.1: bytes a field name must not contain (a colon is checked apart).
_BAD_NAME_BYTE = re.compile(rb"[\x00-\x20A-Z\x7f-\xff]")
_EDGE_SPACE = (0x20, 0x09)
# Section 8.2.2: connection-specific fields.
_CONNECTION_SPECIFIC = frozenset({b"connection", b"proxy-connection", b"keep-alive",
                                  b"transfer-encoding", b"upgrade"})
# Section 8.3.1, and RFC 8441's :protocol for extended CONNECT (WebSockets over HTTP/2).
REQUEST_PSEUDO = frozenset({":method", ":scheme", ":authority", ":path", ":protocol"})

MAX_REMEMBERED = 4096
MAX_REMEMBERED_FIELD = 512  # bytes of name + value
# Credentials are checked every time rather than kept in memory beyond their request.
_NOT_REMEMBERED = frozenset({b"cookie", b"authorization", b"proxy-authorization"})
_checked: dict[tuple[bytes, bytes], tuple[str, str]] = {}


class MalformedRequest(Exception):
    """The request's header block breaks RFC 9113: reset its stream (PROTOCOL_ERROR)."""


def check_field(name: bytes, value: bytes) -> tuple[str, str]:
    """One field's checks (section 8.2); its name and value as ``str``."""
    if not name:
        raise MalformedRequest("empty field name")
    if _BAD_NAME_BYTE.search(name) or name.find(b":", 1) != -1:
        raise MalformedRequest(f"invalid field name {name!r}")
    if value and (b"\x00" in value or b"\n" in value or b"\r" in value
                  or value[0] in _EDGE_SPACE or value[-1] in _EDGE_SPACE):
        raise MalformedRequest(f"invalid value for {name.decode('ascii')}")
    if name in _CONNECTION_SPECIFIC:
        raise MalformedRequest(f"connection-specific field {name.decode('ascii')}")
    if name == b"te" and value.lower() != b"trailers":
        raise MalformedRequest("te other than 'trailers'")
    key = name.decode("ascii")  # every byte is 0x21-0x7e here
    if key[0] == ":" and key not in REQUEST_PSEUDO:
        raise MalformedRequest(f"unknown pseudo-header field {key}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")  # obs-text: kept byte for byte
    return key, text


def _checked_field(field: Any) -> tuple[str, str]:
    known = _checked.get(field)
    if known is None:
        known = check_field(field[0], field[1])
        if len(field[0]) + len(field[1]) <= MAX_REMEMBERED_FIELD \
                and field[0] not in _NOT_REMEMBERED:
            if len(_checked) >= MAX_REMEMBERED:
                _checked.clear()
            _checked[(field[0], field[1])] = known
    return known


def request_headers(fields: Iterable[Any]) -> dict[str, str]:
    """A request's ``(bytes, bytes)`` fields -> header dict by lower-case name.

    Repeated fields are joined with ``, `` (``cookie`` with ``; ``, section 8.2.3).
    ``MalformedRequest`` says why the block is malformed.
    """
    headers: dict[str, str] = {}
    regular = False
    for field in fields:
        key, text = _checked_field(field)
        if key[0] == ":":
            if regular:
                raise MalformedRequest(f"pseudo-header field {key} after a regular field")
            if key in headers:
                raise MalformedRequest(f"more than one {key}")
            headers[key] = text
            continue
        regular = True
        if key in headers:
            if key == "host":
                raise MalformedRequest("more than one host field")
            headers[key] = headers[key] + ("; " if key == "cookie" else ", ") + text
        else:
            headers[key] = text
    method = headers.get(":method")
    if method is None:
        raise MalformedRequest("no :method")
    if ":protocol" in headers:
        # Extended CONNECT (RFC 8441 section 4): a tunnel for the named protocol.
        if method != "CONNECT":
            raise MalformedRequest(":protocol on a request other than CONNECT")
        if ":scheme" not in headers or not headers.get(":path"):
            raise MalformedRequest("extended CONNECT without :scheme or :path")
    elif method == "CONNECT":
        if ":scheme" in headers or ":path" in headers:
            raise MalformedRequest("CONNECT with :scheme or :path")
    elif ":scheme" not in headers or not headers.get(":path"):
        raise MalformedRequest("no :scheme, or no or an empty :path")
    authority = headers.get(":authority")
    host = headers.get("host")
    if authority is None and host is None:
        raise MalformedRequest("neither :authority nor host")
    if authority is not None and host is not None and authority != host:
        raise MalformedRequest(":authority and host differ")
    return headers


def check_trailers(fields: Iterable[Any]) -> None:
    """Trailer fields: the same field rules, and no pseudo-header field (section 8.1)."""
    for field in fields:
        key, _ = _checked_field(field)
        if key[0] == ":":
            raise MalformedRequest(f"pseudo-header field {key} in trailers")

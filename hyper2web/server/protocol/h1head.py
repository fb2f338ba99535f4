"""HTTP/1.1 heads for ``h11proto``: requests read into the handler's dict, responses
made ready once per prepared tuple.

``read_head`` turns h11's parsed request into the header dict every handler sees.
``plain_request`` reads the commonest request of all without h11: a whole GET or HEAD
head with a single Host and no field that changes framing or the connection. It accepts
only heads h11 parses the same way (h11's own grammar, matched line by line, and only
``CRLF`` line ends), so what it gives is exactly what h11 would have given; anything else
is left to h11. ``response_head`` is the bytes h11 writes for a prepared response that
needs none of h11's framing decisions: a keep-alive answer with a content-length.
"""

from __future__ import annotations

import http
import re
from urllib.parse import urlsplit

import h11

from ..prepared import PerTuple

MAX_HEAD = 64 * 1024  # request line and header fields; more gets 431
PLAIN_MAX = 8 * 1024  # a longer head is left to h11, which checks its size on the way

# h11's grammar (RFC 9112 sections 3 and 5): a token, OWS, a field value of visible
# characters and obs-text with inner spaces and tabs, OWS; the request line is narrowed
# to GET or HEAD, an origin-form target and HTTP/1.1.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*")
_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/[\x21-\x7e]*) HTTP/1\.1")
# Fields after which h11 frames a body, expects, switches protocols or closes: such a
# request is h11's to read.
_NOT_PLAIN = frozenset({b"content-length", b"transfer-encoding", b"connection", b"upgrade",
                        b"expect"})


def plain_request(buffer: bytes) -> tuple[dict[str, str], int] | None:
    """The header dict of the plain request at the start of ``buffer`` and the size of its
    head, or None: not whole yet, or not plain (h11 reads it then)."""
    end = buffer.find(b"\r\n\r\n", 0, PLAIN_MAX)
    if end < 0:
        return None
    lines = buffer[:end].split(b"\r\n")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        return None
    headers = {":method": line[1].decode(), ":path": line[2].decode(), ":scheme": "https"}
    repeated: dict[str, list[str]] = {}
    hosts = 0
    match = _FIELD.fullmatch
    for raw in lines[1:]:
        field = match(raw)
        if field is None:
            return None
        lowered = field[1].lower()
        if lowered in _NOT_PLAIN:
            return None
        name = lowered.decode()
        value = field[2].decode("latin-1")
        if name == "host":
            hosts += 1
            headers[":authority"] = value
        if name in headers:
            repeated.setdefault(name, [headers[name]]).append(value)
        else:
            headers[name] = value
    if hosts != 1:
        return None  # h11 refuses none or several (400)
    _join(headers, repeated)
    return headers, end + 4


def _join(headers: dict[str, str], repeated: dict[str, list[str]]) -> None:
    """Repeated fields joined as RFC 9110 allows (``cookie`` with ``; ``, as HTTP/2
    does), once, at the end: joining as they come would copy a long value again for every
    repeat."""
    for name, values in repeated.items():
        headers[name] = ("; " if name == "cookie" else ", ").join(values)


def read_head(event: h11.Request) -> tuple[dict[str, str], bool, tuple[int, str] | None]:
    """h11's request in one pass: the header dict every handler sees (HTTP/2 pseudo-fields
    included), whether a body is framed, and what h11 lets through but this server refuses.

    Refused, as ``(status, why)``: a head whose whole size is over ``MAX_HEAD`` (h11
    bounds only a head still arriving; the reading stops there), and ``content-length``
    beside ``transfer-encoding``: RFC 9112 section 6.1 lets a server refuse it, and two
    servers framing it differently is how requests are smuggled.
    """
    raw_target = event.target
    target = raw_target.decode("latin-1")
    headers: dict[str, str] = {":method": event.method.decode("ascii"), ":path": target,
                               ":scheme": "https"}
    absolute = not target.startswith("/") and "://" in target
    if absolute:
        # The absolute form (RFC 9112 section 3.2.2), as proxies send it: its authority
        # wins over the Host field.
        parts = urlsplit(target)
        headers[":path"] = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers[":authority"] = parts.netloc
    size = len(raw_target)
    length = chunked = False
    repeated: dict[str, list[str]] = {}
    for raw_name, raw_value in event.headers:
        size += len(raw_name) + len(raw_value) + 4
        if size > MAX_HEAD:
            return headers, False, (431, "request header fields too large")
        name = raw_name.decode("ascii")
        value = raw_value.decode("latin-1")
        if name == "host":
            if not absolute:
                headers[":authority"] = value
        elif name == "content-length":
            length = True
        elif name == "transfer-encoding":
            chunked = True
        if name in headers:
            repeated.setdefault(name, [headers[name]]).append(value)
        else:
            headers[name] = value
    _join(headers, repeated)
    refused = (400, "content-length and transfer-encoding together") \
        if length and chunked else None
    return headers, length or chunked, refused


_PHRASES: dict[int, bytes] = {}


def reason_phrase(status: int) -> bytes:
    """``OK``, ``Not Found``...: HTTP/1.1 status lines carry one (HTTP/2 has none)."""
    phrase = _PHRASES.get(status)
    if phrase is None:
        try:
            phrase = http.HTTPStatus(status).phrase.encode()
        except ValueError:
            phrase = b""
        _PHRASES[status] = phrase
    return phrase


_prepared = PerTuple()  # (status, fields) -> h11's event (``prepared_response``)
_heads = PerTuple()  # (status, fields) -> ``response_head``'s answer


def _response_event(status: int, fields: tuple[tuple[str, str], ...]) -> h11.Response:
    return h11.Response(status_code=status, headers=list(fields), reason=reason_phrase(status))


def prepared_response(status: int, fields: tuple[tuple[str, str], ...]) -> h11.Response:
    """h11's event for a response whose fields are a tuple built once (a cached file's):
    h11 checks every field of a new event with regular expressions, a third of what h11
    costs a small response; kept (``prepared.PerTuple``), they are checked once per tuple.
    """
    event: h11.Response = _prepared.make(fields, status, _response_event)
    return event


def _head_bytes(status: int, fields: tuple[tuple[str, str], ...]) -> tuple[bytes, int] | bool:
    event = prepared_response(status, fields)  # h11 checks the fields (or raises)
    items = event.headers.raw_items()
    names = [name.lower() for name, _ in items]
    bodiless = status in (204, 304)  # h11 frames these as empty whatever the fields say
    if status < 200 or b"transfer-encoding" in names or b"connection" in names \
            or not (bodiless or names.count(b"content-length") == 1):
        return False  # h11 would add or change framing or connection fields
    length = 0 if bodiless else int(items[names.index(b"content-length")][1])
    # h11 writes a host field first, then the others in order (``write_headers``).
    ordered = [item for item, name in zip(items, names, strict=True) if name == b"host"]
    ordered += [item for item, name in zip(items, names, strict=True) if name != b"host"]
    head = b"HTTP/1.1 %d %s\r\n" % (status, event.reason) \
        + b"".join(b"%s: %s\r\n" % item for item in ordered) + b"\r\n"
    return head, length


def response_head(status: int, fields: tuple[tuple[str, str], ...]) -> tuple[bytes, int] | None:
    """What h11 writes for this prepared response to a plain HTTP/1.1 request, and the
    size of its body (0 for a 204 or 304); None when h11 would decide something about it
    (no content-length, a ``connection`` or ``transfer-encoding`` field, a 1xx)."""
    made = _heads.make(fields, status, _head_bytes)
    return made or None

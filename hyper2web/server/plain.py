"""Plain HTTP on the HTTPS port: a redirect to the same URL on https, never a reset.

Typing ``localhost:5000`` (or ``http://localhost:5000/``) is the most common first
mistake; browsers then get a connection reset, which says nothing. A TLS connection starts
with a handshake record (first byte 0x16); anything else is read as an HTTP/1.x request
head and answered ``308 Permanent Redirect`` to ``https://`` + the same host, path and
query, with a one-line page holding the link.
"""

from __future__ import annotations

import html
import logging
import re
import socket
from typing import Any

from .._curio import curio

log = logging.getLogger("hyper2web.server")

TLS_HANDSHAKE = 0x16
# A Host field that is a name, an IPv4 address or a bracketed IPv6 one, with an optional
# port: anything else (``a@b``, a path) is not put in a Location.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
MAX_HEAD = 16 * 1024


async def first_byte(sock: Any, timeout: float) -> int | None:
    """The first byte the client sent, left in the socket; None if it sent none in time."""
    async with curio.ignore_after(timeout):
        data = await sock.recv(1, socket.MSG_PEEK)
        return data[0] if data else None
    return None


async def redirect_to_https(sock: Any, where: str, fallback_host: str, port: int,
                            timeout: float) -> None:
    """Read one plain HTTP request head and answer 308 to its https URL.

    The host comes from the request's Host field (the name the user typed), with this
    server's port when it names none: the https URL is on the same port.
    """
    import h11  # here: start-up does not pay for it

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    request = None
    async with curio.ignore_after(timeout):
        while request is None:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                break
            if event is h11.NEED_DATA:
                data = await sock.recv(4096)
                if not data:
                    break
                conn.receive_data(data)
            elif type(event) is h11.Request:
                request = event
            else:
                break
    if request is None:
        log.info("%s: neither TLS nor an HTTP request on the HTTPS port; closing", where)
        return
    host = fallback_host
    for name, value in request.headers:
        if name == b"host" and _HOST.fullmatch(value.decode("latin-1")):
            host = value.decode("latin-1")
            if not host.rsplit("]", 1)[-1].count(":") and port != 443:
                host = f"{host}:{port}"
    target = request.target.decode("latin-1")
    if not target.startswith("/"):
        target = "/"
    location = f"https://{host}{target}"
    body = (f'<!doctype html><meta charset=utf-8><title>Use HTTPS</title>'
            f'<p>This server speaks HTTPS: <a href="{html.escape(location, quote=True)}">'
            f'{html.escape(location)}</a></p>\n').encode()
    head = h11.Response(status_code=308, headers=[
        ("location", location), ("content-type", "text/html; charset=utf-8"),
        ("content-length", str(len(body))), ("connection", "close")])
    out = (conn.send(head) or b"") + (conn.send(h11.Data(data=body)) or b"") + \
        (conn.send(h11.EndOfMessage()) or b"")
    try:
        await sock.sendall(out)
    except OSError:
        return
    log.info("%s: plain HTTP on the HTTPS port: 308 to %s", where, location)

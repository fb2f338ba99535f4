"""Forwarding a path prefix to the user's own backend (``serve --proxy /api=URL``).

The front end keeps HTTPS and HTTP/2; the backend is spoken to over HTTP/1.1
(``server.upstream``). As vite and caddy do, the path is passed unchanged; a target URL
with a path replaces the prefix, as nginx's ``proxy_pass`` does (``/api=http://host:8000/``
turns ``/api/users`` into ``/users``). Bodies stream both ways: an upload is not buffered,
and a response is relayed as it arrives. Hop-by-hop fields are dropped, ``X-Forwarded-*``
and ``Forwarded`` added, ``Host`` kept (``change_origin`` sends the backend's own), and a
``Location`` pointing at the backend is rewritten to point here (``Proxy.pointing_here``):
as nginx's default ``proxy_redirect`` does for an absolute URL under the target URL, and
further than nginx for the other URLs at the backend and, with a path-replacing target,
for path-absolute ones under the target's path.
"""

from __future__ import annotations

import base64
import gzip
import logging
import os
import zlib

from ._curio import curio
from .exceptions import HTTPError, StreamClosed
from .http import Request, Response
from .server.protocol.ws import accept_headers, handshake_error
from .server.upstream import (
    HEAD_TIMEOUT,
    Tunnel,
    Upstream,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)
from .static import send_error_page

log = logging.getLogger("hyper2web")

# RFC 9110 section 7.6.1, and the fields a connection (not a message) carries; the fields a
# message's own ``Connection`` names go too (``hop_by_hop``). ``TE: trailers`` is dropped as
# well: it would promise the backend that its trailer fields reach the browser, and they do
# not (the response API has no trailers to relay them with).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding",
                        "upgrade", "host"})


def hop_by_hop(connection: str) -> frozenset[str]:
    """The fields not to pass on: ``HOP_BY_HOP`` and those ``connection`` (the value of a
    message's ``Connection`` field) names, which the sender meant for the next hop only."""
    named = {token.strip().lower() for token in connection.split(",")}
    named.discard("")
    return HOP_BY_HOP | named if named else HOP_BY_HOP


class Proxy:
    """One prefix and the backend it goes to."""

    def __init__(self, prefix: str, url: str, *, change_origin: bool = False,
                 verify: bool = True, timeout: float = HEAD_TIMEOUT,
                 inject: bool = True) -> None:
        if not prefix.startswith("/"):
            prefix = "/" + prefix
        self.prefix = prefix.rstrip("/") or "/"
        self.upstream = Upstream(url, verify=verify, head_timeout=timeout)
        self.change_origin = change_origin
        self.inject = inject  # HTML pages get the live reload client (when reload is on)

    def __repr__(self) -> str:
        return f"Proxy({self.prefix!r} -> {self.upstream.url!r})"

    def matches(self, path: str) -> bool:
        prefix = self.prefix
        return prefix == "/" or path == prefix or path.startswith(prefix + "/")

    def target(self, raw_path: str) -> str:
        """The request target for the backend (see the module docstring)."""
        base = self.upstream.path
        if not base:
            return raw_path
        rest = raw_path[len(self.prefix):] if self.prefix != "/" else raw_path
        if not rest.startswith(("/", "?")):
            rest = "/" + rest
        return base.rstrip("/") + rest if rest.startswith("/") else base + rest

    def pointing_here(self, value: str, here: str) -> str:
        """A ``Location`` or ``Content-Location`` from the backend, as the browser must see
        it, ``here`` being this server's origin.

        - An absolute URL at the backend's origin gets ``here`` instead. Under a
          path-replacing target's path, the prefix replaces that path (with
          ``/api=http://h/``, ``http://h/users`` becomes ``here/api/users``); otherwise
          the path stays, as a plain target's paths do. nginx's default ``proxy_redirect``
          rewrites only the URLs that begin with the target URL; the other ones at the
          backend are rewritten too, so that the browser stays on this server.
        - With a path-replacing target, a path-absolute reference under the target's path
          gets the prefix in place of that path (``/`` becomes ``/api/``, ``/login``
          ``/api/login``): a backend mounted at ``/`` that redirects to its login page
          means the login page under the prefix here. nginx leaves these unchanged.

        Other hosts, relative references and ``//host`` ones stay as they are.
        """
        origin = self.upstream.origin
        base = self.upstream.path.rstrip("/")  # "" for a plain target, and for "/"
        if value.startswith(origin) and value[len(origin):len(origin) + 1] in ("", "/", "?",
                                                                                  "#"):
            path = value[len(origin):]
            if self.upstream.path and _under(path, base):
                return here + self._prefixed(path[len(base):])
            return here + (path if path.startswith("/") else "/" + path)
        if self.upstream.path and value.startswith("/") and not value.startswith("//") \
                and _under(value, base):
            return self._prefixed(value[len(base):])
        return value

    def _prefixed(self, rest: str) -> str:
        """``rest`` (what follows the target's path) under this proxy's prefix."""
        path = ("" if self.prefix == "/" else self.prefix) + rest
        return path if path.startswith("/") else "/" + path

    def forward_headers(self, request: Request) -> list[tuple[str, str]]:
        host = request.headers.get(":authority") or request.headers.get("host") or ""
        dropped = hop_by_hop(request.headers.get("connection", ""))
        fields = [(name, value) for name, value in request.headers.items()
                  if not name.startswith(":") and name not in dropped
                  and not name.startswith("x-forwarded-") and name != "forwarded"]
        client = request.client[0] if request.client else "unknown"
        earlier = request.headers.get("x-forwarded-for")
        fields.insert(0, ("host", self.upstream.netloc if self.change_origin else host))
        fields += [("x-forwarded-for", f"{earlier}, {client}" if earlier else client),
                   ("x-forwarded-proto", "https"), ("x-forwarded-host", host),
                   ("forwarded", f'for="{client}";proto=https;host="{host}"')]
        return fields

    async def forward(self, request: Request, response: Response) -> None:
        """Send ``request`` to the backend and relay its answer; 502/504 when it fails."""
        upstream = self.upstream
        body = request.stream.source
        if body is None and request.stream.data:
            body = _Once(request.stream.data)
        try:
            answer = await upstream.exchange(request.method, self.target(request.raw_path),
                                             self.forward_headers(request), body)
        except UpstreamError as exc:
            status = 504 if isinstance(exc, UpstreamTimeout) else 502
            log.warning("proxy %s %s -> %s: %s", request.method, request.raw_path,
                        upstream.origin, exc)
            await send_error_page(response, status, f"{upstream.origin}: {exc}")
            return
        except HTTPError as exc:  # the browser's upload stalled (408): its own fault
            await send_error_page(response, exc.status, exc.message)
            return
        try:
            await self._relay(request, response, answer)
        finally:
            await answer.discard()  # unless read to its end: the browser left, or it failed

    async def _relay(self, request: Request, response: Response,
                     answer: UpstreamResponse) -> None:
        """The backend's answer to the browser, as it arrives."""
        upstream = self.upstream
        here = "https://" + (request.headers.get(":authority") or "localhost")
        cookies: list[tuple[str, str]] = []  # each set-cookie stays a field of its own
        dropped = hop_by_hop(", ".join(value for name, value in answer.headers
                                       if name.lower() == "connection"))
        for name, value in answer.headers:
            name = name.lower()
            if name in dropped:
                continue
            if name in ("location", "content-location"):
                value = self.pointing_here(value, here)
            if name == "set-cookie":
                cookies.append((name, value))
            elif name in response.headers:
                response.headers[name] += ", " + value  # RFC 9110 section 5.3
            else:
                response.headers[name] = value
        first = b""
        if self._injects(request, response, answer.status):
            try:
                first = await self._with_script(answer, response, cookies)
            except UpstreamError as exc:
                log.warning("proxy %s %s -> %s: %s mid-body", request.method,
                            request.raw_path, upstream.origin, exc)
                response.headers.clear()
                await send_error_page(response, 502, f"{upstream.origin}: {exc}")
                return
            if response.finished:
                return
        await response.start(answer.status, repeated=cookies)
        try:
            if first:
                await response.write(first)
            while chunk := await answer.read():
                await response.write(chunk)
        except UpstreamError as exc:
            # Too late for a status: the stream is reset (the connection does it for an
            # unfinished response; over HTTP/1.1 it closes), so the browser knows the body
            # is cut.
            log.warning("proxy %s %s -> %s: %s mid-body", request.method, request.raw_path,
                        upstream.origin, exc)
            return
        await response.end()

    async def bridge(self, request: Request, response: Response) -> None:
        """A browser's WebSocket to a proxied path: an HTTP/1.1 Upgrade to the backend,
        then the frames relayed as they are, both ways, until either side closes.

        The frames need no decoding: the browser's are masked as a client's must be, the
        backend's unmasked as a server's are, and an extension the backend accepts (say
        permessage-deflate) is passed on to the browser with its answer.
        """
        error = handshake_error(request.headers)
        if error is not None:
            await send_error_page(response, 400, f"not a WebSocket handshake: {error}")
            return
        upstream = self.upstream
        fields = [(name, value) for name, value in self.forward_headers(request)
                  if name not in ("sec-websocket-key", "sec-websocket-version")]
        fields += [("upgrade", "websocket"), ("connection", "Upgrade"),
                   ("sec-websocket-key", base64.b64encode(os.urandom(16)).decode()),
                   ("sec-websocket-version", "13")]
        try:
            status, head, tunnel = await upstream.open_tunnel(
                self.target(request.raw_path), fields)
        except UpstreamError as exc:
            status = 504 if isinstance(exc, UpstreamTimeout) else 502
            log.warning("proxy WebSocket %s -> %s: %s", request.raw_path, upstream.origin, exc)
            await send_error_page(response, status, f"{upstream.origin}: {exc}")
            return
        if tunnel is None:
            await send_error_page(response, status if status >= 400 else 502,
                                  f"{upstream.origin} did not accept the WebSocket ({status})")
            return
        # From here on the backend's connection is open: it closes whatever happens, the
        # browser having left while the backend answered (its stream then refuses the
        # head) included.
        try:
            chosen = dict((name.lower(), value) for name, value in head)
            response.set_headers(accept_headers(request.headers, None))
            for name in ("sec-websocket-protocol", "sec-websocket-extensions"):
                if name in chosen:
                    response.set_header(name, chosen[name])
            await response.start(101 if request.http_version.startswith("1") else 200)
            async with curio.TaskGroup(wait=any) as pumps:
                await pumps.spawn(_pump_up, request, tunnel)
                await pumps.spawn(_pump_down, tunnel, response)
        finally:
            await tunnel.close()
        if not response.finished:
            try:
                await response.end()
            except StreamClosed:
                pass

    def _injects(self, request: Request, response: Response, status: int) -> bool:
        """Live reload is on and this is an HTML page: it gets the reload client too."""
        return self.inject and response.html_filter is not None \
            and request.method == "GET" \
            and status == 200 \
            and response.headers.get("content-type", "").startswith("text/html")

    async def _with_script(self, answer: UpstreamResponse, response: Response,
                           cookies: list[tuple[str, str]]) -> bytes:
        """Read the page (up to ``MAX_PAGE``) and inject the live reload client, as for
        static files: decoded first when the backend compressed it. Returns what was read
        when it cannot be done (too large, an unknown coding): it goes out as it came.
        ``cookies`` (the backend's ``set-cookie`` fields) go out with the page: a login
        page that sets a session cookie must still set it."""
        pieces, size = [], 0
        while chunk := await answer.read():
            pieces.append(chunk)
            size += len(chunk)
            if size > MAX_PAGE:
                return b"".join(pieces)
        page = b"".join(pieces)
        coding = response.headers.get("content-encoding", "identity").strip().lower()
        decoded = _decode(coding, page)
        if decoded is None:
            return page
        assert response.html_filter is not None
        page = response.html_filter(decoded)
        for name in ("content-encoding", "content-length", "etag", "content-md5"):
            response.headers.pop(name, None)
        response.headers["content-length"] = str(len(page))
        await response.start(answer.status, repeated=cookies)
        await response.write(page, end=True)
        return b""


MAX_PAGE = 16 * 1024 * 1024  # an HTML page larger than this goes out without the script


def _under(path: str, base: str) -> bool:
    """``path`` is ``base`` or below it (``base`` without its trailing slash)."""
    return path.startswith(base) and path[len(base):len(base) + 1] in ("", "/", "?", "#")


def _decode(coding: str, data: bytes) -> bytes | None:
    """``data`` without its content coding; None for a coding not known here."""
    try:
        if coding in ("identity", ""):
            return data
        if coding in ("gzip", "x-gzip"):
            return gzip.decompress(data)
        if coding == "deflate":
            try:
                return zlib.decompress(data)  # RFC 9110's deflate: the zlib format
            except zlib.error:
                return zlib.decompress(data, -zlib.MAX_WBITS)  # raw, as some servers send
        if coding == "br":
            import brotli

            return bytes(brotli.decompress(data))
        if coding == "zstd":
            import zstandard

            return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    except Exception:  # noqa: BLE001 - a broken body is relayed as it came
        return None
    return None


async def _pump_up(request: Request, tunnel: Tunnel) -> None:
    """The browser's frames to the backend, until the browser's side ends."""
    source = request.stream.source
    if source is None:
        return
    try:
        while chunk := await source.read():
            await tunnel.write(chunk)
    except (StreamClosed, UpstreamError):
        pass


async def _pump_down(tunnel: Tunnel, response: Response) -> None:
    """The backend's frames to the browser, until the backend closes."""
    try:
        while data := await tunnel.read():
            await response.write(data)
    except StreamClosed:
        pass


class _Once:
    """A collected request body, as a reader (see ``Upstream.exchange``)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self) -> bytes:
        data, self._data = self._data, b""
        return data

"""``App``: routes, static files and the server, behind the original Hyper2Web API.

    from hyper2web import app

    async def top10_api(request, response):
        await response.send(b"some data")

    app = app.App(port=5000)
    app.get("top10", top10_api)
    app.up()

The App binds ``localhost`` by default, not ``0.0.0.0``: a development server shows work in
progress and runs handler code, so it is reachable from this machine only unless asked
(``address="0.0.0.0"`` still works, e.g. to try a phone on the same network).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .certs import CERT_NAME, KEY_NAME
from .exceptions import HTTPError, StreamClosed
from .http import RESERVED_PREFIX, Request, Response
from .listing import human_size
from .realtime import Realtime
from .reload import LiveReload, inject_script
from .router import WEBSOCKET, Handler, Router, Routes
from .server.listener import Server
from .serving import Serving
from .static import StaticFiles, send_error_page

if TYPE_CHECKING:  # loaded on first use: wsproto and h11 cost start-up time
    from .proxy import Proxy
    from .websocket import WebSocketHandler

log = logging.getLogger("hyper2web")
access_log = logging.getLogger("hyper2web.access")

STATIC_METHODS = ("GET", "HEAD")
MAX_WS_MESSAGE = 1024 * 1024  # bytes of one WebSocket message a client may send (1009 past)


def access_line(method: str, path: str, status: int, size: int, ms: float) -> str:
    """``GET    /app.js 200 1.2 KB 0.4 ms``: one request, as both the CLI and App log it."""
    return f"{method:<6} {path} {status} {human_size(size)} {ms:.1f} ms"


class App(Realtime, Serving):
    """A web application: register handlers, then call ``up()`` to serve.

    ``root`` is the folder of static files, served for every GET/HEAD no route claims when
    ``auto_serve_static_file`` is true; ``default_file`` answers for ``/`` and folders.
    ``certfile``/``keyfile`` name the TLS pair; the defaults are the original names in the
    working directory, created there on first ``up()`` when missing.
    """

    def __init__(
        self,
        address: str = "localhost",
        port: int = 5000,
        root: str | os.PathLike[str] = "./public",
        auto_serve_static_file: bool = True,
        default_file: str = "index.html",
        router: Callable[..., Router] = Router,
        *,
        certfile: str | os.PathLike[str] = CERT_NAME,
        keyfile: str | os.PathLike[str] = KEY_NAME,
        max_body_size: int = 64 * 1024 * 1024,
        max_buffered_bodies: int = 256 * 1024 * 1024,
        max_ws_message: int = MAX_WS_MESSAGE,
        ws_ping_every: float | None = 20.0,
        http1: bool = True,
        spa: bool = False,
        listing: bool = True,
        early_hints: bool = False,
        sw_allowed: str | None = None,
        cors: bool = False,
        headers: Iterable[tuple[str, str]] = (),
        live_reload: LiveReload | None = None,
    ) -> None:
        self.address = address
        self.port = port
        self.root = os.fspath(root)
        self.auto_serve_static_file = auto_serve_static_file
        self.default_file = default_file
        self._router_factory = router
        self.router = router()
        self._collecting: Router | None = None
        self.certfile = os.fspath(certfile)
        self.keyfile = os.fspath(keyfile)
        self.max_body_size = max_body_size
        # Request body bytes all connections of a process may buffer together.
        self.max_buffered_bodies = max_buffered_bodies
        # Bytes of one received WebSocket message; a larger one closes the socket (1009).
        self.max_ws_message = max_ws_message
        # Seconds a WebSocket may stay quiet before the server pings it (None: never).
        self.ws_ping_every = ws_ping_every
        # HTTP/1.1 beside HTTP/2 on the same port, for clients that do not speak h2.
        self.http1 = http1
        self.spa = spa
        self.listing = listing
        self.early_hints = early_hints
        self.sw_allowed = sw_allowed
        self.cors = cors
        defaults = [(name.strip().lower(), str(value)) for name, value in headers]
        if cors:
            defaults.append(("access-control-allow-origin", "*"))
        self.response_defaults = tuple(defaults)
        self.live_reload = live_reload
        # ``(method, path, status, body bytes, ms)`` per request, instead of the
        # ``hyper2web.access`` logger: a plain call is much cheaper than a LogRecord.
        self.access_logger: Callable[[str, str, int, int, float], None] | None = None
        # Files under ``root`` never served, besides the certificate pair (e.g. routes.py).
        self.private_files: list[str] = []
        self.static: StaticFiles | None = None
        # Prefixes forwarded to the user's backend, longest first (``proxy``).
        self.proxies: list[Proxy] = []
        self.server: Server | None = None
        self.state: dict[str, Any] = {}  # see Realtime.state: kept across replace_routes

    # -- registering handlers ----------------------------------------------------------------

    def route(self, method: str, route: str, handler: Handler | None = None, *,
              stream: bool = False) -> Any:
        """Register ``handler`` for ``method`` on ``route``; without a handler, a decorator.

        ``stream=True``: the handler runs as soon as the request's headers arrive and reads
        the body as it comes, ``async for chunk in request.stream``; the client sends only
        as fast as the handler reads, so a 1 GB upload never sits in memory.
        """
        if handler is None:
            def decorator(func: Handler) -> Handler:
                self._registry().register(method, route, func, stream)
                return func
            return decorator
        self._registry().register(method, route, handler, stream)
        return handler

    def _registry(self) -> Router:
        return self._collecting if self._collecting is not None else self.router

    def include(self, routes: Routes) -> None:
        """Register every route declared with ``Routes`` decorators."""
        for method, route, handler in routes.entries:
            self.route(method, route, handler, stream=(method, route) in routes.streamed)

    def replace_routes(self, register: Callable[[App], None]) -> None:
        """Build a new router with ``register(app)`` and swap it in at once.

        Requests keep using the old router until the swap, a single assignment, so requests
        in flight are untouched; if ``register`` raises, the old routes stay. ``state``
        is kept: it is how the new handlers reach what the old ones left (open sockets).
        """
        fresh = self._router_factory()
        self._collecting = fresh
        try:
            register(self)
        finally:
            self._collecting = None
        self.router = fresh

    def get(self, route: str, handler: Handler | None = None) -> Any:
        """Register a GET handler (it answers HEAD too). ``route`` may hold ``{name}``."""
        return self.route("GET", route, handler)

    def post(self, route: str, handler: Handler | None = None, *, stream: bool = False) -> Any:
        """Register a POST handler; the body is in ``request.stream.data`` (or, with
        ``stream=True``, read as it arrives: ``async for chunk in request.stream``)."""
        return self.route("POST", route, handler, stream=stream)

    def put(self, route: str, handler: Handler | None = None, *, stream: bool = False) -> Any:
        """Register a PUT handler (``stream`` as for ``post``)."""
        return self.route("PUT", route, handler, stream=stream)

    def patch(self, route: str, handler: Handler | None = None, *,
              stream: bool = False) -> Any:
        """Register a PATCH handler (``stream`` as for ``post``)."""
        return self.route("PATCH", route, handler, stream=stream)

    def delete(self, route: str, handler: Handler | None = None) -> Any:
        """Register a DELETE handler."""
        return self.route("DELETE", route, handler)

    def proxy(self, prefix: str, url: str, *, change_origin: bool = False,
              verify: bool = True, timeout: float = 60.0, inject: bool = True) -> Proxy:
        """Forward requests under ``prefix`` to the backend at ``url`` (``http://`` or
        ``https://``). Routes come first, then proxies (longest prefix first), then static
        files. The path goes unchanged, unless ``url`` has a path: then it replaces the
        prefix (``proxy("/api", "http://localhost:8000/")``: ``/api/x`` -> ``/x``).
        ``change_origin`` sends the backend its own ``Host``; ``verify=False`` accepts a
        self-signed backend; ``timeout``: seconds for its answer to begin (504 past it);
        ``inject=False`` leaves its HTML pages without the live reload client."""
        from .proxy import Proxy

        entry = Proxy(prefix, url, change_origin=change_origin, verify=verify,
                      timeout=timeout, inject=inject)
        self.proxies.append(entry)
        self.proxies.sort(key=lambda p: len(p.prefix), reverse=True)
        return entry

    def _proxy_for(self, path: str) -> Proxy | None:
        for entry in self.proxies:
            if entry.matches(path):
                return entry
        return None

    def websocket(self, route: str, handler: WebSocketHandler | None = None) -> Any:
        """Register a WebSocket handler, ``async def handler(request, ws)``; without a
        handler, a decorator. Browsers reach it over HTTP/2 (RFC 8441) or HTTP/1.1
        (Upgrade) alike; ``ws`` is a ``hyper2web.websocket.WebSocket``."""
        return self.route(WEBSOCKET, route, handler)

    # -- answering requests ------------------------------------------------------------------

    async def handle(self, request: Request, response: Response) -> None:
        """Answer one request: a route's handler, else a static file, else 404/405."""
        started = time.perf_counter()
        response.defaults = self.response_defaults
        if self.live_reload is not None:
            response.html_filter = inject_script
        try:
            if self.cors and request.method == "OPTIONS" and \
                    "access-control-request-method" in request.headers:
                await self._preflight(request, response)
            else:
                await self._answer(request, response)
        finally:
            method = request.method
            if method == "CONNECT" and request.http_version[0] == "1":
                method = "GET"  # an HTTP/1.1 WebSocket Upgrade: logged as the client sent it
            if self.access_logger is not None:
                self.access_logger(method, request.raw_path, response.status,
                                   response.bytes_sent, (time.perf_counter() - started) * 1000)
            elif access_log.isEnabledFor(logging.INFO):
                access_log.info(access_line(method, request.raw_path, response.status,
                                            response.bytes_sent,
                                            (time.perf_counter() - started) * 1000))

    def early_answer(self, method: str, raw_path: str
                     ) -> tuple[int, tuple[tuple[str, str], ...]] | None:
        """The answer to a request with a body, when its headers already decide it.

        A POST (PUT, ...) that no route takes, to a path static files serve, gets 405
        whatever its body: the server answers before reading it, as nginx does, instead of
        buffering up to ``max_body_size`` first. None: the request goes its normal way.
        """
        if method in STATIC_METHODS or method in ("OPTIONS", "CONNECT"):
            return None
        path = raw_path.partition("?")[0]
        if self.proxies and self._proxy_for(path) is not None:
            return None  # the backend decides
        if path.startswith(RESERVED_PREFIX):
            return 405, (("allow", ", ".join(STATIC_METHODS)), *self.response_defaults)
        if not self.auto_serve_static_file:
            return None
        match = self.router.resolve(method, path)
        if match.handler is not None:
            return None
        allowed = match.allowed or STATIC_METHODS
        return 405, (("allow", ", ".join(allowed)), *self.response_defaults)

    def streams_body(self, method: str, raw_path: str) -> bool:
        """True when the route for this request reads its body as it arrives."""
        if method in STATIC_METHODS:
            return False
        if method == "CONNECT":
            return True  # a tunnel (a WebSocket): its handler runs at once, or it is refused
        path = raw_path.partition("?")[0]
        match = self.router.resolve(method, path)
        if match.handler is None and not match.allowed and self.proxies:
            return self._proxy_for(path) is not None  # streamed to the backend
        return match.stream

    async def _preflight(self, request: Request, response: Response) -> None:
        """Answer a CORS preflight: any origin, the requested method and headers."""
        response.set_header("access-control-allow-methods",
                            request.headers["access-control-request-method"])
        wanted = request.headers.get("access-control-request-headers")
        if wanted:
            response.set_header("access-control-allow-headers", wanted)
        response.set_header("access-control-max-age", "86400")
        response.set_header("vary", "origin, access-control-request-method, "
                                    "access-control-request-headers")
        await response.send_status_code(204)

    def _static_files(self) -> StaticFiles:
        return StaticFiles(self.root, self.default_file, spa=self.spa, listing=self.listing,
                           early_hints=self.early_hints, sw_allowed=self.sw_allowed,
                           html_filter=inject_script if self.live_reload is not None else None,
                           private=[self.certfile, self.keyfile, *self.private_files],
                           versioned_modules=self.live_reload is not None)

    async def _answer(self, request: Request, response: Response) -> None:
        if request.path.startswith(RESERVED_PREFIX):
            # Everything under /__hyper2web__/ belongs to the server, never to the site.
            if self.live_reload is None or not await self.live_reload.handle(request, response):
                await send_error_page(response, 404)
            return
        if request.method == "CONNECT":
            await self._tunnel(request, response)
            return
        match = self.router.resolve(request.method, request.path)
        if match.handler is not None:
            request.para = match.params
            await self._call(match.handler, request, response)
            return
        if match.allowed == (WEBSOCKET,):
            # A WebSocket route asked for with plain HTTP.
            response.set_header("upgrade", "websocket")
            await send_error_page(response, 426, "this URL is a WebSocket")
            return
        if match.allowed:
            allowed = [method for method in match.allowed if method != WEBSOCKET]
            response.set_header("allow", ", ".join(allowed))
            await send_error_page(response, 405)
            return
        if self.proxies:
            proxy = self._proxy_for(request.path)
            if proxy is not None:
                await proxy.forward(request, response)
                return
        if self.static is None and self.auto_serve_static_file:
            self.static = self._static_files()
        if self.static is None:
            await send_error_page(response, 404)
        elif request.method in STATIC_METHODS:
            await self.static.serve(request, response)
        else:
            response.set_header("allow", ", ".join(STATIC_METHODS))
            await send_error_page(response, 405)

    async def _tunnel(self, request: Request, response: Response) -> None:
        """An extended CONNECT (or HTTP/1.1 Upgrade): a WebSocket route, else refused."""
        if request.headers.get(":protocol") != "websocket":
            await send_error_page(response, 501, "only WebSocket tunnels are served")
            return
        match = self.router.resolve(WEBSOCKET, request.path)
        if match.handler is None:
            proxy = self._proxy_for(request.path) if self.proxies else None
            if proxy is not None:
                await proxy.bridge(request, response)
            else:
                await send_error_page(response, 404)
            return
        request.para = match.params
        from .websocket import run_handler as run_websocket

        await run_websocket(match.handler, request, response,
                            self.max_ws_message, self.ws_ping_every)

    async def _call(self, handler: Handler, request: Request, response: Response) -> None:
        """Run a user's handler; its mistakes become a 500 and one log line, never a crash."""
        name = getattr(handler, "__qualname__", repr(handler))
        try:
            await handler(request, response)
        except StreamClosed:
            raise
        except HTTPError as exc:
            if response.started:
                # Too late for a status: an unfinished response is reset by the connection.
                log.error("handler %s raised HTTPError(%d) after its response started, "
                          "on %s %s", name, exc.status, request.method, request.path)
                return
            await send_error_page(response, exc.status, exc.message)
            return
        except Exception:
            log.exception("handler %s failed on %s %s", name, request.method, request.path)
            if response.started:
                # The status is out; an unfinished response is reset by the connection, so
                # the client learns at once that the body is incomplete.
                return
            response.headers.clear()
            await send_error_page(response, 500)
            return
        if not response.started:
            log.error("handler %s returned without sending a response to %s %s", name,
                      request.method, request.path)
            await send_error_page(response, 500, f"{name} sent no response")
        elif not response.finished:
            await response.end()


def _main() -> None:  # pragma: no cover - ``python -m hyper2web.app``
    App().up()


if __name__ == "__main__":  # pragma: no cover
    _main()

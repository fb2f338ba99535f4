"""Routes: (method, pattern) -> handler, with ``{name}`` parameters.

Patterns are compiled once, when they are registered. A path that matches a pattern but not
the method is told apart from a path that matches nothing, so the app answers 405 with an
``allow`` header in the first case and falls through to static files in the second. A GET
route answers HEAD too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

Handler = Callable[..., Awaitable[Any]]

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::(path|str))?}")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# WebSocket handlers are kept beside them under this name: the request that opens one is a
# GET with Upgrade (HTTP/1.1) or an extended CONNECT (HTTP/2), never an ordinary method.
WEBSOCKET = "WEBSOCKET"


_PATH_SAFE = "/:@!$&'()*+,;="
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~/:@!$&'()*+,;=]*")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _canonical_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def canonical(path: str, safe: str = "") -> str:
    """One spelling of a path: what a browser sends for it, escapes in upper case.

    ``/café``, ``/caf%C3%A9`` and ``/caf%c3%a9`` all become ``/caf%C3%A9``; an escaped
    unreserved character (``%74op10``) is decoded. Escaped slashes stay escaped, so
    parameters still split on real slashes only.
    """
    if _PLAIN_PATH.fullmatch(path):
        return path
    path = _BARE_PERCENT.sub("%25", path)
    path = quote(path, safe=_PATH_SAFE + "%" + safe)
    return _ESCAPE.sub(_canonical_escape, path)


def normalize(route: str) -> str:
    """``'top10'`` and ``'/top10'`` name the same route; ``'café'`` is ``'/caf%C3%A9'``."""
    route = route.strip()
    route = route if route.startswith("/") else "/" + route
    return canonical(route, safe="{}")


def compile_route(route: str) -> tuple[re.Pattern[str] | None, list[str]]:
    """A regex for a pattern with parameters, or ``None`` for a plain path.

    ``{name}`` matches one path segment; ``{name:path}`` matches the rest of the path.
    """
    names: list[str] = []
    pos = 0
    parts: list[str] = []
    for match in _PARAM.finditer(route):
        name, kind = match.group(1), match.group(2)
        if name in names:
            raise ValueError(f"route {route!r} uses parameter {{{name}}} twice")
        names.append(name)
        parts.append(re.escape(route[pos:match.start()]))
        parts.append(f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)")
        pos = match.end()
    if not names:
        if "{" in route or "}" in route:
            raise ValueError(f"route {route!r} has a malformed {{parameter}}")
        return None, []
    parts.append(re.escape(route[pos:]))
    return re.compile("^" + "".join(parts) + "$"), names


@dataclass
class _Route:
    pattern: str
    regex: re.Pattern[str] | None
    handlers: dict[str, Handler] = field(default_factory=dict)
    streaming: set[str] = field(default_factory=set)  # methods whose body is streamed


@dataclass(frozen=True)
class Match:
    """What the router found for a request.

    ``handler`` is set when the route and method match; ``allowed`` is set (and ``handler``
    is None) when the path matches but the method does not: a 405. Both empty: no route.
    """

    handler: Handler | None = None
    params: dict[str, str] = field(default_factory=dict)
    allowed: tuple[str, ...] = ()
    pattern: str = ""
    stream: bool = False  # the handler reads the body as it arrives (``stream=True``)


NO_MATCH = Match()


class Router:
    """Holds the routes of an ``App``; users register through the app, not here."""

    def __init__(self, default_get: Any = None) -> None:
        # ``default_get`` is accepted for the original signature; static files are the
        # app's fallback now, not the router's.
        self._plain: dict[str, _Route] = {}
        self._patterns: list[_Route] = []

    def register(self, method: str, route: str, handler: Handler, stream: bool = False) -> None:
        """Register ``handler`` for ``method`` on ``route``; a later call replaces it.

        With ``stream`` the handler runs once the request's headers arrive and reads the
        body with ``async for chunk in request.stream``.
        """
        method = method.upper()
        if method not in METHODS and method != WEBSOCKET:
            raise ValueError(f"unsupported method {method!r}; use one of {', '.join(METHODS)}")
        if not callable(handler):
            raise TypeError(f"handler for {method} {route} is not callable: {handler!r}")
        if stream and method in ("GET", "HEAD"):
            raise ValueError(f"stream=True is for requests with a body, not {method}")
        route = normalize(route)
        regex, _ = compile_route(route)
        entry = self._plain.get(route) if regex is None else next(
            (r for r in self._patterns if r.pattern == route), None)
        if entry is None:
            entry = _Route(route, regex)
            if regex is None:
                self._plain[route] = entry
            else:
                self._patterns.append(entry)
        entry.handlers[method] = handler
        if stream:
            entry.streaming.add(method)
        else:
            entry.streaming.discard(method)

    def resolve(self, method: str, path: str) -> Match:
        """Find the handler for ``method`` on the (still percent-encoded) ``path``."""
        path = canonical(path)
        entry = self._plain.get(path)
        params: dict[str, str] = {}
        if entry is None:
            for candidate in self._patterns:
                assert candidate.regex is not None
                found = candidate.regex.match(path)
                if found:
                    entry = candidate
                    params = {k: unquote(v) for k, v in found.groupdict().items()}
                    break
            else:
                return NO_MATCH
        handler = entry.handlers.get(method)
        if handler is None and method == "HEAD":
            handler = entry.handlers.get("GET")
        if handler is None:
            allowed = set(entry.handlers)
            if "GET" in allowed:
                allowed.add("HEAD")
            return Match(allowed=tuple(sorted(allowed)), pattern=entry.pattern)
        return Match(handler, params, pattern=entry.pattern, stream=method in entry.streaming)

    def find_match(self, path: str) -> tuple[str | None, dict[str, str]]:
        """The original API: ``(pattern, parameters)`` for ``path``, any method."""
        path = normalize(path)
        if path in self._plain:
            return path, {}
        for candidate in self._patterns:
            assert candidate.regex is not None
            found = candidate.regex.match(path)
            if found:
                return candidate.pattern, {k: unquote(v) for k, v in found.groupdict().items()}
        return None, {}

    @property
    def routes(self) -> list[tuple[str, str]]:
        """Every registered ``(method, pattern)``, for listings and tests."""
        entries = list(self._plain.values()) + self._patterns
        return [(m, e.pattern) for e in entries for m in e.handlers]


class Routes:
    """Routes declared with decorators in a module, registered on an app later.

        routes = Routes()

        @routes.get("top10")
        async def top10(request, response): ...

    ``app.include(routes)`` registers them; ``hyper2web serve`` does it for every ``Routes``
    in routes.py.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, Handler]] = []
        self.streamed: set[tuple[str, str]] = set()  # (method, route) with stream=True

    def route(self, method: str, route: str,
              stream: bool = False) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.entries.append((method.upper(), route, handler))
            if stream:
                self.streamed.add((method.upper(), route))
            return handler
        return decorator

    def get(self, route: str) -> Callable[[Handler], Handler]:
        return self.route("GET", route)

    def post(self, route: str, stream: bool = False) -> Callable[[Handler], Handler]:
        return self.route("POST", route, stream)

    def put(self, route: str, stream: bool = False) -> Callable[[Handler], Handler]:
        return self.route("PUT", route, stream)

    def patch(self, route: str, stream: bool = False) -> Callable[[Handler], Handler]:
        return self.route("PATCH", route, stream)

    def delete(self, route: str) -> Callable[[Handler], Handler]:
        return self.route("DELETE", route)

    def websocket(self, route: str) -> Callable[[Any], Any]:
        """A WebSocket handler, ``async def handler(request, ws)`` (see ``App.websocket``)."""
        return self.route(WEBSOCKET, route)

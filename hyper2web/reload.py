"""Live reload: the event hub, the event stream endpoint, the browser client, HTML injection.

Browsers subscribe with ``GET /__hyper2web__/events``, a ``text/event-stream`` that rides on
the page's own HTTP/2 connection (no extra port, no WebSocket). The hub sends:

- ``hello``  first, with the server's boot id: a client that sees a new id after a
  reconnect knows the server restarted and reloads;
- ``reload`` with the URL paths that changed (the client drops them from service-worker
  caches first, so a cache-first worker cannot serve the old file); no paths: everything
  changed (routes.py was loaded again), which also clears the last error;
- ``css``    with the stylesheet paths that changed: the client swaps those ``<link>``s only;
- ``error``  with a message to show as an overlay (e.g. routes.py failed to import).

Changes come from another thread (the file watcher) through ``post``, which is thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from ._curio import curio
from .http import RESERVED_PREFIX, Request, Response

log = logging.getLogger("hyper2web.reload")

EVENTS_PATH = RESERVED_PREFIX + "events"
CLIENT_PATH = RESERVED_PREFIX + "client.js"
HEARTBEAT_SECONDS = 15.0
_CLIENT_JS = (Path(__file__).parent / "assets" / "client.js").read_bytes()
# The client's URL names its version, so pages may keep it as immutable; a request for it
# without the version (or with another) revalidates with the etag.
CLIENT_VERSION = hashlib.blake2b(_CLIENT_JS, digest_size=6).hexdigest()
SCRIPT_TAG = f'<script src="{CLIENT_PATH}?v={CLIENT_VERSION}" defer></script>'.encode()
_CLIENT_ETAG = f'"{CLIENT_VERSION}"'
_CLIENT_HEADERS = (("content-type", "text/javascript; charset=utf-8"), ("etag", _CLIENT_ETAG))


def _event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class LiveReload:
    """Fans events out to every open event stream, in every tab of every browser."""

    def __init__(self, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.heartbeat = heartbeat
        self.boot_id = os.urandom(6).hex()
        self.error: str | None = None
        self._subscribers: set[Any] = set()
        self._inbox = curio.UniversalQueue()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    # -- producing events ------------------------------------------------------------------

    def post(self, kind: str, data: Any = None) -> None:
        """Queue an event from any thread; ``pump`` delivers it."""
        self._inbox.put((kind, data))

    async def publish(self, kind: str, data: Any = None) -> None:
        """Send an event to every subscriber now (from the event loop)."""
        if kind == "error":
            self.error = data.get("message") if isinstance(data, dict) else str(data)
        elif kind == "reload" and not (isinstance(data, dict) and data.get("paths")):
            # A reload of everything (routes.py loaded again) clears the error; a reload for
            # an edited file does not: the routes are still broken.
            self.error = None
        message = _event(kind, data if data is not None else {})
        for queue in list(self._subscribers):
            await queue.put(message)

    async def pump(self) -> None:
        """Move events posted by other threads to the subscribers (a server task)."""
        while True:
            kind, data = await self._inbox.get()
            await self.publish(kind, data)

    # -- serving ---------------------------------------------------------------------------

    async def handle(self, request: Request, response: Response) -> bool:
        """Answer the reload endpoints; False for any other path."""
        path = request.path
        if path == EVENTS_PATH:
            await self._stream(request, response)
            return True
        if path == CLIENT_PATH:
            await self._client(request, response)
            return True
        return False

    async def _client(self, request: Request, response: Response) -> None:
        current = request.query_string == f"v={CLIENT_VERSION}"
        cache = "public, max-age=31536000, immutable" if current else "no-cache"
        response.update_headers((*_CLIENT_HEADERS, ("cache-control", cache)))
        if request.headers.get("if-none-match") in (_CLIENT_ETAG, f"W/{_CLIENT_ETAG}"):
            await response.send_status_code(304)
            return
        await response.send(_CLIENT_JS)

    async def _stream(self, request: Request, response: Response) -> None:
        response.update_headers((("content-type", "text/event-stream"),
                                 ("cache-control", "no-store")))
        await response.start(200)
        if response.finished:  # HEAD
            return
        queue = curio.Queue()
        self._subscribers.add(queue)
        try:
            hello = {"id": self.boot_id}
            if self.error:
                hello["error"] = self.error
            await response.write(b"retry: 500\n\n" + _event("hello", hello))
            while True:
                message = None
                async with curio.ignore_after(self.heartbeat):
                    message = await queue.get()
                await response.write(message if message is not None else b": ping\n\n")
        finally:
            self._subscribers.discard(queue)


# -- HTML injection ------------------------------------------------------------------------

# Regions in which a "</head>" or "</body>" is text, not markup: the tag must not go there.
# Comments end at "-->" or "--!>" ("<!-->" and "<!--->" are empty ones); raw text elements at
# their own end tag, matched by exact name: "<script-loader>" is a custom element, not a script.
# Either may run to the end of a truncated page (the ``open`` groups).
_OPAQUE = re.compile(
    rb"<!--(?:-?>|.*?(?:--!?>|(?P<open_comment>\Z)))"
    rb"|<(script|style|textarea|title|template|xmp|iframe|noembed|noframes)(?=[\s/>])"
    rb".*?(?:</\2\s*>|(?P<open_element>\Z))",
    re.IGNORECASE | re.DOTALL)
_HEAD_END = re.compile(rb"</head\s*>", re.IGNORECASE)
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


def inject_script(html: bytes, tag: bytes = SCRIPT_TAG) -> bytes:
    """``html`` with ``tag`` before ``</head>``, else before ``</body>``, else at the end.

    Occurrences inside comments, scripts, styles, textareas and the like are skipped. A page
    that ends inside an unclosed comment or script gets the tag before that, where it runs.
    """
    regions = list(_OPAQUE.finditer(html))
    opaque = [m.span() for m in regions]

    def first_outside(pattern: re.Pattern[bytes]) -> int:
        for match in pattern.finditer(html):
            start = match.start()
            if not any(a <= start < b for a, b in opaque):
                return start
        return -1

    at = first_outside(_HEAD_END)
    if at == -1:
        at = first_outside(_BODY_END)
    if at == -1:
        last = regions[-1] if regions else None
        if last is not None and (last.group("open_comment") is not None
                                 or last.group("open_element") is not None):
            at = last.start()
        else:
            return html + tag
    return html[:at] + tag + html[at:]

"""``WebSocket``: what a handler registered with ``app.websocket`` talks through.

    @app.websocket("chat/{room}")
    async def chat(request, ws):
        async for message in ws:          # str (text) or bytes (binary)
            await ws.send(f"echo: {message}")

The same handler serves both transports: an HTTP/1.1 Upgrade (RFC 6455) and an HTTP/2
extended CONNECT stream (RFC 8441), where a browser keeps its one connection. The
handshake is accepted when the handler first sends or receives, or with ``accept``;
raising ``HTTPError`` before that refuses it with that status. Messages larger than
``max_message`` close the socket with 1009; pings are answered.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

from ._curio import curio
from .exceptions import HTTPError, ServerStopping, StreamClosed, WebSocketClosed
from .http import Request, Response
from .server.protocol.ws import (
    GOING_AWAY,
    INTERNAL,
    MAX_MESSAGE,
    NORMAL,
    Closed,
    WSSession,
    accept_headers,
    handshake_error,
    offered_subprotocols,
)

ABNORMAL = 1006  # the connection ended without a close frame (never sent on the wire)
PING_EVERY = 20.0  # seconds of quiet before a keep-alive ping

log = logging.getLogger("hyper2web")
WebSocketHandler = Callable[[Request, "WebSocket"], Awaitable[None]]


class WebSocket:
    """One WebSocket, server side: ``receive``, ``send``, ``close``, ``async for``."""

    def __init__(self, request: Request, response: Response,
                 max_message: int = MAX_MESSAGE, ping_every: float | None = PING_EVERY) -> None:
        self.request = request
        self._response = response
        self._session = WSSession(max_message)
        # The tunnel's bytes, read directly (an async generator would need curio's
        # finalize() wherever a handler leaves its loop early).
        self._source = request.stream.source
        self._inbox: deque[str | bytes] = deque()
        # A socket quiet this long gets a ping: proxies and NATs drop idle connections,
        # and the peer's pong shows it is still there.
        self.ping_every = ping_every
        self.subprotocol: str | None = None
        self.accepted = False
        self.close_code: int | None = None  # set once closed, by either side
        self.close_reason = ""

    @property
    def subprotocols(self) -> list[str]:
        """What the client offered in ``sec-websocket-protocol``, in its order."""
        return offered_subprotocols(self.request.headers)

    async def accept(self, subprotocol: str | None = None) -> None:
        """Open the WebSocket (once); ``subprotocol`` must be one the client offered."""
        if self.accepted:
            return
        error = handshake_error(self.request.headers)
        if error is not None:
            raise HTTPError(400, f"not a WebSocket handshake: {error}")
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        self.subprotocol = subprotocol
        response = self._response
        response.set_headers(accept_headers(self.request.headers, subprotocol))
        self.accepted = True
        # 101 Switching Protocols over HTTP/1.1; a 2xx opens the tunnel over HTTP/2.
        await response.start(101 if self.request.http_version.startswith("1") else 200)

    async def receive(self) -> str | bytes:
        """The next message; ``WebSocketClosed`` once the socket is closed."""
        await self.accept()
        while not self._inbox:
            if self.close_code is not None:
                raise WebSocketClosed(self.close_code, self.close_reason)
            await self._read()
        return self._inbox.popleft()

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        """``async for message in ws``: ends when the socket closes, by either side."""
        try:
            return await self.receive()
        except WebSocketClosed:
            raise StopAsyncIteration from None

    async def send(self, data: str | bytes) -> None:
        """Send one message: text for ``str``, binary for ``bytes``."""
        await self.accept()
        if self.close_code is not None or not self._session.open:
            raise WebSocketClosed(self.close_code or ABNORMAL, self.close_reason)
        self._session.message(data)
        await self._flush()

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close with ``code``: the close frame goes out and the stream ends (the peer's
        answering close frame needs no reply)."""
        await self.accept()
        self._session.close(code, reason)
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        await self._flush()
        await self._finish()

    async def _read(self) -> None:
        """Read the tunnel until something happens: messages, or the end."""
        data: bytes | None = None
        if self._source is not None:
            try:
                data = await self._read_or_ping()
            except ServerStopping:
                self._session.close(GOING_AWAY, "server shutting down")
                self.close_code, self.close_reason = GOING_AWAY, "server shutting down"
                data = None
            except StreamClosed:
                data = None
        for item in self._session.receive(data):
            if isinstance(item, Closed):
                if self.close_code is None:
                    self.close_code, self.close_reason = item.code, item.reason
            else:
                self._inbox.append(item)
        if data is None and self.close_code is None:
            self.close_code = ABNORMAL
        await self._flush()  # pongs, the answer to a close
        if self.close_code is not None:
            await self._finish()

    async def _read_or_ping(self) -> bytes | None:
        """The tunnel's next bytes (None at its end), pinging while it stays quiet."""
        assert self._source is not None
        while True:
            if self.ping_every is None:
                return await self._source.read() or None
            async with curio.ignore_after(self.ping_every) as quiet:
                data = await self._source.read()
            if not quiet.expired:
                return data or None
            self._session.ping(b"keep-alive")
            await self._flush()

    async def _flush(self) -> None:
        data = self._session.data_to_send()
        if data and not self._response.finished:
            try:
                await self._response.write(data)
            except StreamClosed:
                if self.close_code is None:
                    self.close_code = ABNORMAL

    async def _finish(self) -> None:
        """End the tunnel once both close frames went (or the peer is gone)."""
        response = self._response
        if response.started and not response.finished:
            try:
                await response.end()
            except StreamClosed:
                pass


async def run_handler(handler: WebSocketHandler, request: Request, response: Response,
                      max_message: int = MAX_MESSAGE,
                      ping_every: float | None = PING_EVERY) -> None:
    """Run a WebSocket handler with the app's error policy.

    Before the handshake is accepted, ``HTTPError`` refuses it with that status (and any
    other exception with 500); afterwards an exception closes the socket with 1011 and
    one log line. A handler that returns leaves the socket closed (1000), and one that
    never accepted it refuses it with 403.
    """
    from .static import send_error_page

    ws = WebSocket(request, response, max_message, ping_every)
    name = getattr(handler, "__qualname__", repr(handler))
    try:
        await handler(request, ws)
    except StreamClosed:
        pass  # the client left (a WebSocketClosed too): nothing more to say
    except HTTPError as exc:
        if not ws.accepted:
            await send_error_page(response, exc.status, exc.message)
            return
        log.error("WebSocket handler %s raised HTTPError(%d) after accepting, on %s",
                  name, exc.status, request.path)
        await ws.close(INTERNAL, "internal error")
    except Exception:
        log.exception("WebSocket handler %s failed on %s", name, request.path)
        if not ws.accepted:
            response.headers.clear()
            await send_error_page(response, 500)
            return
        await ws.close(INTERNAL, "internal error")
    else:
        if not ws.accepted:
            await send_error_page(response, 403, f"{name} did not accept the WebSocket")
            return
        if ws.close_code is None:
            await ws.close(NORMAL)
    await ws._finish()

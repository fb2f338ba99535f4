"""``WebSocket``: what a handler registered with ``app.websocket`` talks through.

    @app.websocket("chat/{room}")
    async def chat(request, ws):
        async for message in ws:          # str (text) or bytes (binary)
            await ws.send(f"echo: {message}")

The same handler serves both transports: an HTTP/1.1 Upgrade (RFC 6455) and an HTTP/2
extended CONNECT stream (RFC 8441), where a browser keeps its one connection. The
handshake is accepted when the handler first sends or receives, or with ``accept``;
raising ``HTTPError`` before that refuses it with that status. Messages larger than
``max_message`` close the socket with 1009; pings are answered, and a quiet socket is
pinged: one whose peer answers no pong by the next ping is closed with 1011.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

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
NO_PONG = "keepalive ping timeout"  # the close reason when a ping went unanswered
ENDED = "ended by the server"  # the close reason of an aborted socket (never sent)
# A message is written in pieces of this size, each one a sign that the peer is reading:
# a broadcast waiting behind a long send tells a slow page from a stuck one by them.
WRITE_PIECE = 64 * 1024

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
        self._aborted = False
        # One writer at a time: a broadcast's send and the handler's own would otherwise
        # interleave the pieces of their frames while the peer's window is closed. A flag,
        # and an event made only when a second writer must wait (a lock costs each idle
        # socket a kilobyte).
        self._writing = False
        self._written: Any = None
        self._moved = 0.0  # when the writer last got a piece out (time.monotonic())

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
        """Send one message: text for ``str``, binary for ``bytes``.

        A send cut off half-way (a timeout around it, its task cancelled) ends the socket
        as ``abort`` does: the peer holds part of a frame, and no frame may follow it.
        """
        if not await self._deliver(data, None):
            raise WebSocketClosed(ABNORMAL, ENDED)

    async def _deliver(self, data: str | bytes, timeout: float | None) -> bool:
        """``send`` for ``App.broadcast``: False, the socket aborted, when it made no
        progress for ``timeout`` seconds (a page that stopped reading).

        Waiting behind another writer (the handler's own long send) counts only while that
        writer gets nothing out: a page that reads a big message at its pace is not one
        that stopped reading. Once this message's turn comes, it has ``timeout`` seconds.
        """
        await self.accept()
        if self.close_code is not None or not self._session.open:
            raise WebSocketClosed(self.close_code or ABNORMAL, self.close_reason)
        self._session.message(data)
        return await self._flush(timeout)

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close with ``code``: the close frame goes out and the stream ends (the peer's
        answering close frame needs no reply)."""
        await self.accept()
        self._session.close(code, reason)
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        await self._flush()
        await self._finish()

    async def abort(self) -> None:
        """End the socket: no close frame, no waiting on the peer.

        For a socket that cannot keep up (``App.broadcast``): part of a message may be on
        its way, so no frame can follow it. A handler waiting to read is woken at once:
        its ``async for`` ends (close code 1006), and its next ``send`` raises
        ``WebSocketClosed``. A handler waiting in its own ``send`` is not: the response
        offers the framework no way to end a stream under a blocked writer, so that send
        waits until the peer takes the piece being written (up to 64 KiB) and then raises,
        or until the server gives up on the peer after ``send_timeout`` (60 s) and resets
        the stream (HTTP/2) or closes the connection (HTTP/1.1). Once the handler returns,
        the server resets the stream (HTTP/2) or closes the connection (HTTP/1.1), and the
        page sees its socket close.
        """
        if self._aborted:
            return
        self._aborted = True
        if self.close_code is None:
            self.close_code, self.close_reason = ABNORMAL, ENDED
        fail = getattr(self._source, "fail", None)  # wakes the handler waiting to read
        if fail is not None:
            await fail(WebSocketClosed(ABNORMAL, ENDED))
        if self._written is not None:  # and the senders waiting for their turn
            written, self._written = self._written, None
            await written.set()

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
        """The tunnel's next bytes (None at its end), pinging while it stays quiet.

        A peer that has not answered the last ping by the time the next one is due is
        taken for gone (a laptop asleep, a NAT that dropped the connection), and the
        socket is failed as RFC 6455 section 7.1.7 says: a close frame with a status code
        (1011, as the ``websockets`` package sends on a ping timeout), then the end of the
        stream without waiting for the peer's close frame, which a gone peer never sends.
        A bare abort (a reset) would tell a peer that is still there nothing of why.
        """
        assert self._source is not None
        while True:
            if self.ping_every is None:
                return await self._source.read() or None
            async with curio.ignore_after(self.ping_every) as quiet:
                data = await self._source.read()
            if not quiet.expired:
                return data or None
            if self._session.awaiting_pong:
                self._session.close(INTERNAL, NO_PONG)
                self.close_code, self.close_reason = INTERNAL, NO_PONG
                return None
            self._session.ping(b"keep-alive")
            await self._flush()

    async def _flush(self, timeout: float | None = None) -> bool:
        """Send what the session queued (messages, pongs, close frames), in order; False
        when the socket is aborted, before or meanwhile (``timeout``: see ``_deliver``).

        A write interrupted once it began (a timeout, a cancelled task) aborts the socket
        before the exception goes on: the peer may hold part of a frame.
        """
        while self._writing and not self._aborted:
            if self._written is None:
                self._written = curio.Event()
            if timeout is None:
                await self._written.wait()
                continue
            left = self._moved + timeout - time.monotonic()
            if left <= 0:
                await self.abort()  # the writer ahead got nothing out for that long
                break
            async with curio.ignore_after(left):
                await self._written.wait()
        if self._aborted:
            self._session.data_to_send()  # dropped: no frame may follow a cut one
            return False
        self._writing = True
        self._moved = time.monotonic()
        began = False
        try:
            # Taken only now: a writer sends what the writers before it queued, in order.
            data = self._session.data_to_send()
            if data and not self._response.finished:
                began = True
                if timeout is None:
                    await self._write(data)
                else:
                    async with curio.ignore_after(timeout) as late:
                        await self._write(data)
                    if late.expired:
                        await self.abort()  # part of the message may be out
        except StreamClosed:
            if self.close_code is None:
                self.close_code = ABNORMAL
        except BaseException:
            if began:
                await self.abort()
            raise
        finally:
            self._writing = False
            if self._written is not None:
                written, self._written = self._written, None
                await written.set()
        return not self._aborted

    async def _write(self, data: bytes) -> None:
        """Write ``data`` piece by piece, noting each piece that got out (``_moved``);
        an abort meanwhile drops the rest."""
        if len(data) <= WRITE_PIECE:  # most messages: as they are, without a view to copy
            await self._response.write(data)
            self._moved = time.monotonic()
            return
        view = memoryview(data)
        for start in range(0, len(view), WRITE_PIECE):
            if self._aborted:
                return
            await self._response.write(view[start:start + WRITE_PIECE])
            self._moved = time.monotonic()

    async def _finish(self) -> None:
        """End the tunnel once both close frames went (or the peer is gone)."""
        response = self._response
        if response.started and not response.finished and not self._aborted:
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

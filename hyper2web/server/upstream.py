"""The client side of the proxy: HTTP/1.1 to the user's backend, on h11, with keep-alive.

One ``Upstream`` per proxied backend holds a small pool of idle connections (plain TCP, or
TLS for ``https://`` backends, verified unless told otherwise). ``exchange`` sends one
request, streaming its body, and returns the response head with a body to read as it
arrives; a connection whose exchange ended cleanly goes back to the pool. Failures are
``UpstreamError`` with a reason a developer can act on ("connection refused: is your
backend running?"), or ``UpstreamTimeout``.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import h11

from .._curio import curio
from .config import READ_SIZE

CONNECT_TIMEOUT = 5.0  # seconds to reach the backend
HEAD_TIMEOUT = 60.0  # seconds for the backend's response head (504 past it)
IDLE_KEPT = 64  # idle keep-alive connections kept per backend (a page may ask many at once)


class Reader(Protocol):
    """A request body to send: ``read()`` gives pieces, then ``b""``."""

    async def read(self) -> bytes: ...


class UpstreamError(Exception):
    """The backend could not be reached, or broke off: the message says why."""


class UpstreamTimeout(UpstreamError):
    """The backend did not answer in time."""


class Upstream:
    """One backend, ``http://host:port`` or ``https://host:port``, and its idle connections."""

    def __init__(self, url: str, *, verify: bool = True,
                 head_timeout: float = HEAD_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {url!r}")
        self.url = url
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.netloc = parts.netloc
        self.path = parts.path  # a path in the target replaces the proxied prefix
        self._context: ssl.SSLContext | None = None
        if self.tls:
            self._context = ssl.create_default_context()
            if not verify:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE
        self._idle: list[_Conn] = []
        self.head_timeout = head_timeout

    async def exchange(self, method: str, target: str, headers: Sequence[tuple[str, str]],
                       body: Reader | None) -> UpstreamResponse:
        """Send one request (``body`` streamed, chunked unless ``headers`` give a length)
        and return the response head; the body follows from ``UpstreamResponse.body``."""
        conn = self._idle.pop() if self._idle else None
        if conn is not None:
            try:
                return await conn.exchange(self, method, target, headers, body)
            except _Stale as exc:
                await conn.close()  # the backend closed it while idle: a new one
                if body is not None:  # already spent on the stale one: cannot resend
                    raise UpstreamError(f"the backend closed the connection ({exc})") from None
        conn = await self._connect()
        try:
            return await conn.exchange(self, method, target, headers, body)
        except _Stale as exc:
            await conn.close()
            raise UpstreamError(f"the backend closed the connection ({exc})") from None

    async def open_tunnel(self, target: str, headers: Sequence[tuple[str, str]]
                          ) -> tuple[int, list[tuple[str, str]], Tunnel | None]:
        """An HTTP/1.1 Upgrade on a connection of its own (never pooled): the backend's
        status and fields, and with 101 the tunnel, its bytes raw both ways."""
        conn = await self._connect()
        try:
            await conn._send(h11.Request(method="GET", target=target, headers=list(headers)))
            await conn._send(h11.EndOfMessage())
            async with curio.timeout_after(self.head_timeout):
                while True:
                    event = await conn.next_event()
                    if type(event) in (h11.InformationalResponse, h11.Response):
                        break
        except curio.TaskTimeout:
            await conn.close()
            raise UpstreamTimeout(f"no answer within {self.head_timeout:g} s") from None
        except BaseException:
            await conn.close()
            raise
        head = [(name.decode("latin-1"), value.decode("latin-1"))
                for name, value in event.headers]
        if event.status_code != 101 or conn.h11.our_state is not h11.SWITCHED_PROTOCOL:
            await conn.close()
            return event.status_code, head, None
        return 101, head, Tunnel(conn.sock, conn.h11.trailing_data[0])

    async def _connect(self) -> _Conn:
        try:
            async with curio.timeout_after(CONNECT_TIMEOUT):
                sock = await curio.open_connection(
                    self.host, self.port, ssl=self._context,
                    server_hostname=self.host if self.tls else None)
        except curio.TaskTimeout:
            raise UpstreamTimeout(f"no connection within {CONNECT_TIMEOUT:g} s") from None
        except ConnectionRefusedError:
            raise UpstreamError("connection refused: is your backend running?") from None
        except ssl.SSLError as exc:
            raise UpstreamError(f"TLS with the backend failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc.strerror or exc}") from None
        return _Conn(sock)

    def give_back(self, conn: _Conn) -> bool:
        if len(self._idle) >= IDLE_KEPT:
            return False
        self._idle.append(conn)
        return True


class Tunnel:
    """The raw bytes of an upgraded connection to the backend."""

    def __init__(self, sock: Any, leftover: bytes) -> None:
        self.sock = sock
        self._leftover = leftover

    async def read(self) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return data
        try:
            received: bytes = await self.sock.recv(READ_SIZE)
        except OSError:
            return b""
        return received

    async def write(self, data: bytes) -> None:
        try:
            await self.sock.sendall(data)
        except OSError as exc:
            raise UpstreamError(f"the backend's WebSocket closed: {exc}") from None

    async def close(self) -> None:
        try:
            await self.sock.close()
        except OSError:
            pass


class _Stale(Exception):
    """A kept connection was closed by the backend before it answered anything."""


class UpstreamResponse:
    """The backend's response head; ``body()`` yields its body as it arrives."""

    def __init__(self, upstream: Upstream, conn: _Conn, status: int,
                 headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = headers
        self._upstream = upstream
        self._conn = conn
        # The body was read to its end, or discarded: the connection is back in the pool,
        # or closed.
        self.done = False

    async def read(self) -> bytes:
        """The next piece of the body as it arrives; ``b""`` at its end (the connection
        then goes back to the pool, or is closed)."""
        if self.done:
            return b""
        conn = self._conn
        try:
            while True:
                event = await conn.next_event()
                if type(event) is h11.Data:
                    if event.data:
                        return bytes(event.data)
                elif type(event) is h11.EndOfMessage:
                    break
        except BaseException:
            self.done = True
            await conn.close()
            raise
        self.done = True
        if not (conn.reusable() and self._upstream.give_back(conn)):
            await conn.close()
        return b""

    async def discard(self) -> None:
        """Close the connection unless the body was read to its end: the rest of an
        unread body would otherwise be taken for the next answer."""
        if not self.done:
            self.done = True
            await self._conn.close()


class _Conn:
    """One connection to the backend, on h11."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT)

    async def exchange(self, upstream: Upstream, method: str, target: str,
                       headers: Sequence[tuple[str, str]],
                       body: Reader | None) -> UpstreamResponse:
        fields = list(headers)
        names = {name for name, _ in fields}
        if body is not None and "content-length" not in names:
            fields.append(("transfer-encoding", "chunked"))
        try:
            try:
                await self._send(h11.Request(method=method, target=target, headers=fields))
            except UpstreamError as exc:
                raise _Stale(exc) from None
            if body is not None:
                while chunk := await body.read():
                    await self._send(h11.Data(data=chunk))
            await self._send(h11.EndOfMessage())
            async with curio.timeout_after(upstream.head_timeout):
                while True:
                    event = await self.next_event(fresh=True)
                    if type(event) is h11.Response:
                        break
        except curio.TaskTimeout:
            await self.close()
            raise UpstreamTimeout(f"no answer within {upstream.head_timeout:g} s") from None
        except BaseException:
            # The backend failed, the browser's upload broke off (or stalled), or the
            # browser left: this connection is half-way through a request, never reusable.
            await self.close()
            raise
        head = [(name.decode("latin-1"), value.decode("latin-1"))
                for name, value in event.headers]
        return UpstreamResponse(upstream, self, event.status_code, head)

    async def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            try:
                await self.sock.sendall(data)
            except OSError as exc:
                raise UpstreamError(f"the backend stopped reading: {exc}") from None

    async def next_event(self, fresh: bool = False) -> Any:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamError(f"the backend broke HTTP/1.1: {exc}") from None
            if event is h11.NEED_DATA:
                try:
                    data = await self.sock.recv(READ_SIZE)
                except OSError as exc:
                    raise UpstreamError(f"the connection failed: {exc}") from None
                if not data and fresh and self.h11.their_state is h11.SEND_RESPONSE \
                        and not self.h11.trailing_data[0]:
                    raise _Stale("closed before answering")
                self.h11.receive_data(data)
                continue
            if type(event) is h11.ConnectionClosed:
                raise UpstreamError("the backend closed the connection mid-answer")
            return event

    def reusable(self) -> bool:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False

    async def close(self) -> None:
        try:
            await self.sock.close()
        except OSError:
            pass

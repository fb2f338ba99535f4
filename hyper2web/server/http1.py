"""One HTTP/1.1 connection: h11 parses and frames, this module owns the socket.

Clients that do not speak HTTP/2 (curl --http1.1, urllib, requests, wget, many test
tools) get the same ``App.handle`` as HTTP/2 clients: a ``Request``/``Response`` pair per
request, built from h11's events. Requests on one connection are answered one after the
other, in order (pipelined ones wait in h11's buffer); keep-alive, chunked bodies and
``Expect: 100-continue`` are h11's. Bad framing gets 400, an oversized head 431, and the
connection closes: after a framing error nothing that follows can be trusted (request
smuggling).
"""

from __future__ import annotations

import http
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import h11

from .._curio import curio
from ..exceptions import HTTPError, StreamClosed
from ..http import Request, Response, Stream
from .config import READ_SIZE, ConnectionConfig, EarlyAnswer, Handler, StreamsBody
from .h2guard import LINGER_BYTES, LINGER_SECONDS
from .watchdog import Watched

log = logging.getLogger("hyper2web.server")

MAX_HEAD = 64 * 1024  # request line and header fields; more gets 431
_STREAM_ID = 1  # HTTP/1.1 has no streams: every request is "stream 1" to the app


class H11Channel:
    """The ``Channel`` of the current request: its response, written through h11."""

    __slots__ = ("_conn",)

    def __init__(self, conn: H11Connection) -> None:
        self._conn = conn

    async def send_head(self, status: int, headers: Sequence[tuple[str, str]],
                        end_stream: bool) -> None:
        conn = self._conn
        fields = list(headers)
        if conn.draining:
            fields.append(("connection", "close"))
        data = conn.send(h11.Response(status_code=status, headers=fields,
                                      reason=reason_phrase(status)))
        if end_stream:
            data += conn.send(h11.EndOfMessage())
        await conn.write(data)

    async def send_informational(self, status: int,
                                 headers: Sequence[tuple[str, str]]) -> None:
        if self._conn.h11.their_http_version != b"1.1":
            return  # HTTP/1.0 knows no 1xx responses (RFC 9110 section 15.2)
        await self._conn.write(self._conn.send(
            h11.InformationalResponse(status_code=status, headers=list(headers))))

    async def send_data(self, data: bytes, end_stream: bool) -> None:
        conn = self._conn
        out = conn.send(h11.Data(data=data)) if data else b""
        if end_stream:
            out += conn.send(h11.EndOfMessage())
        if out:
            await conn.write(out)

    async def own_task(self) -> None:
        """Every HTTP/1.1 connection is a task of its own already: nothing to do."""


class H11BodySource:
    """A streamed request body: read from the socket only as the handler asks for it,
    so TCP's own flow control holds the client back."""

    __slots__ = ("_conn", "_done")

    def __init__(self, conn: H11Connection) -> None:
        self._conn = conn
        self._done = False

    async def read(self) -> bytes:
        while not self._done:
            event = await self._next()
            if event is None:
                raise StreamClosed("the client stopped sending the request body")
            if type(event) is h11.EndOfMessage:
                self._done = True
            elif type(event) is h11.Data and event.data:
                return bytes(event.data)
        return b""

    async def _next(self) -> Any:
        try:
            return await self._conn._next_event()
        except h11.RemoteProtocolError as exc:  # broken chunked framing: the client's fault
            raise HTTPError(400, f"bad request body: {exc}") from None


class H11Connection(Watched):
    """Serves one connection that speaks HTTP/1.1 (ALPN ``http/1.1`` or none)."""

    def __init__(self, sock: Any, client: tuple[str, int], handler: Handler,
                 config: ConnectionConfig, early: EarlyAnswer | None = None,
                 streams: StreamsBody | None = None) -> None:
        self.sock = sock
        self.client = client
        self.handler = handler
        self.config = config
        self.early = early
        self.streams_body = streams
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.draining = False  # shutdown: answer the request in progress, then close
        self.lost = False
        self.closed = False
        self.handling = False
        self.requests = 0
        self.sending_since = 0.0
        self._task: Any = None

    # -- life cycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Answer requests in order until the client leaves, an error, or shutdown."""
        self._task = await curio.current_task()
        try:
            while not self.draining and not self.lost:
                event = await self._next_event(first=True)
                if event is None or type(event) is not h11.Request:
                    return
                if not await self._answer(event):
                    return
                if self.h11.our_state is not h11.DONE or \
                        self.h11.their_state is not h11.DONE:
                    return  # a body left unread, or Connection: close
                self.h11.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            await self._refuse_bad_request(exc)
        except StreamClosed:
            pass  # the client left while we answered: nothing more to do
        except OSError as exc:
            self.lost = True
            log.debug("%s: connection closed (%s)", self.peer, exc)
        except curio.CancelledError:
            if not self.lost:
                raise  # the server stops
        finally:
            self.handling = False

    async def _next_event(self, first: bool = False) -> Any:
        """The next h11 event, reading as needed; None when the client is gone or quiet.

        Waiting for a request: the first gets ``preface_timeout``, later ones the keep-alive
        ``idle_timeout``; once a head has begun, all of it must come within
        ``preface_timeout`` (a head sent a byte at a time cannot hold the connection). A
        body must make progress every ``body_timeout``.
        """
        head_by = 0.0  # when the head that has begun must be complete
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return None if type(event) is h11.ConnectionClosed else event
            if self.h11.they_are_waiting_for_100_continue:
                await self.write(self.send(h11.InformationalResponse(status_code=100,
                                                                     headers=[])))
            if not first:
                limit = self.config.body_timeout
            elif self.h11.trailing_data[0]:
                head_by = head_by or time.monotonic() + self.config.preface_timeout
                limit = max(0.0, head_by - time.monotonic())
            else:
                limit = self.config.idle_timeout if self.requests else \
                    self.config.preface_timeout
            async with curio.ignore_after(limit) as quiet:
                data = await self.sock.recv(READ_SIZE)
            if quiet.expired:
                if not first:
                    await self._simple(408, "request body timed out")
                log.debug("%s: quiet for %g s, closing", self.peer, limit)
                return None
            self.h11.receive_data(data)

    # -- requests --------------------------------------------------------------------------

    async def _answer(self, event: h11.Request) -> bool:
        """Read the body, run the handler; False when the connection must close."""
        self.requests += 1
        self.handling = True
        refused = _refusal(event)
        if refused is not None:
            log.info("%s: bad HTTP/1.1 request: %s", self.peer, refused[1])
            await self._simple(*refused)
            return False
        headers = _header_dict(event)
        method, path = headers[":method"], headers[":path"]
        chunked_or_sized = any(name in (b"content-length", b"transfer-encoding")
                               for name, _ in event.headers)
        if chunked_or_sized and self.early is not None:
            answer = self.early(method, path)
            if answer is not None:
                status, extra = answer
                await self._simple(status, str(status), extra)
                return False
        source = None
        if chunked_or_sized and self.streams_body is not None and \
                self.streams_body(method, path):
            source = H11BodySource(self)  # read from the socket as the handler asks
        length = headers.get("content-length", "")
        if source is None and length.isdigit() and int(length) > self.config.max_body_size:
            await self._simple(413, "request body too large")  # before any 100 Continue
            return False
        body = await self._read_body() if source is None else b""
        if body is None:
            return False
        request = Request(Stream(_STREAM_ID, headers, body, source), client=self.client,
                          http_version=event.http_version.decode(), arrived=time.monotonic())
        response = Response(_STREAM_ID, H11Channel(self), head_only=method == "HEAD")
        try:
            await self.handler(request, response)
        except StreamClosed:
            return False
        except (Exception, SystemExit):  # a handler's exit must not stop the server
            log.exception("%s: unhandled error on %s %s", self.peer, method, path)
            if not response.started:
                await self._simple(500, "internal server error")
            return False
        finally:
            self.handling = False
        # An unfinished response (the handler layer answers those itself) ends the connection.
        return response.finished

    async def _read_body(self) -> bytes | None:
        """The whole request body, bounded; None when the request was refused."""
        chunks: list[bytes] = []
        size = 0
        bodies = self.config.bodies
        try:
            while True:
                event = await self._next_event()
                if event is None:
                    return None
                kind = type(event)
                if kind is h11.EndOfMessage:
                    return b"".join(chunks)
                if kind is not h11.Data:
                    continue
                size += len(event.data)
                if size > self.config.max_body_size:
                    await self._simple(413, "request body too large")
                    return None
                if not bodies.fits(len(event.data)):
                    await self._simple(503, "server busy: too many uploads at once")
                    return None
                bodies.used += len(event.data)
                chunks.append(event.data)
        finally:
            bodies.used -= sum(len(chunk) for chunk in chunks)

    async def _refuse_bad_request(self, exc: h11.RemoteProtocolError) -> None:
        """400 (or h11's hint, 431 for an oversized head) and close: framing is broken."""
        status = exc.error_status_hint  # 431 for an oversized head, else 400
        log.info("%s: bad HTTP/1.1 request (%s): %d", self.peer, exc, status)
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                await self._simple(status, str(exc) or "bad request")
            except StreamClosed:
                pass

    async def _simple(self, status: int, text: str,
                      extra: Sequence[tuple[str, str]] = ()) -> None:
        """A short plain-text answer that ends the connection."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = (text + "\n").encode()
        self.draining = True
        head = h11.Response(status_code=status, reason=reason_phrase(status), headers=[
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", str(len(body))), ("connection", "close"), *extra])
        await self.write(self.send(head) + self.send(h11.Data(data=body))
                         + self.send(h11.EndOfMessage()))
        if self.h11.their_state is not h11.DONE:
            await self._linger()

    async def _linger(self) -> None:
        """The request's body is left unread: shut our side, then read and drop what still
        comes for a moment, so closing does not reset the connection (a TCP reset can
        destroy the answer just sent)."""
        try:
            await self.sock.shutdown(socket.SHUT_WR)
            async with curio.ignore_after(LINGER_SECONDS):
                dropped = 0
                while dropped < LINGER_BYTES and await self.sock.recv(READ_SIZE):
                    dropped += READ_SIZE
        except OSError:
            pass

    # -- writing ---------------------------------------------------------------------------

    def send(self, event: Any) -> bytes:
        """h11's bytes for ``event``; a response it refuses means the stream is unusable."""
        try:
            return self.h11.send(event) or b""
        except h11.LocalProtocolError as exc:
            raise StreamClosed(f"cannot send on this connection: {exc}") from None

    async def write(self, data: bytes) -> None:
        """Send ``data``; a lost peer ends the response (``StreamClosed``)."""
        if self.lost:
            raise StreamClosed("connection lost")
        self.sending_since = time.monotonic()
        try:
            await self.sock.sendall(data)
        except OSError as exc:
            self.lost = True
            raise StreamClosed(f"connection lost: {exc}") from None
        finally:
            self.sending_since = 0.0

    # -- what the listener asks ------------------------------------------------------------

    async def send_goaway(self) -> None:
        """Shutdown: finish the request in progress with ``connection: close``; an idle
        connection closes now."""
        self.draining = True
        if not self.handling and self._task is not None:
            self.lost = True
            await self._task.cancel(blocking=False)

    def busy(self) -> bool:
        return self.handling


def _refusal(event: h11.Request) -> tuple[int, str] | None:
    """What h11 lets through but this server refuses, as ``(status, why)``.

    A head whose whole size is over ``MAX_HEAD`` (h11 bounds only a head still arriving),
    and ``content-length`` beside ``transfer-encoding``: RFC 9112 section 6.1 lets a
    server refuse it, and two servers framing it differently is how requests are smuggled.
    """
    size = len(event.target)
    names = set()
    for name, value in event.headers:
        size += len(name) + len(value) + 4
        names.add(name)
    if size > MAX_HEAD:
        return 431, "request header fields too large"
    if b"content-length" in names and b"transfer-encoding" in names:
        return 400, "content-length and transfer-encoding together"
    return None


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


def _header_dict(event: h11.Request) -> dict[str, str]:
    """h11's request -> the header dict every handler sees, HTTP/2 pseudo-fields included.

    Repeated fields are joined as RFC 9110 allows (``cookie`` with ``; ``, as HTTP/2 does).
    """
    target = event.target.decode("latin-1")
    headers: dict[str, str] = {":method": event.method.decode("ascii"), ":path": target,
                               ":scheme": "https"}
    if not target.startswith("/") and "://" in target:
        # The absolute form (RFC 9112 section 3.2.2), as proxies send it.
        parts = urlsplit(target)
        headers[":path"] = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers[":authority"] = parts.netloc
    for raw_name, raw_value in event.headers:
        name = raw_name.decode("ascii")
        value = raw_value.decode("latin-1")
        if name == "host":
            headers[":authority"] = value
        previous = headers.get(name)
        if previous is None:
            headers[name] = value
        else:
            headers[name] = f"{previous}{'; ' if name == 'cookie' else ', '}{value}"
    return headers

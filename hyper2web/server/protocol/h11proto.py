"""HTTP/1.1, sans-IO: h11's events become the driver's, one request at a time.

Clients that do not speak HTTP/2 (curl --http1.1, urllib, requests, wget, many test
tools) get the same streams as HTTP/2 clients: every request is "stream 1", answered in
order (pipelined ones wait in h11's buffer until the response before them has ended).
Keep-alive, chunked bodies and ``Expect: 100-continue`` are h11's. Bad framing gets 400,
an oversized head 431, and the connection closes: after a framing error nothing that
follows can be trusted (request smuggling). So does ``content-length`` beside
``transfer-encoding``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, cast

import h11

from ...exceptions import StreamClosed
from ..config import ConnectionConfig
from .events import (
    INTERNAL_ERROR,
    BodyEnded,
    BodyReceived,
    ConnectionEnded,
    Event,
    RequestStarted,
)
from .h1head import MAX_HEAD, plain_request, prepared_response, read_head, reason_phrase
from .h1plain import DUE, ENDED, PlainAnswer

log = logging.getLogger("hyper2web.server")

STREAM_ID = 1  # HTTP/1.1 has no streams: every request is "stream 1" to the driver
_ANY_SIZE = 1 << 62  # no flow control: a sender may always send all it has
# Plain requests answered without h11 (``h1plain``); HYPER2WEB_TUNED=0 turns it off, so
# the tests can run every request through h11 alone too.
PLAIN_REQUESTS = os.environ.get("HYPER2WEB_TUNED", "1") != "0"


class H11Protocol:
    """One HTTP/1.1 connection's protocol state: bytes in, events out, bytes to send."""

    concurrent = False  # one request at a time, in order
    flow_controlled = False  # a streamed body is held back by not reading the socket
    plain_requests = PLAIN_REQUESTS

    def __init__(self, peer: str, config: ConnectionConfig) -> None:
        self.peer = peer
        self.config = config
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.closing = False  # answer no more requests: close once the queue is sent
        self.linger = False
        self.draining = False  # shutdown: the response in progress says connection: close
        self.requests = 0
        self._out: list[bytes] = []
        self._head_since: float | None = None  # when a head that has begun started
        self._in_request = False  # a request is being read or answered
        # A WebSocket Upgrade request is answered (reported as an extended CONNECT, as over
        # HTTP/2); after our 101 the connection is a tunnel: raw bytes both ways.
        self._upgrade = False
        self.tunnel = False
        self._leftover = b""  # bytes that came after the Upgrade request, for the tunnel
        self._pending = b""  # bytes read while h11 is idle, not given to it (yet)
        self._plain: PlainAnswer | None = None  # a plain request h11 has not seen

    @property
    def wants_data(self) -> bool:
        """Read only while a head or body is due: a request being answered is not read
        past, so pipelined requests cannot pile up in memory. A tunnel reads on."""
        if self.tunnel:
            return not self.closing
        return not self.closing and self._plain is None \
            and self.h11.their_state in (h11.IDLE, h11.SEND_BODY)

    @property
    def resets(self) -> int:
        return 0

    def start(self) -> None:
        """HTTP/1.1 has no preface: the client speaks first."""

    # -- receiving -------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Event]:
        """The events in ``data`` (never empty: the driver handles the client's close)."""
        if self.tunnel:
            return [BodyReceived(STREAM_ID, data, len(data))]
        if self._head_since is None and not self._in_request:
            self._head_since = now
        if self._pending or self._plain is not None or self._plain_may_start():
            self._pending += data  # in order: h11 must not see what follows a plain head
        else:
            self.h11.receive_data(data)
        return self.next_events(now)

    def _plain_may_start(self) -> bool:
        """True while h11 is between requests with nothing buffered: what comes next may
        be a plain request (``h1plain``)."""
        return self.plain_requests and not self._in_request \
            and self.h11.their_state is h11.IDLE and self.h11.our_state is h11.IDLE \
            and not self.h11.trailing_data[0]

    def next_events(self, now: float) -> list[Event]:
        """The events h11 can give without more bytes (a pipelined request, say)."""
        out: list[Event] = []
        if self.closing:
            return out
        if self.tunnel:
            if self._leftover:
                data, self._leftover = self._leftover, b""
                out.append(BodyReceived(STREAM_ID, data, len(data)))
            return out
        if not self._in_request:
            if self._pending:
                if self._take_plain(out):
                    return out
            elif self._plain_may_start():
                return out  # h11 is idle with nothing buffered: it has nothing to give
        try:
            while True:
                event: Any = self.h11.next_event()
                kind = type(event)
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    break
                if kind is h11.Request:
                    self._head_since = None
                    if not self._on_request(event, out):
                        break
                elif kind is h11.Data:
                    if event.data:
                        out.append(BodyReceived(STREAM_ID, bytes(event.data), len(event.data)))
                elif kind is h11.EndOfMessage and not self._upgrade:
                    out.append(BodyEnded(STREAM_ID))
        except h11.RemoteProtocolError as exc:
            out.extend(self._bad_request(exc))
        return out

    def _take_plain(self, out: list[Event]) -> bool:
        """Start the plain request at the head of ``_pending``; else give h11 the bytes."""
        data, self._pending = self._pending, b""
        found = plain_request(data) if self._plain_may_start() else None
        if found is None:
            self.h11.receive_data(data)
            return False
        headers, size = found
        self._plain = PlainAnswer(data[:size], headers[":method"] == "HEAD")
        self._pending = data[size:]
        self.requests += 1
        self._in_request = True
        self._head_since = None
        out.append(RequestStarted(STREAM_ID, headers, True, "1.1"))
        out.append(BodyEnded(STREAM_ID))
        return True

    def _catch_up(self) -> None:
        """h11 takes over the plain request in progress, whose answer has not begun: it
        reads the same head (a request and its end), and is where it would have been."""
        plain, self._plain = self._plain, None
        if plain is not None:
            self.h11.receive_data(plain.head)
            self.h11.next_event()
            self.h11.next_event()

    def _on_request(self, event: h11.Request, out: list[Event]) -> bool:
        self.requests += 1
        self._in_request = True
        headers, framed, refused = read_head(event)
        if refused is not None:
            log.info("%s: bad HTTP/1.1 request: %s", self.peer, refused[1])
            self.refuse(STREAM_ID, refused[0], f"{refused[1]}\n".encode())
            out.append(ConnectionEnded(linger=self.linger))
            return False
        ended = not framed
        if "upgrade" in headers and _is_websocket_upgrade(event, headers):
            # The RFC 8441 form of the same request: one code path above for both protocols.
            headers[":method"], headers[":protocol"] = "CONNECT", "websocket"
            ended, self._upgrade = False, True
        # Without a body, h11's EndOfMessage follows at once, as END_STREAM does in HTTP/2.
        out.append(RequestStarted(STREAM_ID, headers, ended, event.http_version.decode()))
        return True

    def _bad_request(self, exc: h11.RemoteProtocolError) -> list[Event]:
        """400 (or h11's hint, 431 for an oversized head) and close: framing is broken."""
        status = exc.error_status_hint
        log.info("%s: bad HTTP/1.1 request (%s): %d", self.peer, exc, status)
        self.refuse(STREAM_ID, status, f"{exc or 'bad request'}\n".encode())
        self.closing = True
        return [ConnectionEnded(linger=self.linger)]

    # -- sending ---------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def recycle(self, data: bytes) -> None:
        """Nothing to reuse: h11 makes new bytes for every event."""

    def _send(self, event: Any) -> None:
        """Queue h11's bytes for ``event``; one it refuses means the stream is unusable."""
        try:
            data = self.h11.send(event)
        except h11.LocalProtocolError as exc:
            raise StreamClosed(f"cannot send on this connection: {exc}") from None
        if data:
            self._out.append(data)

    def send_head(self, stream_id: int, status: int, headers: Sequence[tuple[str, str]],
                  end: bool) -> None:
        if status == 101 and self._upgrade:
            self._send(h11.InformationalResponse(status_code=101, headers=list(headers)))
            self.tunnel = True
            self._leftover = self.h11.trailing_data[0]
            return
        plain = self._plain
        if plain is not None:
            if type(headers) is tuple and not self.draining \
                    and plain.send_head(status, headers, end, self._out):
                return
            self._catch_up()  # the answer needs h11's decisions (or h11's refusal)
        if type(headers) is tuple and not self.draining:
            self._send(prepared_response(status, headers))  # built once: checked once
        else:
            fields = list(headers)
            if self.draining:
                fields.append(("connection", "close"))
            self._send(h11.Response(status_code=status, headers=fields,
                                    reason=reason_phrase(status)))
        if end:
            self._send(_END)

    def send_informational(self, stream_id: int, status: int,
                           headers: Sequence[tuple[str, str]]) -> None:
        if self._plain is not None:
            self._plain.before_informational()
            self._catch_up()
        if self.h11.their_http_version != b"1.1":
            return  # HTTP/1.0 knows no 1xx responses (RFC 9110 section 15.2)
        self._send(h11.InformationalResponse(status_code=status, headers=list(headers)))

    def sendable(self, stream_id: int, size: int) -> int:
        if self.tunnel:
            if self.closing:
                raise StreamClosed("the tunnel has ended")
            return size
        if self._plain is not None:
            self._plain.sendable()
            return size
        if self.h11.our_state not in (h11.SEND_RESPONSE, h11.SEND_BODY):
            raise StreamClosed("the response has ended or cannot be sent")
        return size

    def send_whole(self, stream_id: int, data: bytes | memoryview, end: bool) -> bool:
        """No windows: everything can be queued at once."""
        self.sendable(stream_id, len(data))  # raises when nothing can be sent any more
        self.send_data(stream_id, data, end)
        return True

    def send_data(self, stream_id: int, data: bytes | memoryview, end: bool) -> None:
        if self.tunnel:
            if data:
                self._out.append(bytes(data))  # kept until written: the caller's may change
            if end:
                self.closing = True  # the tunnel's end is the connection's
            return
        if self._plain is not None:
            self._plain.send_data(data, end, self._out)
            return
        if data:
            # Any bytes-like will do: h11 joins it into new bytes (``send``).
            self._send(h11.Data(data=cast(bytes, data)))
        if end:
            self._send(_END)

    def ack(self, size: int, stream_id: int) -> None:
        """No flow control in HTTP/1.1: TCP's own holds the client back."""

    def reset(self, stream_id: int, code: int) -> None:
        """A stream cannot be reset alone: the connection closes after what is queued.

        A handler that failed before its response began still gets a 500 first.
        """
        if self._plain is not None and self._plain.state == DUE:
            self._catch_up()
        if code == INTERNAL_ERROR and self.h11.our_state is h11.SEND_RESPONSE:
            self.refuse(stream_id, 500, b"internal server error\n")
        self.closing = True
        self.linger = self.linger or self.h11.their_state is h11.SEND_BODY

    def done(self, stream_id: int) -> None:
        """The response has been handed over: go on with the next request if we may."""
        self._in_request = False
        plain, self._plain = self._plain, None
        if plain is not None:
            # h11 never saw the request: it is between requests already.
            if not self.closing and (plain.state != ENDED or self.draining):
                self.closing = True
            return
        if self.tunnel:
            self.closing = True
        self._upgrade = False
        if self.closing:
            return
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE \
                and not self.draining:
            self.h11.start_next_cycle()
            return
        # A body left unread, Connection: close, HTTP/1.0, or an unfinished response.
        self.closing = True
        self.linger = self.h11.their_state is h11.SEND_BODY

    def refuse(self, stream_id: int, status: int, body: bytes,
               extra: Sequence[tuple[str, str]] = (), *, stop: bool = True) -> None:
        """A short plain-text answer, then close: the body (if any) is left unread."""
        if self._plain is not None:
            if self._plain.state != DUE:
                # Too late for an answer, as in h11; the request was read whole.
                self.closing = self.draining = True
                self.linger = False
                return
            self._catch_up()
        self.closing = True
        self.draining = True
        self.linger = self.h11.their_state is not h11.DONE
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            self._send(h11.Response(status_code=status, reason=reason_phrase(status),
                                    headers=[("content-type", "text/plain; charset=utf-8"),
                                             ("content-length", str(len(body))),
                                             ("connection", "close"), *extra]))
            self._send(h11.Data(data=body))
            self._send(h11.EndOfMessage())
        except StreamClosed:
            pass

    # -- the end ---------------------------------------------------------------------------

    def goaway(self) -> bool:
        """Shutdown: the response in progress says ``connection: close``. True when no
        request is in progress: the connection may close now."""
        self.draining = True
        if not self._in_request:
            self.closing = True
            return True
        return False

    def before_read(self) -> bool:
        """The driver is about to wait for body bytes: a client waiting for ``100
        Continue`` gets it now, after any refusal of the request at headers time."""
        if not self.closing and self.h11.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[]))
            return True
        return False

    def quiet_limit(self, now: float, born: float) -> tuple[float, str]:
        """How long the client may stay silent between requests.

        The first request gets ``preface_timeout``, later ones the keep-alive
        ``idle_timeout``; once a head has begun, all of it must come within
        ``preface_timeout`` (a head sent a byte at a time cannot hold the connection).
        """
        if self._pending or self.h11.trailing_data[0]:
            if self._head_since is None:
                # Part of the next head came with the request before it: timed from now.
                self._head_since = now
            return max(0.0, self.config.preface_timeout - (now - self._head_since)), \
                "head not complete"
        if self.requests:
            return self.config.idle_timeout, "idle"
        return max(0.0, self.config.preface_timeout - (now - born)), "no request"

    def quiet(self) -> None:
        self.closing = True


def _is_websocket_upgrade(event: h11.Request, headers: dict[str, str]) -> bool:
    """A GET asking to become a WebSocket (RFC 6455 section 4.1)."""
    connection = headers.get("connection", "").lower()
    return event.method == b"GET" and event.http_version == b"1.1" \
        and headers.get("upgrade", "").lower() == "websocket" \
        and "upgrade" in (token.strip() for token in connection.split(","))


_END = h11.EndOfMessage()  # h11 never changes an event: one serves every response

"""HTTP/2, sans-IO: h2's events become the driver's, the driver's calls become frames.

h2 owns the protocol state; this class adds what a server needs on top, all without I/O:
received fields checked and decoded in one pass (``fields``), streams opened after our
GOAWAY refused, flow control for senders, and the budgets that keep one client from
costing everyone else (streams reset per second, frames that carry no request forward:
past either, GOAWAY ENHANCE_YOUR_CALM). The tuned h2 paths come from ``tuning``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from ...exceptions import StreamClosed
from ..compact_settings import new_settings
from ..config import ConnectionConfig
from ..fields import MalformedRequest, check_trailers, request_headers
from ..hpack_fields import head_block
from ..limits import FloodGuard
from ..stream_errors import StreamError, oversized_frame_pending
from ..tuning import ENABLED as _TUNED
from ..tuning import SERVER_CONFIG, new_connection
from .events import (
    NO_ERROR,
    BodyEnded,
    BodyReceived,
    ConnectionEnded,
    Event,
    RequestStarted,
    StreamAborted,
    WindowOpened,
)

log = logging.getLogger("hyper2web.server")


class H2Protocol:
    """One HTTP/2 connection's protocol state: bytes in, events out, frames to send."""

    concurrent = True  # streams are answered side by side
    flow_controlled = True  # senders wait for windows; bodies are held back by windows

    def __init__(self, peer: str, config: ConnectionConfig) -> None:
        self.peer = peer
        self.config = config
        self.h2 = new_connection(config=SERVER_CONFIG)
        self.open: set[int] = set()  # streams handed to the driver and not done yet
        self.greeted = False  # the peer's SETTINGS arrived: its preface is complete
        self.closing = False  # nothing more is read: a GOAWAY went out or came in
        self.linger = False
        self.draining_after: int | None = None  # our GOAWAY's last stream id
        self._raw_frames: list[bytes] = []  # frames written past h2 (see ``goaway``)
        self._guard = FloodGuard(config.max_resets_per_second or config.max_concurrent_streams,
                                 config.max_idle_frames_per_second)
        self._headers_priority = 0  # the request whose HEADERS carried priority, just read
        self._now = 0.0

    @property
    def wants_data(self) -> bool:
        return not self.closing

    @property
    def resets(self) -> int:
        """Streams reset on this connection, for its summary line (none once calmed: the
        ENHANCE_YOUR_CALM line said it)."""
        return self._guard.resets.total if self._guard.reason is None else 0

    def start(self) -> None:
        """Queue our preface: SETTINGS, and the larger connection window."""
        conn = self.h2
        codes = h2.settings.SettingCodes
        conn.remote_settings = new_settings(client=True)
        conn.local_settings = new_settings(client=False, initial_values={
            codes.MAX_CONCURRENT_STREAMS: self.config.max_concurrent_streams,
            codes.INITIAL_WINDOW_SIZE: self.config.initial_window_size,
            codes.MAX_HEADER_LIST_SIZE: self.config.max_header_list_size,
            # Extended CONNECT (RFC 8441): a browser opens WebSockets on this connection.
            codes.ENABLE_CONNECT_PROTOCOL: 1,
        })
        conn.initiate_connection()
        extra = self.config.connection_window_size - 65535
        if extra > 0:
            conn.increment_flow_control_window(extra)

    # -- receiving -------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Event]:
        """The events in ``data``; ``ConnectionEnded`` last when nothing more is read."""
        self._now = now
        conn = self.h2
        try:
            received = conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 has queued a GOAWAY with the right error code, except for an invalid
            # connection preface (RFC 9113 section 3.4 lets it be omitted): send one there
            # too, so the client learns why.
            log.info("%s: HTTP/2 protocol error, closing: %s", self.peer, exc)
            if conn.state_machine.state is not h2.connection.ConnectionState.CLOSED:
                conn.close_connection(error_code=exc.error_code)
            return self._end(linger=True)
        events: list[Event] = []
        for _ in range(cast(Any, conn).take_silent_frames() if _TUNED else 0):
            self._idle_frame()  # frames h2 took without an event: on a closed stream, say
        for event in received:
            if self._guard.reason is None:
                self._translate(event, events)
        if self._guard.reason is not None:
            # One log line for the whole connection; what this batch asked is dropped.
            log.info("%s: %s; GOAWAY ENHANCE_YOUR_CALM", self.peer, self._guard.reason)
            if conn.state_machine.state is not h2.connection.ConnectionState.CLOSED:
                conn.close_connection(error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            return self._end(linger=True)
        if self.closing:
            events.append(ConnectionEnded())
        elif oversized_frame_pending(self.h2):
            log.info("%s: HTTP/2 frame larger than SETTINGS_MAX_FRAME_SIZE, closing",
                     self.peer)
            conn.close_connection(error_code=h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
            events.extend(self._end(linger=False))
        return events

    def next_events(self, now: float) -> list[Event]:
        """h2 reports every event of the bytes it was given at once: nothing is pending."""
        return []

    def _end(self, linger: bool) -> list[Event]:
        self.closing = True
        self.linger = linger
        return [ConnectionEnded(linger=linger)]

    def _translate(self, event: Any, out: list[Event]) -> None:
        kind = type(event)
        if kind is h2.events.RequestReceived:
            if event.priority_updated is not None:
                self._headers_priority = event.stream_id
            self._on_request(event, out)
        elif kind is h2.events.DataReceived:
            if event.data:
                out.append(BodyReceived(event.stream_id, event.data,
                                        event.flow_controlled_length))
            else:
                # An empty DATA frame keeps nothing, but padding still counts.
                self.ack(event.flow_controlled_length, event.stream_id)
                self._idle_frame()
        elif kind is h2.events.StreamEnded:
            # h2 reports the end of a request here, also when it came with the headers.
            if event.stream_id in self.open:
                out.append(BodyEnded(event.stream_id))
        elif kind is h2.events.StreamReset:
            self.spend_reset(by_client=True)
            self._abort(event.stream_id, out)
        elif kind is h2.events.TrailersReceived:
            try:
                check_trailers(event.headers)
            except MalformedRequest as exc:
                log.info("%s: malformed trailers on stream %d (%s); reset", self.peer,
                         event.stream_id, exc)
                self._abort(event.stream_id, out)
                self.reset(event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        elif kind is StreamError:
            # Reset by the rules of ``stream_errors``; counted as a reset, so a flood of
            # them is a flood of resets.
            if self.spend_reset(by_client=False):
                log.info("%s: stream %d: %s; reset (%s)", self.peer, event.stream_id,
                         event.reason, event.error_code.name)
            self._abort(event.stream_id, out)
        elif kind is h2.events.WindowUpdated:
            if not self.open:
                self._idle_frame()  # nothing is being sent: the update is for nothing
            out.append(WindowOpened(event.stream_id))
        elif kind is h2.events.RemoteSettingsChanged:
            if not self.greeted:
                self.greeted = True  # the client's first SETTINGS: the preface is complete
            else:
                self._idle_frame()
            out.append(WindowOpened(0))
        elif kind is h2.events.PingReceived or kind is h2.events.SettingsAcknowledged \
                or kind is h2.events.UnknownFrameReceived:
            self._idle_frame()
        elif kind is h2.events.PriorityUpdated:
            # Priority carried by a request's HEADERS (h2 reports it right after the
            # request) is part of that request; a PRIORITY frame moves nothing forward.
            if event.stream_id == self._headers_priority:
                self._headers_priority = 0
            else:
                self._idle_frame()
        elif kind is h2.events.ConnectionTerminated:
            log.debug("%s: GOAWAY from peer (%s)", self.peer, event.error_code)
            self.closing = True

    def _on_request(self, event: h2.events.RequestReceived, out: list[Event]) -> None:
        sid = event.stream_id
        if self.draining_after is not None and sid > self.draining_after:
            # Opened after our GOAWAY crossed it: refused, so the client may retry it on a
            # new connection (RFC 9113 section 8.7).
            self.spend_reset(by_client=False)
            self.reset(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        try:
            headers = request_headers(event.headers)
        except MalformedRequest as exc:
            if self.spend_reset(by_client=False):
                log.info("%s: malformed request on stream %d (%s); reset", self.peer, sid,
                         exc)
            self.reset(sid, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        ended = event.stream_ended is not None
        length = headers.get("content-length")
        if ended and length not in (None, "0"):
            # No body follows, yet one was announced (RFC 9113 section 8.1.1).
            if self.spend_reset(by_client=False):
                log.info("%s: request on stream %d ended with content-length %s; reset",
                         self.peer, sid, length)
            self.reset(sid, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        self.open.add(sid)
        out.append(RequestStarted(sid, headers, ended))

    def _abort(self, stream_id: int, out: list[Event]) -> None:
        if stream_id in self.open:
            self.open.discard(stream_id)
            out.append(StreamAborted(stream_id))

    # -- budgets ---------------------------------------------------------------------------

    def spend_reset(self, by_client: bool) -> bool:
        """Count one stream reset against the budget (``FloodGuard.reset``)."""
        return self._guard.reset(self._now, by_client)

    def _idle_frame(self) -> None:
        self._guard.idle_frame(self._now)

    # -- sending ---------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data: bytes = self.h2.data_to_send()
        if self._raw_frames:
            data += b"".join(self._raw_frames)
            self._raw_frames.clear()
        return data

    def recycle(self, data: bytes) -> None:
        """``data_to_send``'s ``data`` is written: the tuned h2 may reuse it (``tuning``)."""
        recycle = getattr(self.h2, "recycle", None)
        if recycle is not None:
            recycle(data)

    def send_head(self, stream_id: int, status: int, headers: Sequence[tuple[str, str]],
                  end: bool) -> None:
        if type(headers) is tuple and _TUNED:  # prepared once: its encoded bytes are kept
            block: Any = head_block(status, headers)
        else:
            block = [(":status", str(status)), *headers]
        try:
            self.h2.send_headers(stream_id, block, end_stream=end)
        except h2.exceptions.ProtocolError:
            # Reset by the peer, perhaps already forgotten by h2 (then its id is "too
            # low"), or the connection closed on an error: either way nobody listens.
            raise StreamClosed(f"stream {stream_id} closed") from None

    def send_informational(self, stream_id: int, status: int,
                           headers: Sequence[tuple[str, str]]) -> None:
        """A 1xx HEADERS frame (e.g. 103 Early Hints); the final response follows."""
        self.send_head(stream_id, status, headers, False)

    def sendable(self, stream_id: int, size: int) -> int:
        """How much of ``size`` bytes may be sent now: what the windows allow."""
        try:
            window = self.h2.local_flow_control_window(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            raise StreamClosed(f"stream {stream_id} closed") from None
        return min(window, size)

    def send_whole(self, stream_id: int, data: bytes | memoryview, end: bool) -> bool:
        """Queue all of ``data`` if the windows allow it now (the common case, in one
        call); False when they do not, and nothing was queued."""
        if _TUNED:
            try:
                return bool(cast(Any, self.h2).try_send_data(stream_id, data, end))
            except h2.exceptions.ProtocolError:
                raise StreamClosed(f"stream {stream_id} closed") from None
        if self.sendable(stream_id, len(data)) < len(data):
            return False
        self.send_data(stream_id, data, end)
        return True

    def framed_chunk(self, stream_id: int, size: int) -> Any:
        """Room for ``size`` body bytes laid out as their frames, for a file read to fill
        (``framed``); None with stock h2, or when the windows do not allow them now."""
        return cast(Any, self.h2).framed_chunk(stream_id, size) if _TUNED else None

    def send_framed(self, stream_id: int, chunk: Any, end: bool) -> bool:
        """Queue a filled ``framed_chunk``; False (nothing queued) if it no longer may go."""
        try:
            return bool(cast(Any, self.h2).send_framed(stream_id, chunk, end))
        except h2.exceptions.ProtocolError:
            raise StreamClosed(f"stream {stream_id} closed") from None

    def send_data(self, stream_id: int, data: bytes | memoryview, end: bool) -> None:
        """Queue ``data`` (within ``sendable``) in frames the peer allows; empty with ``end``
        just ends the stream. The bytes are copied: the caller may reuse its buffer."""
        try:
            if len(data) <= self.h2.max_outbound_frame_size:
                if data:
                    if type(data) is memoryview and not hasattr(self.h2, "send_data_run"):
                        data = data.tobytes()  # stock h2 keeps what it is given
                    self.h2.send_data(stream_id, data, end_stream=end)
                elif end:
                    self.h2.end_stream(stream_id)
            elif hasattr(self.h2, "send_data_run"):  # the tuned h2 (``tuning``)
                self.h2.send_data_run(stream_id, data, end)
            else:
                limit = self.h2.max_outbound_frame_size
                for start in range(0, len(data), limit):
                    self.h2.send_data(stream_id, bytes(data[start:start + limit]),
                                      end_stream=end and start + limit >= len(data))
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            # KeyError: h2 4.1 looks a forgotten stream up by index in ``end_stream``.
            raise StreamClosed(f"stream {stream_id} closed") from None

    def ack(self, size: int, stream_id: int) -> None:
        """Open the windows by ``size``: that much of a body was taken."""
        if size:
            try:
                self.h2.acknowledge_received_data(size, stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass

    def reset(self, stream_id: int, code: int) -> None:
        """RST_STREAM ``code`` (see ``NO_ERROR``...); a stream h2 forgot is left alone."""
        self.open.discard(stream_id)
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass

    def done(self, stream_id: int) -> None:
        """The driver is done with the stream (its handler returned)."""
        self.open.discard(stream_id)

    def refuse(self, stream_id: int, status: int, body: bytes,
               extra: Sequence[tuple[str, str]] = (), *, stop: bool = True) -> None:
        """Answer ``status`` before the body is read; with ``stop``, RST_STREAM(NO_ERROR).

        The reset stops the upload at once, as RFC 9113 section 8.1 allows, but some
        clients (curl 7.88, httpx) then drop the response they were sent. So an answer the
        user should see (405, 503) lets the body arrive instead, acknowledged and dropped
        unread, and only a body too large (413) or stalled (408) is stopped.
        """
        self.open.discard(stream_id)
        try:
            if self.h2.local_flow_control_window(stream_id) < len(body):
                body = b""  # a closed window must not leave the answer unfinished
            self.h2.send_headers(stream_id, [
                (":status", str(status)), ("content-type", "text/plain; charset=utf-8"),
                ("content-length", str(len(body))), *extra,
            ], end_stream=not body)
            if body:
                self.h2.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.ProtocolError:
            pass
        # While the request is still open (the client has more to send), this stops the
        # upload; a request that already ended is closed now and needs no reset.
        if stop:
            self.reset(stream_id, NO_ERROR)

    # -- the end ---------------------------------------------------------------------------

    def goaway(self) -> bool:
        """Tell the peer no new streams will be served; streams in flight may finish.

        The GOAWAY frame is built here rather than by ``h2.close_connection()``: after that
        call h2's connection state machine refuses every frame, so the responses in flight
        could not finish. Returns False: the connection goes on until its streams end.
        """
        if self.closing or self.draining_after is not None:
            return False
        if self.h2.state_machine.state is h2.connection.ConnectionState.CLOSED:
            return False  # a GOAWAY already went out (a protocol error) or came in
        last = self.h2.highest_inbound_stream_id
        self.draining_after = last
        self._raw_frames.append(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())
        return False

    def before_read(self) -> bool:
        """Nothing to announce before a read (HTTP/1.1 sends ``100 Continue`` here)."""
        return False

    def quiet_limit(self, now: float, born: float) -> tuple[float, str]:
        """How long the peer may stay silent with no stream open, and what to call it.

        The preface is timed as a whole: sent a byte at a time, it still must be complete
        within the limit. Afterwards an idle connection is closed after ``idle_timeout``,
        so clients that connect and go quiet cannot hold sockets forever.
        """
        if self.greeted:
            return self.config.idle_timeout, "idle"
        return max(0.0, self.config.preface_timeout - (now - born)), "no preface"

    def quiet(self) -> None:
        """The peer stayed silent past ``quiet_limit``: say goodbye."""
        self.goaway()
        self.closing = True

"""RFC 9113's stream errors kept to their stream, where h2 ends the whole connection.

h2 raises ``ProtocolError`` out of ``receive_data`` for four mistakes that RFC 9113 calls
stream errors, and then closes the connection, so every other request on it goes
unanswered (nginx answers them):

- a body whose length differs from its ``content-length`` (section 8.1.1);
- trailers without END_STREAM (section 8.1);
- a stream that depends on itself (section 5.3.1);
- a stream beyond SETTINGS_MAX_CONCURRENT_STREAMS (section 5.1.2: PROTOCOL_ERROR or
  REFUSED_STREAM; REFUSED_STREAM tells the client it may retry).

``StreamErrorRules`` catches those in h2's per-frame handlers, resets only that stream and
reports a ``StreamError`` event instead. Header blocks are always decoded first, so the
HPACK state stays in step with the peer's. These handlers are h2 internals: the rules are
used only on the h2 versions the suite has run against (``ENABLED``); any other version
keeps h2's stock behaviour, a connection error, which RFC 9113 also allows.
"""

from __future__ import annotations

from typing import Any

import h2
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.stream import StreamState
from hyperframe.frame import DataFrame, HeadersFrame, PriorityFrame

TESTED_H2 = ("4.1", "4.2", "4.3", "4.4")
ENABLED = ".".join(h2.__version__.split(".")[:2]) in TESTED_H2


class StreamError(h2.events.Event):
    """A stream was reset for a malformed request; the connection goes on."""

    def __init__(self, stream_id: int, error_code: ErrorCodes, reason: str) -> None:
        self.stream_id = stream_id
        self.error_code = error_code
        self.reason = reason

    def __repr__(self) -> str:
        return f"<StreamError stream_id:{self.stream_id}, error_code:{self.error_code!r}>"


class StreamErrorRules(h2.connection.H2Connection):
    """h2's connection with the stream errors above kept to their stream."""

    keep_stream_errors = ENABLED

    def _receive_headers_frame(self, frame: HeadersFrame) -> Any:
        if not self.keep_stream_errors:
            return super()._receive_headers_frame(frame)
        sid = frame.stream_id
        stream = self.streams.get(sid)  # a new request (the common case) is not there yet
        if stream is not None and "END_STREAM" not in frame.flags \
                and stream.state_machine.state is StreamState.OPEN:
            # A second header block on an open request: trailers without END_STREAM.
            # Decoded to keep the HPACK state in step; a broken block is h2's connection
            # error, as on h2's own path.
            h2.connection._decode_headers(self.decoder, frame.data)
            return self._stream_error(sid, ErrorCodes.PROTOCOL_ERROR,
                                      "trailers without END_STREAM")
        depends_on_itself = frame.depends_on == sid and "PRIORITY" in frame.flags
        if depends_on_itself:
            frame.depends_on = 0  # read as usual, then reset
        try:
            frames, events = super()._receive_headers_frame(frame)
        except h2.exceptions.TooManyStreamsError:
            with _stream_limit_lifted(self):
                frames, events = super()._receive_headers_frame(frame)
            self._prepare_for_sending(frames)
            return self._stream_error(sid, ErrorCodes.REFUSED_STREAM,
                                      "more concurrent streams than allowed")
        except h2.exceptions.InvalidBodyLengthError as exc:
            return self._stream_error(sid, ErrorCodes.PROTOCOL_ERROR, str(exc))
        if depends_on_itself:
            self._prepare_for_sending(frames)
            return self._stream_error(sid, ErrorCodes.PROTOCOL_ERROR,
                                      "the stream depends on itself")
        return frames, events

    def _receive_data_frame(self, frame: DataFrame) -> Any:
        if not self.keep_stream_errors:
            return super()._receive_data_frame(frame)
        try:
            return super()._receive_data_frame(frame)
        except h2.exceptions.InvalidBodyLengthError as exc:
            sid = frame.stream_id
            frames, events = self._stream_error(sid, ErrorCodes.PROTOCOL_ERROR, str(exc))
            # The frame used the connection's window; no DataReceived will acknowledge it.
            self.acknowledge_received_data(frame.flow_controlled_length, sid)
            return frames, events

    def _receive_priority_frame(self, frame: HeadersFrame | PriorityFrame) -> Any:
        if self.keep_stream_errors and type(frame) is PriorityFrame \
                and frame.depends_on == frame.stream_id:
            sid = frame.stream_id
            stream = self.streams.get(sid)
            if stream is not None and not stream.closed:
                return self._stream_error(sid, ErrorCodes.PROTOCOL_ERROR,
                                          "the stream depends on itself")
            # An idle stream cannot be reset (section 6.4), nor one already closed (held or
            # forgotten by h2, which forgets closed streams when it next counts them).
            return [], []
        return super()._receive_priority_frame(frame)

    def _stream_error(self, stream_id: int, code: ErrorCodes, reason: str) -> Any:
        try:
            self.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass  # already closed: nothing to reset
        return [], [StreamError(stream_id, code, reason)]


class _stream_limit_lifted:
    """Lets one more stream open, so a refused one is created and reset through h2."""

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        code = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
        values = conn.local_settings._settings
        if type(values[code]) is tuple:  # CompactSettings shares it: this connection's own
            values[code] = list(values[code])
        self._values = values[code]  # a deque, or a list

    def __enter__(self) -> None:
        # Above every stream open, not just the limit: one lowered below the streams
        # already open (acknowledged later) must still refuse only the new stream.
        self._saved = self._values[0]
        self._values[0] = 2**31

    def __exit__(self, *exc: object) -> None:
        self._values[0] = self._saved


def oversized_frame_pending(conn: h2.connection.H2Connection) -> bool:
    """True when the incomplete frame h2 is buffering announces an illegal length.

    h2 checks a frame's length only once all of it has arrived, so a peer announcing a
    16 MiB frame would be buffered up to 16 MiB (or wait forever) before its
    FRAME_SIZE_ERROR. Its 9-byte header already tells: refuse it now.
    """
    pending = buffered_bytes(conn)
    if pending is None or len(pending) < 9:
        return False
    return int.from_bytes(pending[:3], "big") > conn.max_inbound_frame_size


def buffered_bytes(conn: h2.connection.H2Connection) -> bytes | bytearray | None:
    """The received bytes h2's frame buffer holds (an incomplete frame), or None where
    this h2 keeps them elsewhere: ``_data`` (4.2+) or ``data`` (4.1)."""
    buffer = conn.incoming_buffer
    pending = getattr(buffer, "_data", None)
    if pending is None:
        pending = getattr(buffer, "data", None)
    return pending if isinstance(pending, (bytes, bytearray)) else None

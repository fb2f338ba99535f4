"""A request's HEADERS frame taken straight from the received bytes, past h2's frame layer.

Receiving one small request costs h2 about 20 us: the bytes are copied into its frame
buffer, parsed into a hyperframe object (flags as a set of names), dispatched, and passed
through the stream rules and h2's per-frame error handling, before the few steps that
matter run. That was a third of a small-file request.

``FastRequests.receive_data`` reads the frame headers itself. A complete HEADERS frame that
opens a new stream, with END_HEADERS and without padding or priority, goes to those steps
directly, in h2's order and through h2's own functions: the stream limit, the HPACK
decoding, the connection's state machine, the new stream, and the stream's transitions
(``H2Stream.receive_headers`` less its field checks where the configuration turns them all
off). Every other frame goes through h2's ``receive_data`` whole, in order: any other
type, a frame cut across reads, a header block with CONTINUATION, a stream id h2 must
judge, a stream beyond the limit, or any moment h2's frame buffer holds bytes of its own
(a partial frame). The client's preface goes to h2 alone, so the first request of a
connection, which comes in the same read, is taken here too. The events, frames and
errors are h2's.

h2 forgets closed streams when it counts the open ones, on each new stream; here that
count is skipped while fewer streams are held than the limit allows, so closed streams can
stay longer (``TunedH2Connection`` forgets most as it ends them). Where a held closed
stream would change an answer, they are forgotten first: a new SETTINGS_INITIAL_WINDOW_SIZE
changes only the windows of streams still open.
"""

from __future__ import annotations

import struct
from typing import Any

import h2.config
import h2.connection
import h2.exceptions
from h2.connection import AllowedStreamIDs, ConnectionInputs
from h2.stream import StreamInputs, StreamState
from h2.utilities import is_informational_response
from hyperframe.exceptions import InvalidDataError, InvalidFrameError
from hyperframe.frame import Frame

from .machines import connection_input, stream_input
from .stream_errors import StreamErrorRules, buffered_bytes

# The frame layout, read here and written by ``tuning``.
FRAME_HEADER = struct.Struct(">HBBBL")  # 24-bit length, type, flags, stream id
HEADERS = 0x1
END_STREAM, END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x4, 0x8, 0x20
_WHOLE_PLAIN = END_HEADERS | _PADDED | _PRIORITY  # a whole block (END_HEADERS) and no
# padding or priority to read: of these flags, only END_HEADERS is set
_STREAM_ID = 0x7FFFFFFF  # the top bit is reserved and ignored on receipt
# RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE: never padded, never in a header block.
_SIMPLE = frozenset({0x3, 0x4, 0x6, 0x7, 0x8})


class FastRequests(StreamErrorRules):
    """h2's connection, with new requests' HEADERS frames received in a few steps."""

    # The configuration that neither checks nor changes received fields, nor decodes them
    # to text: with it a request's header block is passed on as decoded.
    lean_config: h2.config.H2Configuration | None = None

    def receive_data(self, data: Any) -> Any:
        preface = getattr(self.incoming_buffer, "_preamble_len", 0)
        if preface and len(data) > preface and type(preface) is int and self._quiet():
            # A client's first read holds its preface and its first request: h2 checks
            # the preface, and the frames after it come here like any others.
            return [*super().receive_data(data[:preface]), *self.receive_data(data[preface:])]
        if not self._frames_are_ours():
            return super().receive_data(data)
        events: list[Any] = []
        size, start = len(data), 0
        largest = self.max_inbound_frame_size
        while size - start >= 9:
            high, low, kind, flags, stream_id = FRAME_HEADER.unpack_from(data, start)
            length = high << 8 | low
            end = start + 9 + length
            if end > size or length > largest:
                break  # cut across reads, or too long: h2 buffers it or refuses it
            stream_id &= _STREAM_ID
            if kind == HEADERS and flags & _WHOLE_PLAIN == END_HEADERS \
                    and self._opens_stream(stream_id):
                events += self._request(stream_id, bytes(data[start + 9:end]),
                                        bool(flags & END_STREAM))
            elif kind in _SIMPLE:
                events += self._simple_frame(memoryview(data)[start:end])
            else:
                events += super().receive_data(data[start:end])
                if not self._frames_are_ours():  # a header block goes on in CONTINUATION
                    start = end
                    break
            largest = self.max_inbound_frame_size  # a SETTINGS ACK may change it
            start = end
        if start < size:
            events += super().receive_data(data[start:])
        return events

    def _simple_frame(self, frame_bytes: memoryview) -> list[Any]:
        """h2's ``receive_data`` for one whole frame without padding that is no part of a
        header block: the same parsing, errors and handling, less the frame buffer (which
        copies the bytes and checks what such a frame cannot have)."""
        try:
            try:
                frame, length = Frame.parse_frame_header(frame_bytes[:9])
            except (InvalidDataError, InvalidFrameError) as err:
                raise h2.exceptions.ProtocolError(
                    f"Received frame with invalid header: {err!s}") from err
            try:
                frame.parse_body(frame_bytes[9:9 + length])
            except InvalidDataError as err:
                raise h2.exceptions.ProtocolError(
                    "Received frame with non-compliant data") from err
            except InvalidFrameError as err:
                raise h2.exceptions.FrameDataMissingError(
                    "Frame data missing or invalid") from err
            events: list[Any] = self._receive_frame(frame)
            return events
        except h2.exceptions.ProtocolError as exc:
            self._terminate_connection(exc.error_code)
            raise

    def _frames_are_ours(self) -> bool:
        """True when h2's frame buffer is empty (the preface read, no partial frame, no
        header block waiting for CONTINUATION) and nothing but a server reads frames."""
        buffer = self.incoming_buffer
        pending = buffered_bytes(self)
        return (pending is not None and not pending
                and not getattr(buffer, "_preamble_len", 1)
                and not getattr(buffer, "_headers_buffer", True)
                and self._quiet())

    def _quiet(self) -> bool:
        """A server's connection with h2's silent logger: nobody sees h2's trace lines,
        which the steps taken here would leave out."""
        return (not self.config.client_side
                and type(self.config.logger) is h2.config.DummyLogger)

    def _opens_stream(self, stream_id: int) -> bool:
        """True for a new client stream within the limit; h2 judges anything else."""
        if not stream_id & 1 or stream_id <= self.highest_inbound_stream_id:
            return False
        most = self.local_settings.max_concurrent_streams
        # Fewer streams held than the limit: fewer open, without h2's walk over them all.
        return len(self.streams) < most or self._open_streams(1) < most

    def _request(self, stream_id: int, block: bytes, end_stream: bool) -> list[Any]:
        """What h2's ``_receive_headers_frame`` and ``_receive_frame`` do for this frame,
        and its ``receive_data`` for a protocol error: end the connection, then raise."""
        try:
            headers = h2.connection._decode_headers(self.decoder, block)
            events = connection_input(self.state_machine, ConnectionInputs.RECV_HEADERS)
            stream = self._begin_new_stream(stream_id, AllowedStreamIDs.ODD)
            frames: list[Any] = []
            if self.config is self.lean_config and not is_informational_response(headers):
                stream_events = _request_received(stream, headers, end_stream)
            else:
                frames, stream_events = stream.receive_headers(
                    headers, end_stream, self.config.header_encoding)
        except h2.exceptions.ProtocolError as exc:
            self._terminate_connection(exc.error_code)
            raise
        self._prepare_for_sending(frames)
        return events + stream_events

    def _flow_control_change_from_settings(self, old_value: Any, new_value: Any) -> None:
        self._open_streams(1)  # forgets closed streams: they have no window to change
        super()._flow_control_change_from_settings(old_value, new_value)

    def _inbound_flow_control_change_from_settings(self, old_value: Any,
                                                   new_value: Any) -> None:
        self._open_streams(1)
        super()._inbound_flow_control_change_from_settings(old_value, new_value)

    def drop_if_closed(self, stream: Any) -> None:
        """Forget a stream both sides have ended, as h2 does when it next counts open
        streams (when a stream opens): ``streams`` then holds only live ones, and the
        limit check above rarely walks it."""
        machine, sid = stream.state_machine, stream.stream_id
        if machine.state is StreamState.CLOSED and self.streams.get(sid) is stream:
            del self.streams[sid]
            self._closed_streams[sid] = machine.stream_closed_by


def _request_received(stream: Any, headers: Any, end_stream: bool) -> list[Any]:
    """``H2Stream.receive_headers`` for a request's fields under ``lean_config``: the same
    steps, less the pass that would check, change or decode the fields (all off there)."""
    machine = stream.state_machine
    events = stream_input(machine, StreamInputs.RECV_HEADERS)
    if end_stream:
        ended = stream_input(machine, StreamInputs.RECV_END_STREAM)
        events[0].stream_ended = ended[0]
        events += ended
    stream._initialize_content_length(headers)
    events[0].headers = list(headers)
    return events

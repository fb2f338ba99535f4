"""h2 with some costs of a busy or idle connection taken out; the protocol logic is h2's.

- ``TunedH2Connection`` writes DATA and HEADERS frames into the send buffer with one
  ``struct.pack`` each, where h2 serializes every frame through hyperframe's generic path
  (flag objects, padding joins) and then checks the sizes again in a generator: about 5 us
  of the 25 us h2 spends on a small response. Other frames, and padded or prioritized ones,
  still go through hyperframe.
- It also sends a response's HEADERS (and its DATA that fits the windows and one frame)
  without building frame objects: the connection's and the stream's state machines take
  the same inputs, in the same order, as in h2's own ``send_headers``/``send_data``, and
  the windows shrink the same; only the frame objects, the debug logging and the passes
  that are off (header validation) are skipped. Anything else (informational responses,
  trailers, priority, padding, a stream h2 does not hold, a body the windows refuse) takes
  h2's path, with its errors.
- It dispatches received frames without ``repr(frame)``, which h2 formats for a trace
  line its silent default logger drops.
- It receives a new request's HEADERS frame past h2's frame layer (``fast_requests``),
  steps the state machines by value (``machines``), forgets a stream as soon as both
  sides have ended it, and counts the frames h2 takes without an event, for the
  idle-frame budget.
- Its HPACK coders come from ``hpack_fields``: ``FieldEncoder`` encodes each response field
  once, ``BlockDecoder`` decodes a repeated request block once.
"""

from __future__ import annotations

import os
import struct
import weakref
from typing import Any, cast

import h2
import h2.config
import h2.connection
import h2.settings
import hpack
from h2.connection import ConnectionInputs
from h2.errors import ErrorCodes
from h2.exceptions import StreamClosedError, StreamIDTooLowError
from h2.stream import StreamInputs
from hyperframe.frame import DataFrame, Frame, HeadersFrame, RstStreamFrame

from .fast_requests import END_HEADERS, END_STREAM, FRAME_HEADER, HEADERS, FastRequests
from .framed import SPARE_MAX, FramedChunk, keep, take_spare
from .machines import connection_input, stream_input
from .stream_errors import StreamErrorRules

# These paths reach into h2's and hpack's internals: they are used only on the versions the
# suite has run against, checked once here; any other version runs stock h2. Setting
# HYPER2WEB_TUNED=0 turns them off too (``make test`` runs the server tests that way).
TESTED = {"h2": ("4.1", "4.2", "4.3", "4.4"), "hpack": ("4.0", "4.1", "4.2")}


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


ENABLED = (_minor(h2.__version__) in TESTED["h2"]
           and _minor(hpack.__version__) in TESTED["hpack"]
           and os.environ.get("HYPER2WEB_TUNED", "1") != "0")

_DATA, _CONTINUATION = 0x0, 0x9
_SETTINGS = 0x4
_SETTING = struct.Struct(">HL")  # one setting in a SETTINGS frame: its code and value
_BULK = 64 * 1024  # a body this large, alone in the send buffer, is joined in one copy

# Received fields are checked and decoded by ``fields.request_headers`` in one pass (a
# malformed request resets its stream); sent ones come from Response, which lower-cases
# names and refuses line breaks in values. So h2's own passes over every field, both ways,
# are skipped. One configuration serves every server connection: h2 only reads it.
SERVER_CONFIG = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                          validate_inbound_headers=False,
                                          normalize_inbound_headers=False,
                                          validate_outbound_headers=False,
                                          normalize_outbound_headers=False)


def _utf8(text: str | bytes) -> bytes:
    return text if type(text) is bytes else text.encode("utf-8")  # type: ignore[union-attr]


def _reset(stream_id: int, code: Any) -> RstStreamFrame:
    frame = RstStreamFrame(stream_id)
    frame.error_code = code
    return frame


def _write_frame(buffer: bytearray, kind: int, bits: int, stream_id: int,
                 payload: bytes | memoryview) -> None:
    """Append one frame (header and payload) to ``buffer``."""
    length = len(payload)
    buffer += FRAME_HEADER.pack((length >> 8) & 0xFFFF, length & 0xFF, kind, bits,
                                 stream_id & 0x7FFFFFFF)
    buffer += payload


class _Dispatch:
    """h2's frame dispatch table, without its ten bound methods per connection (about 1 KB
    of every idle connection): the method for a frame class is bound when a frame comes.

    It holds its connection weakly. h2's own table of bound methods, like a strong
    reference here, makes every connection a reference cycle that only the cyclic garbage
    collector frees, so a closed connection would wait for a collection (which then scans
    all of them) instead of going at once.
    """

    __slots__ = ("_conn", "_names")

    def __init__(self, conn: Any, names: dict[type, str]) -> None:
        self._conn = weakref.ref(conn)
        self._names = names

    def __getitem__(self, kind: type) -> Any:
        return getattr(self._conn(), self._names[kind])  # KeyError for an unknown class


class TunedH2Connection(FastRequests):
    """``h2.connection.H2Connection`` with a faster way into its send buffer (and RFC 9113's
    stream errors kept to their stream: ``stream_errors``)."""

    lean_config = SERVER_CONFIG
    _silent_frames = 0
    _dispatch_names: dict[type, str] | None = None
    _bulk: tuple[bytearray, int] | None = None  # the last framed chunk, and its size

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = getattr(self, "_frame_dispatch_table", None)
        if type(table) is dict:
            names = TunedH2Connection._dispatch_names
            if names is None:
                names = {kind: method.__name__ for kind, method in table.items()}
                TunedH2Connection._dispatch_names = names
            self._frame_dispatch_table = _Dispatch(self, names)  # type: ignore[assignment]

    def _receive_frame(self, frame: Frame) -> Any:
        """h2's own (4.1 to 4.4 alike), without ``repr(frame)``: h2 formats every frame it
        receives for a trace line before its quiet default logger drops it."""
        if type(self.config.logger) is not h2.config.DummyLogger:
            return super()._receive_frame(frame)
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except StreamClosedError as exc:
            if not self._stream_is_closed_by_reset(exc.stream_id):
                raise
            self._prepare_for_sending([_reset(exc.stream_id, exc.error_code)])
            events = exc._events
        except StreamIDTooLowError as exc:
            if self._stream_is_closed_by_reset(exc.stream_id):
                self._prepare_for_sending([_reset(exc.stream_id, ErrorCodes.STREAM_CLOSED)])
                events = []
            elif self._stream_is_closed_by_end(exc.stream_id):
                raise StreamClosedError(exc.stream_id) from exc
            else:
                raise
        else:
            self._prepare_for_sending(frames)
        if not events and type(frame) is not DataFrame:  # DATA still in flight is no flood
            self._silent_frames += 1
        return events

    def take_silent_frames(self) -> int:
        """Frames received since the last call that raised no event (a WINDOW_UPDATE or
        RST_STREAM on a closed stream, say; not DATA, which a reset finds in flight): they
        too count against the idle-frame budget."""
        count, self._silent_frames = self._silent_frames, 0
        return count

    def _prepare_for_sending(self, frames: list[Frame]) -> None:
        buffer = getattr(self, "_data_to_send", None)
        if not isinstance(buffer, bytearray):  # an h2 that keeps it otherwise
            super()._prepare_for_sending(frames)
            return
        for frame in frames:
            kind = type(frame)
            if kind is DataFrame or kind is HeadersFrame:
                plain = cast("DataFrame | HeadersFrame", frame)  # what ``kind`` just checked
                flags = plain.flags._flags
                if not plain.pad_length and "PADDED" not in flags \
                        and "PRIORITY" not in flags:
                    body = plain.data
                    if type(body) is memoryview:
                        body = body.tobytes()
                    plain.body_len = len(body)
                    bits = END_STREAM if "END_STREAM" in flags else 0
                    if "END_HEADERS" in flags:
                        bits |= END_HEADERS
                    _write_frame(buffer, plain.type, bits, plain.stream_id, body)
                    continue
            buffer += frame.serialize()

    def initiate_connection(self) -> None:
        """h2's, with our SETTINGS written straight into the send buffer: h2 builds and
        serializes a frame object, once for every connection."""
        buffer = getattr(self, "_data_to_send", None)
        if type(buffer) is not bytearray or not self._quiet():
            super().initiate_connection()
            return
        connection_input(self.state_machine, ConnectionInputs.SEND_SETTINGS)
        payload = b"".join(_SETTING.pack(code & 0xFF, value)
                           for code, value in self.local_settings.items())
        _write_frame(buffer, _SETTINGS, 0, 0, payload)

    def send_headers(self, stream_id: int, headers: Any, end_stream: bool = False,
                     priority_weight: int | None = None, priority_depends_on: int | None = None,
                     priority_exclusive: bool | None = None) -> None:
        buffer = getattr(self, "_data_to_send", None)
        stream = self.streams.get(stream_id)
        if stream is None or type(buffer) is not bytearray or self.config.client_side \
                or priority_weight is not None or priority_depends_on is not None \
                or priority_exclusive is not None or stream.state_machine.headers_sent \
                or type(headers) not in (list, tuple) or not headers \
                or headers[0][0] not in (":status", b":status") \
                or headers[0][1][:1] in ("1", b"1") \
                or self.config.validate_outbound_headers or self.config.normalize_outbound_headers:
            super().send_headers(stream_id, headers, end_stream, priority_weight,
                                 priority_depends_on, priority_exclusive)
            return
        # A final response on a stream the peer opened, as h2 would make it.
        connection_input(self.state_machine, ConnectionInputs.SEND_HEADERS)
        machine = stream.state_machine
        stream_input(machine, StreamInputs.SEND_HEADERS)
        encoder = self.encoder
        if getattr(encoder, "takes_text", False):  # FieldEncoder: str fields, blocks cached
            block = encoder.encode(headers)
        else:
            block = encoder.encode([(_utf8(name), _utf8(value)) for name, value in headers])
        if end_stream:
            stream_input(machine, StreamInputs.SEND_END_STREAM)
        stream.request_method = None  # as h2 records it from the fields it sends
        limit = stream.max_outbound_frame_size or len(block)
        bits = (END_STREAM if end_stream else 0) | (END_HEADERS if len(block) <= limit else 0)
        _write_frame(buffer, HEADERS, bits, stream_id, block[:limit])
        for start in range(limit, len(block), limit):
            bits = END_HEADERS if start + limit >= len(block) else 0
            _write_frame(buffer, _CONTINUATION, bits, stream_id, block[start:start + limit])
        if end_stream:
            self.drop_if_closed(stream)

    def send_data(self, stream_id: int, data: Any, end_stream: bool = False,
                  pad_length: Any = None) -> None:
        if pad_length is not None or len(data) > self.max_outbound_frame_size \
                or not self.try_send_data(stream_id, data, end_stream):
            super().send_data(stream_id, data, end_stream, pad_length)

    def try_send_data(self, stream_id: int, data: Any, end_stream: bool) -> bool:
        """Send ``data`` now if the windows allow all of it, in DATA frames of the largest
        size the peer allows; False (nothing sent) otherwise.

        One pass of the state machines and one change of each window for the whole body,
        as h2 would leave them after one ``send_data`` per frame.
        """
        buffer: Any = getattr(self, "_data_to_send", None)  # a bytearray: checked in _sending
        size = len(data)
        stream = self._sending(stream_id, size, buffer, end_stream)
        if stream is None:
            return False
        limit = self.max_outbound_frame_size
        if size <= limit:
            _write_frame(buffer, _DATA, END_STREAM if end_stream else 0, stream_id, data)
        else:
            self._write_frames(buffer, stream_id, data, end_stream, limit)
        if end_stream:
            self.drop_if_closed(stream)
        return True

    def _sending(self, stream_id: int, size: int, buffer: Any, end_stream: bool) -> Any:
        """The stream, its state machines and both windows moved on for ``size`` body bytes
        (and the stream's end) if all of them may go now; None (nothing changed) if not."""
        stream = self._fits(stream_id, size)
        if stream is None or type(buffer) is not bytearray or size == 0:
            return None
        connection_input(self.state_machine, ConnectionInputs.SEND_DATA)
        stream_input(stream.state_machine, StreamInputs.SEND_DATA)
        if end_stream:
            stream_input(stream.state_machine, StreamInputs.SEND_END_STREAM)
        stream.outbound_flow_control_window -= size
        self.outbound_flow_control_window -= size
        return stream

    def framed_chunk(self, stream_id: int, size: int) -> FramedChunk | None:
        """Room for the next ``size`` body bytes of ``stream_id`` laid out as its frames
        (``framed``), when the windows allow them all now; None otherwise."""
        if size < _BULK or self._fits(stream_id, size) is None:
            return None
        return FramedChunk(size, self.max_outbound_frame_size)

    def _fits(self, stream_id: int, size: int) -> Any:
        """The stream, if both windows take ``size`` more body bytes now; else None."""
        stream = self.streams.get(stream_id)
        if stream is None or size > self.outbound_flow_control_window \
                or size > stream.outbound_flow_control_window:
            return None
        return stream

    def send_framed(self, stream_id: int, chunk: FramedChunk, end_stream: bool) -> bool:
        """Queue a filled ``framed_chunk``, as ``try_send_data`` would have queued its
        bytes; False (nothing queued) if the windows, the stream or the peer's frame size
        changed since it was made so that they no longer allow it."""
        buffer = getattr(self, "_data_to_send", None)
        if chunk.limit > self.max_outbound_frame_size:
            return False
        stream = self._sending(stream_id, chunk.size, buffer, end_stream)
        if stream is None:
            return False
        frames = chunk.frames(stream_id, end_stream)
        if buffer:  # behind other frames: copied after them, as ``_write_frames`` does
            buffer += frames
            keep(frames)
        else:  # the send buffer itself, kept again once written (``recycle``)
            self._data_to_send = frames
            self._bulk = (frames, len(frames))
        if end_stream:
            self.drop_if_closed(stream)
        return True

    def _write_frames(self, buffer: bytearray, stream_id: int, data: Any, end_stream: bool,
                      limit: int) -> None:
        view = memoryview(data)
        size = len(view)
        pack = FRAME_HEADER.pack
        parts: list[bytes | memoryview] = []
        for start in range(0, size, limit):
            piece = view[start:start + limit]
            length = len(piece)
            bits = END_STREAM if end_stream and start + length >= size else 0
            parts.append(pack((length >> 8) & 0xFFFF, length & 0xFF, _DATA, bits, stream_id))
            parts.append(piece)
        if buffer or size < _BULK:
            for part in parts:  # straight into the send buffer: one copy
                buffer += part
            return
        # A large body alone: one copy into a buffer of its exact size, where growing the
        # send buffer frame by frame would copy it many times over. One written before is
        # used again when it has that size (``recycle``): each chunk of a large file does.
        bulk = take_spare(size + FRAME_HEADER.size * len(parts) // 2)
        if bulk is None:
            bulk = bytearray().join(parts)
        else:
            end = 0
            for part in parts:
                start, end = end, end + len(part)
                bulk[start:end] = part
        self._data_to_send = bulk
        self._bulk = (bulk, len(bulk))

    def recycle(self, data: Any) -> None:
        """``data``, from ``data_to_send``, has been written: keep it for the next large
        body if it is a framed chunk, as made above. A fresh buffer of that size is a fresh
        mapping from the system whose every page faults when first written: about a tenth
        of a large download's time. Buffers of other sizes (a batch of small answers) would
        only crowd the pool: no other body would ever fit them exactly."""
        bulk, self._bulk = self._bulk, None
        if bulk is not None and data is bulk[0] and len(data) == bulk[1] <= SPARE_MAX:
            keep(data)

    def send_data_run(self, stream_id: int, data: bytes | memoryview,
                      end_stream: bool) -> None:
        """``data`` within the windows, as DATA frames of the largest size the peer allows
        (``try_send_data``); where h2 must check it, one ``send_data`` per frame."""
        if not self.try_send_data(stream_id, data, end_stream):
            limit = self.max_outbound_frame_size
            size = len(data)
            for start in range(0, max(size, 1), limit):
                last = start + limit >= size
                super().send_data(stream_id, data[start:start + limit], end_stream and last)

    def data_to_send(self, amount: int | None = None) -> bytes:
        """Everything queued, handed over as it is: the buffer is not copied, and the
        connection starts a new one (h2 copies it into ``bytes`` first)."""
        buffer = getattr(self, "_data_to_send", None)
        if amount is not None or type(buffer) is not bytearray:
            return super().data_to_send(amount)
        self._data_to_send = bytearray()
        return buffer  # type: ignore[return-value]  # a bytearray serves as bytes here


def new_connection(config: h2.config.H2Configuration) -> h2.connection.H2Connection:
    """A server-side h2 connection: tuned where ``ENABLED``, else h2's own (with the stream
    error rules, which have a version check of their own)."""
    if not ENABLED:
        return StreamErrorRules(config=config)
    conn = TunedH2Connection(config=config)
    from .hpack_fields import BlockDecoder, FieldEncoder

    conn.encoder = FieldEncoder()  # type: ignore[assignment]
    decoder = BlockDecoder()
    decoder.max_header_list_size = conn.decoder.max_header_list_size
    decoder.max_allowed_table_size = conn.decoder.max_allowed_table_size
    conn.decoder = decoder
    return conn

"""Replaying a client's byte stream into two server h2 connections, to compare them.

Used by test_fast_requests: each case is a client's byte stream (made by h2's own client
where it can, by hand where not), fed to both connections in the same reads, cut several
ways; the events, the bytes queued, the error raised and the streams' states must be equal.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
from h2.settings import SettingCodes

from hyper2web.server import tuning
from hyper2web.server.fast_requests import FastRequests
from hyper2web.server.stream_errors import StreamErrorRules

Conn = h2.connection.H2Connection
Action = Callable[[Conn], object]  # something the server does between reads
Step = list[bytes] | Action  # received bytes (preface and frames), or an action
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, WINDOW, CONTINUATION = 0, 1, 2, 3, 4, 6, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
LEAN = {"header_encoding": None, "validate_inbound_headers": False,
        "normalize_inbound_headers": False, "validate_outbound_headers": False,
        "normalize_outbound_headers": False}
HEAD = HEADERS, END_HEADERS | END_STREAM  # a whole request's HEADERS frame
CHUNKINGS = ["whole", "1", "7", "9", "10", "13", "64", "frames", "head+rest"]


def request(path: str = "/", method: str = "GET", *extra: tuple[str, str]) -> list[Any]:
    """A valid request's fields, so that h2's validating configuration takes it too."""
    return [(":method", method), (":scheme", "https"), (":authority", "localhost"),
            (":path", path), *extra]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One raw frame, for what h2's client refuses to send."""
    size = len(payload)
    return struct.pack(">HBBBL", size >> 8, size & 0xFF, kind, flags, stream_id) + payload


def split(data: bytes) -> list[bytes]:
    """The preface and each frame apart: the reads of the "frames" chunking."""
    pieces, start = [], 0
    if data.startswith(PREFACE):
        pieces, start = [PREFACE], len(PREFACE)
    while start < len(data):
        end = start + 9 + int.from_bytes(data[start:start + 3], "big")
        pieces.append(data[start:end])
        start = end
    return pieces


class Wire:
    """A client's bytes, in order: h2's client's frames and raw ones (HPACK kept in step)."""

    def __init__(self) -> None:
        self.client = Conn(h2.config.H2Configuration(client_side=True))
        self.client.initiate_connection()
        self.pieces: list[bytes] = []

    def cut(self) -> list[bytes]:
        """Everything so far, as one step; the next step starts empty."""
        pieces, self.pieces = self.pieces + split(self.client.data_to_send()), []
        return pieces

    def raw(self, kind: int, flags: int, stream_id: int, payload: bytes = b"") -> Wire:
        self.pieces += split(self.client.data_to_send())
        self.pieces.append(frame(kind, flags, stream_id, payload))
        return self

    def block(self, headers: list[Any]) -> bytes:
        return self.client.encoder.encode(headers)

    def get(self, stream_id: int, end: bool = True, **priority: Any) -> Wire:
        self.client.send_headers(stream_id, request(f"/{stream_id}"), end, **priority)
        return self


def chunked(pieces: list[bytes], how: str) -> list[bytes]:
    """The reads a step arrives in: all at once, each frame alone, the first frame (or the
    preface) then the rest, or every ``how`` bytes."""
    data = b"".join(pieces)
    named = {"whole": [data], "frames": pieces, "head+rest": [pieces[0], data[len(pieces[0]):]]}
    size = int(how) if how.isdigit() else 0
    return named.get(how) or [data[start:start + size] for start in range(0, len(data), size)]


def key(value: Any) -> Any:
    """An event as its type and every attribute (nested events too), comparable."""
    if isinstance(value, h2.events.Event):
        return type(value).__name__, {k: key(v) for k, v in sorted(vars(value).items())}
    return repr(value)


def snapshot(conn: Conn) -> dict[str, Any]:
    """The streams' states: a closed stream counts as one however it is remembered."""
    closed, held = dict(conn._closed_streams), {}
    for sid, stream in conn.streams.items():
        if stream.closed:
            closed[sid] = stream.closed_by
        else:
            held[sid] = (stream.state_machine.state, stream.inbound_flow_control_window,
                         stream.outbound_flow_control_window)
    return {"held": held, "closed": closed, "state": conn.state_machine.state,
            "highest": conn.highest_inbound_stream_id,
            "windows": (conn._inbound_flow_control_window_manager.current_window_size,
                        conn.outbound_flow_control_window),
            "settings": (dict(conn.local_settings), dict(conn.remote_settings))}


def served(conn: Conn, steps: list[Step], how: str) -> list[Any]:
    """What a server does with ``steps``: per read (or action), the events and the bytes
    queued; the first error ends it, as it ends a server's connection."""
    conn.initiate_connection()
    record: list[Any] = [bytes(conn.data_to_send())]
    for step in steps:
        for read in [step] if callable(step) else chunked(step, how):
            try:
                events = [] if callable(read) else conn.receive_data(read)
                if callable(read):
                    read(conn)
            except Exception as exc:  # any error, so that a different one shows
                code = getattr(exc, "error_code", None)
                text = re.sub(" at 0x[0-9a-f]+", "", str(exc))  # no addresses
                record += [(type(exc).__name__, code, text, bytes(conn.data_to_send())),
                           snapshot(conn)]
                return record
            record.append(([key(event) for event in events], bytes(conn.data_to_send())))
    return [*record, snapshot(conn)]


# (the reference, the connection under test): as hyper2web configures h2, with h2's default
# validating configuration, and the tuned connection hyper2web makes. h2 only reads these.
LEAN_CONFIG = h2.config.H2Configuration(client_side=False, **LEAN)
VALIDATING = h2.config.H2Configuration(client_side=False)
VARIANTS: dict[str, tuple[Callable[[], Conn], Callable[[], Conn]]] = {
    "lean": (lambda: StreamErrorRules(LEAN_CONFIG), lambda: FastRequests(LEAN_CONFIG)),
    "validating": (lambda: StreamErrorRules(VALIDATING), lambda: FastRequests(VALIDATING)),
    "tuned": (lambda: StreamErrorRules(LEAN_CONFIG),
              lambda: tuning.new_connection(tuning.SERVER_CONFIG)),
}


def same(steps: list[Step], how: str, variant: str = "lean") -> str:
    """Both connections' records, asserted equal; the reference's, as text to check."""
    make_reference, make_candidate = VARIANTS[variant]
    reference = served(make_reference(), steps, how)
    assert served(make_candidate(), steps, how) == reference
    return repr(reference)


def setting(code: SettingCodes, value: int) -> Action:
    """The server changes a setting: it applies once the client's ACK arrives."""
    return lambda conn: conn.update_settings({code: value})


def respond(*stream_ids: int) -> Action:
    """The server answers each stream, ending its side."""
    return lambda conn: [conn.send_headers(sid, [(":status", "200")], True) for sid in stream_ids]


def priority(depends_on: int, weight: int = 15) -> bytes:
    """A PRIORITY payload (also the priority fields of a HEADERS frame)."""
    return struct.pack(">LB", depends_on, weight)

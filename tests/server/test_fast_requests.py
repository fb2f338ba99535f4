"""``FastRequests`` (and ``TunedH2Connection``) receive any byte stream as ``StreamErrorRules``.

Each case is a client's byte stream (made by h2's own client where it can, by hand where
not), fed to both connections in the same reads, cut several ways: the events, the bytes
queued, the error raised and the streams' states must be the same.
"""

from __future__ import annotations

import re
import struct
import types
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from h2.settings import SettingCodes
from h2.stream import StreamClosedBy

from hyper2web.server import fast_requests, tuning
from hyper2web.server.fast_requests import FastRequests
from hyper2web.server.stream_errors import StreamErrorRules
from tests.server.h2replay import (
    ACK,
    CHUNKINGS,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEAD,
    HEADERS,
    LEAN,
    PADDED,
    PING,
    PRIO,
    PRIORITY,
    RST,
    SETTINGS,
    VARIANTS,
    WINDOW,
    Action,
    Step,
    Wire,
    frame,
    priority,
    request,
    respond,
    same,
    served,
    setting,
)

if not tuning.ENABLED:
    pytest.skip("the tuned connection is off for this h2/hpack", allow_module_level=True)


def continuation() -> list[Step]:
    """A header block over the frame size: h2's client sends HEADERS + CONTINUATION."""
    big = request("/big", "GET", *[(f"x-big-{n}", "v" * 500) for n in range(40)])
    wire = Wire().get(1)
    wire.client.send_headers(3, big, end_stream=True)
    wire.get(5).get(7, end=False)
    block = wire.block(request("/split"))  # by hand, in three pieces, then more requests
    wire.raw(HEADERS, 0, 9, block[:3]).raw(CONTINUATION, 0, 9, block[3:6])
    wire.raw(CONTINUATION, END_HEADERS | END_STREAM, 9, block[6:])
    return [wire.get(11).get(13).cut()]


def bodies() -> list[Step]:
    """content-length right, wrong both ways, and with END_STREAM on the HEADERS."""
    wire = Wire()
    for sid, length, body in ((1, None, b"abc"), (3, "3", b"abc"), (5, "5", b"ab"),
                              (7, "2", b"abcd"), (9, "4", None), (11, "0", b"")):
        fields = request("/up", "POST", *([("content-length", length)] if length else []))
        wire.raw(HEADERS, END_HEADERS | (END_STREAM if body is None else 0), sid,
                 wire.block(fields))
        if body is not None:
            wire.raw(DATA, END_STREAM, sid, body)
    wire.client.send_headers(13, request("/t", "POST"))
    wire.client.send_data(13, b"x")
    wire.raw(HEADERS, END_HEADERS, 13, wire.block([("x-trailer", "1")]))  # no END_STREAM
    return [wire.get(15).cut()]


def priorities() -> list[Step]:
    """PADDED, PRIORITY, a stream depending on itself (HEADERS, PRIORITY; idle, open)."""
    wire = Wire()
    wire.raw(*HEAD[:1], HEAD[1] | PADDED, 1, b"\5" + wire.block(request()) + b"\0" * 5)
    wire.get(3, end=False, priority_weight=200, priority_depends_on=1)
    wire.raw(*HEAD[:1], HEAD[1] | PRIO, 5, priority(5) + wire.block(request("/self")))
    wire.raw(*HEAD[:1], HEAD[1] | PRIO | PADDED, 7,
             b"\2" + priority(1) + wire.block(request()) + b"\0\0")
    wire.raw(PRIORITY, 0, 3, priority(3)).raw(PRIORITY, 0, 101, priority(101))
    wire.raw(PRIORITY, 0, 9, priority(3))
    return [wire.get(9).get(11).cut()]


def mixed() -> list[Step]:
    """Unknown, PING, WINDOW_UPDATE, SETTINGS frames between requests; a client's reset."""
    wire = Wire().get(1).raw(SETTINGS, ACK, 0).raw(0xFA, 0x3, 1, b"ext").get(3)
    wire.client.ping(b"12345678")
    wire.get(5, end=False)
    wire.client.increment_flow_control_window(1000)
    wire.client.increment_flow_control_window(500, stream_id=5)
    wire.client.update_settings({SettingCodes.HEADER_TABLE_SIZE: 100,
                                 SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    wire.raw(WINDOW, 0, 5, struct.pack(">L", 7)).get(7, end=False)
    wire.client.reset_stream(7)
    wire.get(9).raw(DATA, END_STREAM, 7, b"late").raw(RST, 0, 7, struct.pack(">L", 8))
    wire.raw(WINDOW, 0, 7, struct.pack(">L", 1)).raw(0xFA, 0, 0, b"")
    return [wire.get(11).get(13).cut()]


def limit(setup: Action | None) -> list[Step]:
    """More concurrent streams than allowed: two (lowered, acknowledged) or h2's 100."""
    count = 4 if setup else 101
    wire = Wire().raw(SETTINGS, ACK, 0)
    for n in range(count):
        wire.get(2 * n + 1, end=False)
    last = 2 * count - 1
    wire.raw(DATA, END_STREAM, last, b"in flight").raw(RST, 0, 1, struct.pack(">L", 8))
    wire.raw(*HEAD, last + 2, wire.block(request())).raw(*HEAD, last + 4, wire.block(request()))
    return [setup, wire.cut()] if setup else [wire.cut()]


def limit_below_open() -> list[Step]:
    """The limit acknowledged below the streams open, then a new stream."""
    wire = Wire().get(1, end=False).get(3, end=False)
    first = wire.cut()
    return [first, setting(SettingCodes.MAX_CONCURRENT_STREAMS, 1),
            wire.raw(SETTINGS, ACK, 0).get(5).cut()]


def late(frame_bytes: bytes, new_stream: bool) -> list[Step]:
    """A frame on stream 1 after the server ended it; with ``new_stream``, a stream opened
    in between, after which h2 itself no longer holds stream 1 either. Stream 3, answered
    before its request ended, must still take the request's body."""
    wire = Wire().get(1).get(3, end=False)
    first = wire.cut()
    if new_stream:
        wire.get(5)
    return [first, respond(1, 3), wire.cut() + [frame_bytes],
            [frame(DATA, END_STREAM, 3, b"body"), *wire.get(7).cut()]]


def raw_case(*frames: tuple[int, int, int, bytes | list[Any]], before: int = 5) -> list[Step]:
    """Requests 1 to ``before``, then raw frames (a list payload is a header block)."""
    wire = Wire().raw(SETTINGS, ACK, 0)
    for sid in range(1, before + 1, 2):
        wire.get(sid)
    for kind, flags, sid, payload in frames:
        wire.raw(kind, flags, sid, wire.block(payload) if isinstance(payload, list) else payload)
    return [wire.get(0x7FFFFFF1).cut()]


# Each case, and signs in the reference's record that it did what it is named for.
CLOSED = "ConnectionState.CLOSED"
GOAWAY = 7
CASES: dict[str, tuple[Callable[[], list[Step]], str | tuple[str, ...] | dict[str, str]]] = {
    "gets": (lambda: [Wire().get(1).get(3).raw(SETTINGS, ACK, 0).get(5).get(7).cut()],
             "':path', b'/7'"),
    "bodies": (bodies, ("Expected 5 bytes, received 2", "Expected 2 bytes, received 4",
                        "trailers without END_STREAM", "':path', b'/15'")),
    "continuation": (continuation, ("x-big-39", "':path', b'/split'", "':path', b'/13'")),
    "continuation-cut-in": (lambda: raw_case((HEADERS, 0, 7, request()), (*HEAD, 9, request())),
                            "Invalid frame during header block"),
    "priorities": (priorities, ("itself'\", 'stream_id': '5'", "itself'\", 'stream_id': '3'",
                                "'depends_on': '1', 'exclusive': 'False', 'stream_id': '7'",
                                "'stream_ended': ('StreamEnded', {'stream_id': '1'})")),
    "bad-padding": (lambda: raw_case((HEADERS, HEAD[1] | PADDED, 7, b"\x09abc")),
                    "invalid padding"),
    "even-id": (lambda: raw_case((*HEAD, 8, request())), "Invalid stream ID for peer"),
    "lower-id": (lambda: raw_case((*HEAD, 7, request()), (*HEAD, 3, request()), before=1),
                 "3 is lower than 7"),
    "reused-id": (lambda: raw_case((*HEAD, 3, request())), "STREAM_CLOSED: 5>', 'remote_reset"),
    "stream-zero": (lambda: raw_case((*HEAD, 0, request())), "Stream ID must be non-zero"),
    "reserved-bit": (lambda: raw_case((*HEAD, 0x80000007, request()),
                                      (*HEAD, 0x80000005, request())), "'stream_id': '5'})"),
    "reserved-bit-alone": (lambda: raw_case((*HEAD, 0x80000007, request())), "'stream_id': '7'"),
    "limit-lowered": (lambda: limit(setting(SettingCodes.MAX_CONCURRENT_STREAMS, 2)),
                      ("REFUSED_STREAM: 7>', 'reason': \"'more concurrent streams than "
                       "allowed'\", 'stream_id': '5'", "'stream_id': '9'}")),
    "limit-default": (lambda: limit(None), "REFUSED_STREAM: 7>', 'reason'"),
    "limit-below-open": (limit_below_open, "MAX_CONCURRENT_STREAMS: 3>: 1, "),
    "hpack-index": (lambda: raw_case((*HEAD, 7, b"\xfe")), "Invalid table index 126"),
    "hpack-table-size": (lambda: raw_case((*HEAD, 7, b"\x3f\xe9\x26\x82")),
                         "exceeded max allowable table size"),
    "hpack-list-size": (lambda: raw_case((*HEAD, 7, [*request(), ("x", "v" * 3000)]),
                                         (*HEAD, 9, b"\xbe" * 30)), "ENHANCE_YOUR_CALM"),
    "oversized": (lambda: raw_case((*HEAD, 7, b"\x82" * 16385)), "length 16385, max 16384"),
    "oversized-announced": (lambda: raw_case() + [[b"\xff\xff\xff\x01\x05\0\0\0\x09"]],
                            "b'/2147483633'"),
    "invalid-field": (lambda: raw_case((*HEAD, 7, [*request(), ("X-Up", "1")])),
                      {"lean": "(b'X-Up', b'1')", "tuned": "(b'X-Up', b'1')",
                       "validating": "uppercase header name"}),
    "mixed": (mixed, ("NO_ERROR: 0>', 'remote_reset': 'True', 'stream_id': '7'",
                      "PingReceived", "UnknownFrameReceived", "':path', b'/13'")),
    "server-goaway": (lambda: raw_case()[:1] + [lambda conn: conn.close_connection()]
                      + [[frame(*HEAD, 7, b"\x82\x86\x84\x41\x01a")]], "RECV_HEADERS in state"),
    "server-goaway-first": (lambda: [lambda conn: conn.close_connection()] + raw_case(),
                            f"RECV_SETTINGS in state {CLOSED}"),
    "client-goaway": (lambda: raw_case((7, 0, 0, struct.pack(">LL", 5, 0)),
                                       (*HEAD, 7, request())), f"RECV_HEADERS in state {CLOSED}"),
}
for _name, _frame in {"window": frame(WINDOW, 0, 1, struct.pack(">L", 100)),
                      "rst": frame(RST, 0, 1, struct.pack(">L", 8)),
                      "data": frame(DATA, END_STREAM, 1, b"late"),
                      "headers": frame(*HEAD, 1, b"\x82"),
                      "priority": frame(PRIORITY, 0, 1, priority(3))}.items():
    _expect = "'StreamClosedError', <Err" if _name == "headers" else "':path', b'/7'"
    CASES[f"late-{_name}-new-stream"] = (lambda f=_frame: late(f, True), _expect)
    CASES[f"late-{_name}"] = (lambda f=_frame: late(f, False), _expect)

# Malformed frames of the kinds read without h2's frame buffer (``_simple_frame``), each
# between requests, and a sign of the error it must end in.
for _name, (_frame, _sign) in {
    "settings-length": ((SETTINGS, 0, 0, b"\0\x03\0\0\0"), "Frame data missing or invalid"),
    "settings-ack-payload": ((SETTINGS, ACK, 0, struct.pack(">HL", 3, 1)), "non-compliant"),
    "settings-on-stream": ((SETTINGS, 0, 1, b""), "invalid header"),
    "settings-value": ((SETTINGS, 0, 0, struct.pack(">HL", 2, 2)), "ENABLE_PUSH"),
    "ping-length": ((PING, 0, 0, b"1234567"), "Frame data missing or invalid"),
    "ping-on-stream": ((PING, 0, 1, b"12345678"), "invalid header"),
    "window-length": ((WINDOW, 0, 0, b"\0\0\x01"), "Frame data missing or invalid"),
    "window-zero": ((WINDOW, 0, 0, b"\0\0\0\0"), "non-compliant"),
    "rst-on-zero": ((RST, 0, 0, struct.pack(">L", 8)), "invalid header"),
    "rst-length": ((RST, 0, 1, b"\0\0\x08"), "Frame data missing or invalid"),
    "goaway-on-stream": ((GOAWAY, 0, 1, struct.pack(">LL", 5, 0)), "invalid header"),
    "goaway-length": ((GOAWAY, 0, 0, b"\0\0\0\x05\0\0\0"), "Frame data missing or invalid"),
}.items():
    CASES[f"bad-{_name}"] = (lambda f=_frame: raw_case(f), _sign)


@pytest.mark.parametrize("how", CHUNKINGS)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_receives_like_stream_error_rules(variant: str, case: str, how: str) -> None:
    """The promise: whatever the bytes and however they are cut, the same outcome."""
    build, signs = CASES[case]
    record = same(build(), how, variant)
    signs = signs[variant] if isinstance(signs, dict) else signs
    for sign in (signs,) if isinstance(signs, str) else signs:
        assert sign in record


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("how", ["whole", "frames", "head+rest"])
def test_the_fast_path_is_taken(monkeypatch: pytest.MonkeyPatch, variant: str,
                                how: str) -> None:
    """New requests, whole in a read, skip h2's frame layer (and, on the tuned connection's
    own configuration, h2's passes over the fields): else all the above is moot. "whole"
    reads the preface with them, as a client's first request comes."""
    calls: list[int] = []
    lean: list[int] = []
    original, received = FastRequests._request, fast_requests._request_received

    def counted(self: FastRequests, stream_id: int, block: bytes, end: bool) -> Any:
        calls.append(stream_id)
        return original(self, stream_id, block, end)

    def counted_lean(stream: Any, headers: Any, end: bool) -> Any:
        lean.append(stream.stream_id)
        return received(stream, headers, end)

    monkeypatch.setattr(FastRequests, "_request", counted)
    monkeypatch.setattr(fast_requests, "_request_received", counted_lean)
    wire = Wire().get(1).get(3).raw(SETTINGS, ACK, 0)
    same([wire.get(5).get(7, end=False).get(9).cut()], how, variant)
    assert calls == [1, 3, 5, 7, 9]
    assert lean == (calls if variant == "tuned" else [])


def tracer(lines: list[str]) -> Any:
    """A logger other than h2's silent default: h2 formats every frame for it."""
    def log(fmt: str, *args: Any) -> None:
        lines.append(re.sub(" at 0x[0-9a-f]+", "", fmt % args))  # no addresses
    return types.SimpleNamespace(debug=log, trace=log)


@pytest.mark.parametrize("how", ["whole", "frames", "head+rest", "13"])
@pytest.mark.parametrize("tuned", [False, True])
def test_a_trace_logger_gets_h2s_own_path(monkeypatch: pytest.MonkeyPatch, how: str,
                                          tuned: bool) -> None:
    """The fast path would skip h2's trace lines: with a logger, h2 reads every frame."""
    def refused(*args: Any) -> Any:
        raise AssertionError("the fast path ran with a trace logger")

    monkeypatch.setattr(FastRequests, "_request", refused)
    logs: list[Any] = []
    for index in range(2):
        lines: list[str] = []
        config = h2.config.H2Configuration(client_side=False, logger=tracer(lines), **LEAN)
        conn = (StreamErrorRules(config) if index == 0 else
                tuning.new_connection(config) if tuned else FastRequests(config))
        logs.append((served(conn, mixed(), how), lines))
    assert logs[1] == logs[0]
    assert any("Received frame: HeadersFrame" in line for line in logs[0][1])


def test_tuned_forgets_a_stream_both_sides_ended() -> None:
    """``drop_if_closed``: gone from ``streams`` at once, how it closed remembered."""
    conn = tuning.new_connection(tuning.SERVER_CONFIG)
    conn.initiate_connection()
    conn.receive_data(b"".join(Wire().get(1).get(3, end=False).get(5).cut()))
    respond(1, 3)(conn)
    conn.send_headers(5, [(":status", "200")])
    conn.send_data(5, b"body", end_stream=True)
    assert sorted(conn.streams) == [3]  # 3 still has the client's side open
    assert conn._closed_streams == {1: StreamClosedBy.SEND_END_STREAM,
                                    5: StreamClosedBy.SEND_END_STREAM}


def forgotten_then(variant: str, *late: Step) -> list[Step]:
    """Stream 1 closed and forgotten by one connection only, then ``late``. h2 forgets a
    closed stream when a stream opens; FastRequests only once the streams held reach the
    limit (so h2 forgets stream 1 at stream 3); TunedH2Connection as it answers it."""
    wire = Wire()
    if variant == "tuned":
        return [wire.get(1).get(3, end=False).get(5, end=False).cut(), respond(1), *late]
    wire.get(1, end=False).client.reset_stream(1)
    return [wire.get(3, end=False).get(5, end=False).cut(), *late]


def ack_then_large_frame(variant: str) -> list[Step]:
    """A SETTINGS ACK and, in the same read, a frame over 16384 bytes: h2 judges every frame
    of a read by the MAX_FRAME_SIZE of its start, FastRequests each one by the current one
    (one direction shown per variant)."""
    wire, bigger = Wire(), setting(SettingCodes.MAX_FRAME_SIZE, 32768)
    if variant == "tuned":  # acknowledged bigger: h2 refuses a frame FastRequests takes
        head, block = wire.cut(), wire.block([*request(), ("x", "v" * 20000)])
        return [bigger, head, [frame(SETTINGS, ACK, 0) + frame(*HEAD, 1, block)]]
    # acknowledged smaller again: h2 takes a frame FastRequests refuses
    return [bigger, wire.raw(SETTINGS, ACK, 0).get(1, end=False).cut(),
            setting(SettingCodes.MAX_FRAME_SIZE, 16384),
            [frame(SETTINGS, ACK, 0) + frame(DATA, END_STREAM, 1, b"x" * 20000)]]


def window_raised_after_close() -> list[Step]:
    """Stream 1's send window at its maximum, stream 1 ended by both sides, stream 3
    opened (h2 forgets stream 1 there), then a larger SETTINGS_INITIAL_WINDOW_SIZE: only
    open streams' windows grow, so none overflows."""
    wire = Wire().raw(SETTINGS, ACK, 0).get(1, end=False)
    wire.raw(WINDOW, 0, 1, struct.pack(">L", 2**31 - 1 - 65535))
    first = wire.cut()
    second = [frame(DATA, END_STREAM, 1, b""), *wire.get(3).cut()]
    raised = frame(SETTINGS, 0, 0, struct.pack(">HL", SettingCodes.INITIAL_WINDOW_SIZE, 65536))
    return [first, respond(1), second, [raised]]


# Whether a closed stream is still held must not change the answer to a frame on it.
FORGOTTEN: dict[str, Callable[[str], list[Step]]] = {
    "window-raised": lambda variant: window_raised_after_close(),
    "priority": lambda variant: forgotten_then(variant, [frame(PRIORITY, 0, 1, priority(1))]),
    "headers-over-limit": lambda variant: forgotten_then(
        variant, setting(SettingCodes.MAX_CONCURRENT_STREAMS, 1),
        [frame(SETTINGS, ACK, 0) + frame(*HEAD, 1, b"\x82")]),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("case", sorted(FORGOTTEN))
def test_a_closed_stream_held_or_forgotten_alike(case: str, variant: str) -> None:
    same(FORGOTTEN[case](variant), "frames", variant)


# h2 judges every frame of one read by the MAX_FRAME_SIZE in force when the read began;
# FastRequests each frame by the one in force when it comes (after an ACK before it).
KNOWN: dict[str, Callable[[str], list[Step]]] = {
    "ack-then-large-frame": ack_then_large_frame,
}


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="known differences, see KNOWN")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("case", sorted(KNOWN))
def test_known_differences(case: str, variant: str) -> None:
    """Strict: when one is fixed this fails, and its case can join CASES."""
    same(KNOWN[case](variant), "frames", variant)

"""RFC 9113 error handling: each broken frame gets the error code the RFC names, the bad
connection is closed (or only the bad stream is reset), and the server keeps serving.

Frames are written byte by byte to the TLS socket, past the client's own ``h2`` state
machine, which would refuse to produce them. A malformed request is a stream error
(RST_STREAM PROTOCOL_ERROR, section 8.1.1) and the connection goes on; ``h2`` on the server
treats a zero WINDOW_UPDATE on a stream as a connection error, which RFC 9113 section 5.4.1
allows: the tests pin down what it sends.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Callable
from typing import Any

import hpack
import pytest
from h2.errors import ErrorCodes

from tests.server.h2client import H2Client, h2_get

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS = 0x1, 0x4


def raw_frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """A frame exactly as given: no validation, so it can be wrong on purpose."""
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream_id) + payload


def header_block(headers: list[tuple[str, str]]) -> bytes:
    return hpack.Encoder().encode(headers)


REQUEST = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
           (":path", "/fast")]


def _connected(port: int) -> H2Client:
    """A connection past the SETTINGS exchange, so errors hit an established connection."""
    client = H2Client(port, strict=False, timeout=5)
    client.read_until(lambda: any(f.type == SETTINGS for f in client.frames))
    return client


def assert_goaway(client: H2Client, code: ErrorCodes, last_stream_id: int = 0) -> None:
    """The server sent GOAWAY(``code``) and then closed the connection."""
    client.read_to_eof(timeout=3)
    goaways = client.frames_of(GOAWAY)
    assert [g.frame.error_code for g in goaways] == [code], client.frames
    assert goaways[0].frame.last_stream_id == last_stream_id


def assert_still_serving(port: int, *bystanders: H2Client) -> None:
    """Connections opened before the error and a new one still get 200."""
    for client in bystanders:
        assert client.get("/fast", timeout=3).status == 200
    result = h2_get(port, "/fast", timeout=3)
    assert result.status == 200
    assert result.body == b"fast"


# Each case: what to send on an established connection -> (error code, last stream id).
def data_on_stream_zero(c: H2Client) -> None:
    c.send_raw(raw_frame(DATA, END_STREAM, 0, b"abc"))


def data_on_idle_stream_fresh(c: H2Client) -> None:
    c.send_raw(raw_frame(DATA, END_STREAM, 5, b"abc"))


def data_on_idle_stream_after_a_request(c: H2Client) -> None:
    assert c.get("/fast").status == 200  # stream 1 opened and closed
    c.send_raw(raw_frame(DATA, END_STREAM, 5, b"abc"))


def window_update_zero_on_connection(c: H2Client) -> None:
    c.send_raw(raw_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)))


def window_update_zero_on_stream(c: H2Client) -> None:
    sid = c.request("/fast", end_stream=False)
    c.send_raw(raw_frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 0)))


def connection_window_overflow(c: H2Client) -> None:
    # The server's view of this client's window starts at 65535: 2**31-1 more overflows.
    c.send_raw(raw_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1)))


def frame_over_max_frame_size(c: H2Client) -> None:
    c.send_raw(raw_frame(PING, 0, 0, bytes(16385)))  # SETTINGS_MAX_FRAME_SIZE is 16384


def data_frame_over_max_frame_size(c: H2Client) -> None:
    sid = c.request("/fast", end_stream=False)
    c.send_raw(raw_frame(DATA, 0, sid, bytes(16385)))


def ping_with_wrong_length(c: H2Client) -> None:
    c.send_raw(raw_frame(PING, 0, 0, b"1234567"))


def settings_with_bad_initial_window(c: H2Client) -> None:
    c.send_raw(raw_frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 2**31)))


CONNECTION_ERRORS: list[tuple[Callable[[H2Client], None], ErrorCodes, int]] = [
    (data_on_stream_zero, ErrorCodes.PROTOCOL_ERROR, 0),
    (data_on_idle_stream_fresh, ErrorCodes.PROTOCOL_ERROR, 0),
    (data_on_idle_stream_after_a_request, ErrorCodes.PROTOCOL_ERROR, 1),
    (window_update_zero_on_connection, ErrorCodes.PROTOCOL_ERROR, 0),
    (window_update_zero_on_stream, ErrorCodes.PROTOCOL_ERROR, 1),
    (connection_window_overflow, ErrorCodes.FLOW_CONTROL_ERROR, 0),
    (frame_over_max_frame_size, ErrorCodes.FRAME_SIZE_ERROR, 0),
    (data_frame_over_max_frame_size, ErrorCodes.FRAME_SIZE_ERROR, 1),
    (ping_with_wrong_length, ErrorCodes.FRAME_SIZE_ERROR, 0),
    (settings_with_bad_initial_window, ErrorCodes.FLOW_CONTROL_ERROR, 0),
]


@pytest.mark.parametrize(("provoke", "code", "last_stream_id"), CONNECTION_ERRORS,
                         ids=[case[0].__name__ for case in CONNECTION_ERRORS])
def test_connection_error_sends_goaway_and_closes(
        server: Any, provoke: Callable[[H2Client], None], code: ErrorCodes,
        last_stream_id: int) -> None:
    with _connected(server.port) as bystander, _connected(server.port) as client:
        provoke(client)
        assert_goaway(client, code, last_stream_id)
        assert_still_serving(server.port, bystander)


def _without(name: str) -> list[tuple[str, str]]:
    return [h for h in REQUEST if h[0] != name]


# Malformed requests (RFC 9113 sections 8.2 and 8.3): each resets only its stream.
MALFORMED: dict[str, list[tuple[str, str]]] = {
    "no :path": _without(":path"),
    "empty :path": [*_without(":path"), (":path", "")],
    "no :method": _without(":method"),
    "no :scheme": _without(":scheme"),
    "uppercase name": [*REQUEST, ("X-Upper", "1")],
    "space in name": [*REQUEST, ("bad name", "1")],
    "colon inside name": [*REQUEST, ("a:b", "1")],
    "pseudo after regular": [*_without(":path"), ("accept", "*/*"), (":path", "/fast")],
    "duplicate :path": [*REQUEST, (":path", "/fast")],
    "unknown pseudo": [*REQUEST, (":foo", "bar")],
    ":status in a request": [*REQUEST, (":status", "200")],
    ":protocol without extended CONNECT": [*REQUEST, (":protocol", "websocket")],
    "connection field": [*REQUEST, ("connection", "keep-alive")],
    "transfer-encoding": [*REQUEST, ("transfer-encoding", "chunked")],
    "te other than trailers": [*REQUEST, ("te", "gzip")],
    "value with leading space": [*REQUEST, ("x-a", " padded")],
    "value with trailing tab": [*REQUEST, ("x-a", "padded\t")],
    "value with NUL": [*REQUEST, ("x-a", "a\x00b")],
    "value with LF": [*REQUEST, ("x-a", "a\nb")],
    "host differs from :authority": [*REQUEST, ("host", "elsewhere")],
    "two host fields": [*_without(":authority"), ("host", "a"), ("host", "a")],
    "no :authority and no host": _without(":authority"),
    "CONNECT with :path": [(":method", "CONNECT"), (":authority", "localhost:1"),
                           (":path", "/"), (":scheme", "https")],
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_request_resets_only_its_stream(server: Any, case: str) -> None:
    with _connected(server.port) as client:
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                  header_block(MALFORMED[case])))
        client.read_until(lambda: any(f.stream_id == 1 for f in client.frames_of(RST_STREAM)),
                          timeout=3)
        resets = [f.frame.error_code for f in client.frames_of(RST_STREAM)]
        assert resets == [ErrorCodes.PROTOCOL_ERROR]
        # The same connection serves the next request.
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 3, header_block(REQUEST)))
        client.read_until(lambda: client.wire_done(3), timeout=3)
        assert client.wire_body(3) == b"fast"
        assert client.frames_of(GOAWAY) == []


def test_pseudo_header_in_trailers_resets_the_stream(server: Any) -> None:
    post = [(":method", "POST"), (":scheme", "https"), (":authority", "localhost"),
            (":path", "/sha256")]
    with _connected(server.port) as client:
        client.send_raw(raw_frame(HEADERS, END_HEADERS, 1, header_block(post)))
        client.send_raw(raw_frame(DATA, 0, 1, b"abc"))
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                  header_block([(":path", "/other")])))
        client.read_until(lambda: any(f.stream_id == 1 for f in client.frames_of(RST_STREAM)),
                          timeout=3)
        assert [f.frame.error_code for f in client.frames_of(RST_STREAM)] == \
            [ErrorCodes.PROTOCOL_ERROR]
        assert client.frames_of(GOAWAY) == []


@pytest.mark.parametrize("extra", [
    [("te", "trailers")], [("te", "Trailers")], [("host", "localhost")],
    [("cookie", "a=1"), ("cookie", "b=2")], [("x-latin", b"caf\xe9")], [("x-empty", "")],
])
def test_unusual_but_valid_requests_are_served(server: Any,
                                               extra: list[tuple[str, str]]) -> None:
    with _connected(server.port) as client:
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                  header_block([*REQUEST, *extra])))
        client.read_until(lambda: client.wire_done(1), timeout=3)
        assert client.wire_body(1) == b"fast"
        assert client.frames_of(RST_STREAM) == []


def test_invalid_preface_gets_goaway_protocol_error(server: Any) -> None:
    with H2Client(server.port, preface=False, strict=False, timeout=5) as client:
        client.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert_goaway(client, ErrorCodes.PROTOCOL_ERROR, 0)
    assert_still_serving(server.port)


def test_garbage_after_a_valid_preface_closes_the_connection(server: Any) -> None:
    with _connected(server.port) as client:
        # A frame header whose length field is huge, then noise.
        client.send_raw(b"\xff" * 64)
        assert_goaway(client, ErrorCodes.FRAME_SIZE_ERROR, 0)
    assert_still_serving(server.port)


def test_stream_window_overflow_resets_only_that_stream(server: Any) -> None:
    with _connected(server.port) as client:
        sid = client.request("/fast", end_stream=False)
        client.send_raw(raw_frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 2**31 - 1)))
        client.read_until(lambda: any(f.stream_id == sid for f in client.frames_of(RST_STREAM)),
                          timeout=3)
        resets = [f.frame.error_code for f in client.frames_of(RST_STREAM)]
        assert resets == [ErrorCodes.FLOW_CONTROL_ERROR]
        assert client.frames_of(GOAWAY) == []
        # The connection itself is still fine.
        client.strict = True
        assert client.get("/echo/after", timeout=3).body == b"after"
    assert_still_serving(server.port)


def test_ping_gets_ping_ack_with_same_payload(server: Any) -> None:
    with H2Client(server.port) as client:
        for payload in (b"12345678", b"\x00\xff" * 4):
            client.ping(payload)
            client.read_until(lambda p=payload: p in client.ping_acks, timeout=3)
        acks = [f for f in client.frames_of(PING) if "ACK" in f.flags]
        assert [f.frame.opaque_data for f in acks] == [b"12345678", b"\x00\xff" * 4]
        assert client.get("/fast").status == 200


def _server_connections_idle(server: Any, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connections = list(server.app.server.connections)
        if connections and not any(conn.busy() for conn in connections):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("windows", ["wide-open", "exhausted"])
def test_reset_during_large_download_stops_that_stream(server: Any, windows: str) -> None:
    """The client resets a 50 MiB download: DATA on that stream stops, the server's stream
    task ends (also when it was waiting for the window to open), and the same connection
    serves new requests."""
    if windows == "wide-open":
        # The server is never held back by flow control: only the reset can stop it.
        client = H2Client(server.port, settings={0x4: 2**31 - 1}, keep_body=False)
        client.conn.increment_flow_control_window(2**31 - 1 - 65535)
        client.flush()
        enough = 1 << 20
    else:
        # Nothing is acknowledged: the server sends 65535 bytes, then waits for a window.
        client = H2Client(server.port, auto_ack=False, keep_body=False)
        enough = 65535
    with client:
        sid = client.request("/big.bin")
        stream = client.streams[sid]
        client.read_until(lambda: stream.received >= enough, timeout=5)
        client.reset(sid)
        reset_at = len(client.frames)
        if windows == "exhausted":
            # Reopen the connection window only, for the requests that follow.
            client.ack(sid, stream.received)
        after = client.get("/echo/next", timeout=5)
        assert (after.status, after.received) == (200, 4)
        # Read on for a moment: anything still arriving for ``sid`` was in flight.
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            try:
                client.read_until(lambda: False, timeout=deadline - time.monotonic())
            except TimeoutError:
                break
        late = sum(f.length for f in client.frames[reset_at:]
                   if f.type == DATA and f.stream_id == sid)
        total = sum(f.length for f in client.frames_of(DATA) if f.stream_id == sid)
        assert total < 25 * 1024 * 1024, \
            f"{total} bytes of a reset stream arrived ({late} after the reset)"
        assert not stream.ended
        # The server's stream task is gone: nothing of this connection is busy.
        assert _server_connections_idle(server), "the reset stream's task is still running"
        client.keep_body = client.auto_ack = True
        medium = client.get("/medium.bin", timeout=5)
        assert medium.status == 200
    assert hashlib.sha256(medium.body).hexdigest() == server.site.medium_sha256
    assert_still_serving(server.port)


def test_reset_while_the_server_is_blocked_writing_keeps_the_framing(server: Any) -> None:
    """The client stops reading a wide-open download, so the server's write blocks with a
    frame half sent; the reset cancels that write. What was left unsent still goes out
    first: the connection's framing stays intact and the next request is answered."""
    client = H2Client(server.port, settings={0x4: 2**31 - 1}, keep_body=False, timeout=10)
    client.conn.increment_flow_control_window(2**31 - 1 - 65535)
    client.flush()
    with client:
        sid = client.request("/big.bin")
        client.read_until(lambda: client.streams[sid].received > 0, timeout=5)
        time.sleep(0.5)  # not reading: socket buffers fill, the server's sendall blocks
        client.reset(sid)
        time.sleep(0.3)  # the server handles the reset while its write is blocked
        after = client.request("/echo/after")
        client.read_until(lambda: client.streams[after].done, timeout=10)  # parses every frame
        assert client.streams[after].status == 200
        assert client.streams[after].received == 5

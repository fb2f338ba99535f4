"""Stream errors stay on their stream (RFC 9113 sections 8.1.1, 8.1, 5.3.1, 5.1.2): the bad
stream is reset, every other stream on the connection is answered; and a POST to a
static path is answered 405 at headers time, without reading its body."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from h2.errors import ErrorCodes

from hyper2web.server import stream_errors
from tests.server.h2client import H2Client
from tests.server.test_h2_errors import (
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    assert_still_serving,
    header_block,
    raw_frame,
)

PRIORITY = 0x2
PRIORITY_FLAG = 0x20
POST = [(":method", "POST"), (":scheme", "https"), (":authority", "localhost"),
        (":path", "/sha256")]


def _connected(port: int) -> H2Client:
    client = H2Client(port, strict=False, timeout=5)
    client.read_until(lambda: any(f.type == 4 for f in client.frames))
    return client


def get(path: str) -> bytes:
    return header_block([(":method", "GET"), (":scheme", "https"),
                         (":authority", "localhost"), (":path", path)])


# Each case writes raw frames on stream 3 (stream 1 is a request in flight).
def body_shorter_than_content_length(c: H2Client) -> None:
    c.send_raw(raw_frame(HEADERS, END_HEADERS, 3,
                         header_block([*POST, ("content-length", "10")])))
    c.send_raw(raw_frame(DATA, END_STREAM, 3, b"12345"))


def body_longer_than_content_length(c: H2Client) -> None:
    c.send_raw(raw_frame(HEADERS, END_HEADERS, 3,
                         header_block([*POST, ("content-length", "3")])))
    c.send_raw(raw_frame(DATA, 0, 3, b"12345"))


def no_body_but_content_length(c: H2Client) -> None:
    c.send_raw(raw_frame(HEADERS, END_HEADERS | END_STREAM, 3,
                         header_block([*POST, ("content-length", "10")])))


def trailers_without_end_stream(c: H2Client) -> None:
    c.send_raw(raw_frame(HEADERS, END_HEADERS, 3, header_block(POST)))
    c.send_raw(raw_frame(DATA, 0, 3, b"abc"))
    c.send_raw(raw_frame(HEADERS, END_HEADERS, 3, header_block([("x-trailer", "1")])))


def headers_depending_on_itself(c: H2Client) -> None:
    priority = struct.pack(">IB", 3, 15)  # depends on stream 3 itself, weight 16
    c.send_raw(raw_frame(HEADERS, END_HEADERS | PRIORITY_FLAG, 3,
                         priority + header_block(POST)))


def priority_depending_on_itself(c: H2Client) -> None:
    c.send_raw(raw_frame(HEADERS, END_HEADERS, 3, header_block(POST)))
    c.send_raw(raw_frame(PRIORITY, 0, 3, struct.pack(">IB", 3, 15)))


CASES: list[Callable[[H2Client], None]] = [
    body_shorter_than_content_length,
    body_longer_than_content_length,
    no_body_but_content_length,
    trailers_without_end_stream,
    headers_depending_on_itself,
    priority_depending_on_itself,
]


@pytest.mark.parametrize("provoke", CASES, ids=[c.__name__ for c in CASES])
def test_a_stream_error_resets_only_its_stream(server: Any,
                                               provoke: Callable[[H2Client], None]) -> None:
    with _connected(server.port) as client:
        # Stream 1 is in flight while the error happens on stream 3.
        client.send_raw(raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, get("/sleep/300")))
        provoke(client)
        client.read_until(lambda: ErrorCodes.PROTOCOL_ERROR in client.wire_resets(3),
                          timeout=5)
        # The same connection answers the request in flight and the next one.
        client.send_raw(raw_frame(HEADERS, END_HEADERS | END_STREAM, 5, get("/fast")))
        client.read_until(lambda: client.wire_done(1) and client.wire_done(5), timeout=5)
        assert client.wire_body(1) == b"slept 300"
        assert client.wire_body(5) == b"fast"
        assert client.wire_resets(1) == [] and client.wire_resets(5) == []
        assert client.frames_of(GOAWAY) == []
    assert_still_serving(server.port)


def test_the_129th_concurrent_stream_is_refused(server: Any) -> None:
    with _connected(server.port) as client:
        open_ids = list(range(1, 2 * 128, 2))
        block = get("/sleep/500")
        client.send_raw(b"".join(raw_frame(HEADERS, END_HEADERS | END_STREAM, sid, block)
                                 for sid in open_ids))
        extra = open_ids[-1] + 2
        client.send_raw(raw_frame(HEADERS, END_HEADERS | END_STREAM, extra, get("/fast")))
        client.read_until(lambda: ErrorCodes.REFUSED_STREAM in client.wire_resets(extra),
                          timeout=5)
        client.read_until(lambda: all(client.wire_done(sid) for sid in open_ids), timeout=10)
        assert all(client.wire_body(sid) == b"slept 500" for sid in open_ids)
        assert client.frames_of(GOAWAY) == []


def test_h2s_stock_rules_still_hold_where_the_rules_are_off(server: Any,
                                                           monkeypatch) -> None:
    """On an h2 the suite has not run against, a stream error is h2's connection error."""
    monkeypatch.setattr(stream_errors.StreamErrorRules, "keep_stream_errors", False)
    with _connected(server.port) as client:
        client.send_raw(raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, get("/sleep/300")))
        body_shorter_than_content_length(client)
        client.read_to_eof(timeout=5)
        goaways = client.frames_of(GOAWAY)
        assert [g.frame.error_code for g in goaways] == [ErrorCodes.PROTOCOL_ERROR]


def test_post_to_a_static_path_is_405_before_the_body(server: Any) -> None:
    with _connected(server.port) as client:
        sid = client.request("/index.html", method="POST",
                             headers=[("content-length", str(100 * 1024 * 1024))],
                             end_stream=False)
        started = time.monotonic()
        result = client.wait(sid, timeout=5)
        assert result.status == 405
        assert result.header("allow") == "GET, HEAD"
        assert time.monotonic() - started < 2
        assert client.sent.get(sid, 0) == 0  # nothing of the body was needed
        # Not reset: some clients drop a response followed by RST_STREAM(NO_ERROR). What
        # the client still sends is acknowledged and dropped.
        client.send_body(sid, b"x" * 200_000)
        assert client.get("/fast").status == 200


def test_a_broken_header_block_in_trailers_is_a_connection_error_not_a_crash(
        server: Any, caplog: Any) -> None:
    caplog.set_level("INFO", logger="hyper2web")
    with _connected(server.port) as client:
        client.send_raw(raw_frame(HEADERS, END_HEADERS, 1, header_block(POST)))
        client.send_raw(raw_frame(HEADERS, END_HEADERS, 1, b"\xff\x00"))  # index 127: none
        client.read_to_eof(timeout=5)
        assert len(client.frames_of(GOAWAY)) == 1
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert_still_serving(server.port)

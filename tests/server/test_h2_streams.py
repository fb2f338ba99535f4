"""Streams of one connection: each request runs in its own task, so a slow handler never
holds up the others, and the responses of many streams leave in few writes."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from h2.errors import ErrorCodes

from tests.server.h2client import H2Client
from tests.server.test_h2_errors import (
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    REQUEST,
    RST_STREAM,
    _connected,
    assert_goaway,
    header_block,
    raw_frame,
)


def test_slow_handler_does_not_delay_other_streams(server: Any) -> None:
    with H2Client(server.port) as client:
        slow = [client.request("/slow") for _ in range(5)]
        started = time.monotonic()
        fast = [client.request(f"/echo/{i}") for i in range(20)]
        client.read_until(lambda: all(client.streams[s].done for s in fast), timeout=5)
        fast_done = time.monotonic() - started
        assert fast_done < 0.5, f"fast streams took {fast_done:.2f} s behind slow ones"
        assert [client.streams[s].body for s in fast] == [str(i).encode() for i in range(20)]
        assert not any(client.streams[s].done for s in slow)

        client.read_until(lambda: all(client.streams[s].done for s in slow), timeout=5)
        slow_done = time.monotonic() - started
        # Five 2 s handlers ran side by side, not one after another.
        assert 1.5 < slow_done < 3.5, slow_done
        assert all(client.streams[s].status == 200 for s in slow)
        assert all(client.streams[s].body == b"slow" for s in slow)


def test_stream_opened_after_a_slow_one_is_answered_first(server: Any) -> None:
    with H2Client(server.port) as client:
        slow = client.request("/sleep/800")
        fast = client.request("/fast")
        client.wait(fast, timeout=2)
        assert not client.streams[slow].done
        assert client.wait(slow, timeout=3).body == b"slept 800"
        done = [e.stream_id for e in client.events if type(e).__name__ == "StreamEnded"]
        assert done == [fast, slow]


def test_hundred_concurrent_streams_on_one_connection(server: Any) -> None:
    sizes = [0, 1, 100, 4096, 16384, 16385, 70000, 200000]
    with H2Client(server.port) as client:
        sids = {}
        for i in range(100):
            size = sizes[i % len(sizes)]
            sids[client.request(f"/bytes/{size}", flush=False)] = size
        client.flush()
        client.read_until(lambda: all(client.streams[s].done for s in sids), timeout=10)
        pattern = bytes(range(251)) * (max(sizes) // 251 + 1)
        for sid, size in sids.items():
            result = client.streams[sid]
            assert result.status == 200, (sid, result.reset)
            assert result.header("content-length") == str(size)
            assert result.body == pattern[:size], f"stream {sid}: body of {size} bytes differs"
        # Mixed with static files on the same connection.
        files = [client.request("/medium.bin") for _ in range(4)]
        client.read_until(lambda: all(client.streams[s].done for s in files), timeout=10)
        for sid in files:
            body = client.streams[sid].body
            assert hashlib.sha256(body).hexdigest() == server.site.medium_sha256


def test_requests_sent_in_one_write_are_answered_in_few_writes(server: Any) -> None:
    """50 requests in one TLS write: the 100 frames of the answers arrive in a few reads.

    A TLS read returns at most one record, and a record carries what one ``sendall`` sent
    (up to 16 KiB): answering each stream with its own write would take about 100 reads.
    """
    with H2Client(server.port) as client:
        client.get("/fast")  # settle the SETTINGS exchange first
        reads_before = client.reads
        sids = [client.request(f"/echo/n{i}", flush=False) for i in range(50)]
        client.flush()  # one sendall for all 50 HEADERS frames
        client.read_until(lambda: all(client.streams[s].done for s in sids), timeout=5)
        reads = client.reads - reads_before
        assert [client.streams[s].body for s in sids] == [f"n{i}".encode() for i in range(50)]
        assert reads <= 10, f"50 small responses took {reads} reads"


def test_request_body_reaches_the_handler(server: Any) -> None:
    body = bytes(range(256)) * 1000
    with H2Client(server.port) as client:
        result = client.get("/sha256", method="POST", body=body,
                            headers=[("content-type", "application/octet-stream")])
        assert result.status == 200
        assert result.body == (b'{"length":256000,"sha256":"%s"}'
                               % hashlib.sha256(body).hexdigest().encode())


# -- frames on streams that are over (RFC 9113 section 5.1) ---------------------------------

def test_data_on_a_stream_the_server_reset_is_a_stream_error_only(server: Any) -> None:
    """After our RST_STREAM, the peer's frames in flight get STREAM_CLOSED on that stream;
    the connection goes on."""
    malformed = [*REQUEST, ("x-a", "a\nb")]
    with _connected(server.port) as client:
        client.send_raw(raw_frame(HEADERS, END_HEADERS, 1, header_block(malformed)))
        client.read_until(lambda: any(f.stream_id == 1 for f in client.frames_of(RST_STREAM)),
                          timeout=3)
        client.send_raw(raw_frame(DATA, 0, 1, b"late"))
        client.read_until(lambda: len(client.frames_of(RST_STREAM)) == 2, timeout=3)
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                  header_block([("x-late", "1")])))
        client.read_until(lambda: len(client.frames_of(RST_STREAM)) == 3, timeout=3)
        assert [f.frame.error_code for f in client.frames_of(RST_STREAM)] == \
            [ErrorCodes.PROTOCOL_ERROR, ErrorCodes.STREAM_CLOSED, ErrorCodes.STREAM_CLOSED]
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 3, header_block(REQUEST)))
        client.read_until(lambda: client.wire_done(3), timeout=3)
        assert client.wire_body(3) == b"fast"
        # Stream 1 is forgotten now (a newer stream opened), but known to have been reset.
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                  header_block([("x-later", "1")])))
        client.read_until(lambda: len(client.frames_of(RST_STREAM)) == 4, timeout=3)
        assert client.frames_of(RST_STREAM)[-1].frame.error_code == ErrorCodes.STREAM_CLOSED
        assert client.frames_of(GOAWAY) == []


def test_frames_on_a_stream_ended_both_ways(server: Any) -> None:
    """DATA may be late (a stream error, and its bytes leave the connection's window, as h2
    does); a HEADERS block cannot be, so it ends the connection (STREAM_CLOSED)."""
    with _connected(server.port) as client:
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 1, header_block(REQUEST)))
        client.read_until(lambda: client.wire_done(1), timeout=3)
        client.send_raw(raw_frame(DATA, 0, 1, b"late"))
        client.read_until(lambda: any(f.stream_id == 1 for f in client.frames_of(RST_STREAM)),
                          timeout=3)
        assert [f.frame.error_code for f in client.frames_of(RST_STREAM)] == \
            [ErrorCodes.STREAM_CLOSED]
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                  header_block([("x-late", "1")])))
        assert_goaway(client, ErrorCodes.STREAM_CLOSED, 1)


def test_headers_on_a_forgotten_stream_that_ended_both_ways(server: Any) -> None:
    with _connected(server.port) as client:
        for sid in (1, 3):  # opening 3 lets the server forget 1
            client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, sid,
                                      header_block(REQUEST)))
            client.read_until(lambda sid=sid: client.wire_done(sid), timeout=3)
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                  header_block([("x-late", "1")])))
        assert_goaway(client, ErrorCodes.STREAM_CLOSED, 3)


def test_headers_on_a_lower_stream_never_opened_is_a_connection_error(server: Any) -> None:
    """Stream ids only grow: 3 after 5 can no longer be opened."""
    with _connected(server.port) as client:
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 5, header_block(REQUEST)))
        client.read_until(lambda: client.wire_done(5), timeout=3)
        client.send_raw(raw_frame(HEADERS, END_STREAM | END_HEADERS, 3, header_block(REQUEST)))
        assert_goaway(client, ErrorCodes.PROTOCOL_ERROR, 5)

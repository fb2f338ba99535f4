"""Streams of one connection: each request runs in its own task, so a slow handler never
holds up the others, and the responses of many streams leave in few writes."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from tests.server.h2client import H2Client


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

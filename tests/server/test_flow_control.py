"""Flow control both ways: large bodies arrive byte for byte whatever the windows.

The raw client keeps the RFC's default 65,535-byte windows, so a 50 MiB download needs
hundreds of WINDOW_UPDATEs that the server must wait for, and its ``h2`` raises at once if
the server sends more than a window allows. Uploads need the server to acknowledge what
it receives, or they stall after 16 MiB (its connection window).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import httpx
import pytest

from tests.server.h2client import SETTINGS, H2Client

UPLOAD_SIZE = 20 * 1024 * 1024
PATTERN = bytes(range(251)) * (400_000 // 251 + 1)


@pytest.fixture(scope="module")
def upload() -> tuple[bytes, str]:
    body = os.urandom(UPLOAD_SIZE)
    return body, hashlib.sha256(body).hexdigest()


def test_download_50mib_with_default_windows(server: Any) -> None:
    digest = hashlib.sha256()
    with H2Client(server.port, keep_body=False, track_frames=False, timeout=30) as client:
        assert client.conn.local_settings.initial_window_size == 65535
        client.on_data = lambda event: digest.update(event.data)
        result = client.get("/big.bin", timeout=30)
        assert result.status == 200
        assert result.header("content-length") == str(server.site.big_size)
        assert result.received == server.site.big_size
        assert client.protocol_errors == []
    assert digest.hexdigest() == server.site.big_sha256


def test_upload_20mib(server: Any, upload: tuple[bytes, str]) -> None:
    body, sha = upload
    with H2Client(server.port, timeout=30) as client:
        result = client.get("/sha256", method="POST", body=body, timeout=30)
        assert result.status == 200
        assert result.body == b'{"length":%d,"sha256":"%s"}' % (UPLOAD_SIZE, sha.encode())
        # The connection is still usable: the server kept its receive windows open.
        assert client.get("/fast").body == b"fast"


def test_httpx_download_and_upload(server: Any, upload: tuple[bytes, str]) -> None:
    body, sha = upload
    with httpx.Client(http2=True, verify=False, timeout=30) as client:
        digest = hashlib.sha256()
        size = 0
        with client.stream("GET", server.url + "/big.bin") as response:
            assert response.http_version == "HTTP/2"
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
        assert (size, digest.hexdigest()) == (server.site.big_size, server.site.big_sha256)

        response = client.post(server.url + "/sha256", content=body)
        assert response.http_version == "HTTP/2"
        assert response.json() == {"length": UPLOAD_SIZE, "sha256": sha}


def test_slow_acknowledging_client_with_small_window(server: Any) -> None:
    """4 KiB windows, acknowledged late and in small pieces: the server waits each time."""
    size = 300_000
    with H2Client(server.port, settings={SETTINGS.INITIAL_WINDOW_SIZE: 4096},
                  auto_ack=False) as client:
        sid = client.request(f"/bytes/{size}")
        stream = client.streams[sid]
        acked = 0
        deadline = time.monotonic() + 10
        while not stream.done:
            assert time.monotonic() < deadline, f"stalled at {stream.received} bytes"
            client.read_until(lambda a=acked: stream.received > a or stream.done, timeout=5)
            time.sleep(0.002)
            while acked < stream.received:
                piece = min(1000, stream.received - acked)
                client.ack(sid, piece)
                acked += piece
        assert stream.status == 200
        assert stream.body == PATTERN[:size]
        # A stream window of 4096 bytes: no DATA frame was ever larger.
        assert max(f.length for f in client.frames_of(0)) <= 4096


def test_zero_window_then_opened_by_settings(server: Any) -> None:
    size = 100_000
    with H2Client(server.port, settings={SETTINGS.INITIAL_WINDOW_SIZE: 0}) as client:
        sid = client.request(f"/bytes/{size}")
        stream = client.streams[sid]
        client.read_until(lambda: stream.status is not None, timeout=3)
        with pytest.raises(TimeoutError):
            client.read_until(lambda: stream.received > 0, timeout=0.3)
        # Opening every stream window through SETTINGS must wake the waiting sender.
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 65535})
        client.flush()
        client.wait(sid, timeout=5)
        assert stream.body == PATTERN[:size]


def test_negative_window_is_waited_out(server: Any) -> None:
    """Shrinking INITIAL_WINDOW_SIZE mid-response makes the stream window negative
    (RFC 9113 section 6.9.2): the server must send nothing until it is positive again,
    then no more than it allows. The client's ``h2`` checks every byte."""
    size = 300_000
    with H2Client(server.port, auto_ack=False) as client:
        sid = client.request(f"/bytes/{size}")
        stream = client.streams[sid]
        client.read_until(lambda: stream.received == 65535, timeout=3)

        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 16384})  # -> -49151
        client.conn.increment_flow_control_window(10 * 65535)  # the connection is not the limit
        client.conn.increment_flow_control_window(40000, sid)  # -> -9151
        client.flush()
        with pytest.raises(TimeoutError):
            client.read_until(lambda: stream.received > 65535, timeout=0.3)

        client.conn.increment_flow_control_window(20000, sid)  # -> 10849
        client.flush()
        client.read_until(lambda: stream.received == 65535 + 10849, timeout=3)
        with pytest.raises(TimeoutError):
            client.read_until(lambda: stream.received > 65535 + 10849, timeout=0.3)

        client.auto_ack = True
        client.conn.increment_flow_control_window(size, sid)
        client.flush()
        client.wait(sid, timeout=5)
        assert stream.status == 200
        assert stream.body == PATTERN[:size]
        assert client.protocol_errors == []


@pytest.mark.parametrize("frame_size", [16_384, 65_536, 1 << 20])
def test_large_bodies_leave_in_frames_the_peer_allows(server: Any, frame_size: int) -> None:
    """A big file is framed in bulk: every DATA frame as large as the peer allows and no
    larger, END_STREAM on the last one only, and the bytes in order."""
    settings = {0x4: 2**31 - 1, 0x5: frame_size}  # a window never in the way
    digest = hashlib.sha256()
    with H2Client(server.port, settings=settings, timeout=30) as client:
        client.conn.increment_flow_control_window(2**31 - 1 - 65535)
        client.flush()
        client.on_data = lambda event: digest.update(event.data)
        sid = client.request("/big.bin")
        client.read_until(lambda: client.streams[sid].ended, timeout=30)
        frames = [f for f in client.frames if f.type == 0x0 and f.stream_id == sid]
    sizes = [f.length for f in frames]
    assert sum(sizes) == server.site.big_size
    assert max(sizes) == min(frame_size, 256 * 1024)  # a read chunk is 256 KiB
    assert all("END_STREAM" not in f.flags for f in frames[:-1])
    assert "END_STREAM" in frames[-1].flags
    assert digest.hexdigest() == hashlib.sha256((server.site.root / "big.bin")
                                                .read_bytes()).hexdigest()

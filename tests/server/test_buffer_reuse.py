"""Large bodies reuse their buffers (the file chunk buffer, the framed send buffer): every
byte must still be the file's, whether downloads run side by side on one connection or on
several, follow each other, or are cut off half-way by a reset."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import h2.settings
import httpx
import pytest

from hyper2web import chunks, http
from hyper2web.server import framed, tuning
from tests.server.h2client import H2Client

BIG_WINDOW = 2**30


def wide_client(port: int) -> H2Client:
    """A client whose windows never hold the server back: bodies leave in bulk."""
    client = H2Client(port, settings={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: BIG_WINDOW - 1}, handshake=True)
    client.conn.increment_flow_control_window(BIG_WINDOW - 1 - 65535)
    client.flush()
    return client


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_side_by_side_downloads_on_one_connection_are_intact(server: Any) -> None:
    with wide_client(server.port) as client:
        results = client.batch(["/medium.bin"] * 6)
    assert [r.status for r in results] == [200] * 6
    assert {sha(r.body) for r in results} == {server.site.medium_sha256}


def test_downloads_over_many_connections_are_intact(server: Any) -> None:
    digests: list[str] = []

    def fetch() -> None:
        with httpx.Client(http2=True, verify=False) as client:
            for _ in range(3):
                digests.append(sha(client.get(f"{server.url}/medium.bin").content))

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert digests == [server.site.medium_sha256] * 12


def test_a_download_reset_half_way_spoils_no_later_one(server: Any) -> None:
    with wide_client(server.port) as client:
        cut = client.request("/big.bin")
        client.read_until(lambda: len(client.streams[cut].body) > 1024 * 1024)
        client.reset(cut)
        after = client.get("/medium.bin", timeout=30)
        again = client.get("/medium.bin", timeout=30)
    assert sha(after.body) == sha(again.body) == server.site.medium_sha256


def test_buffers_are_kept_for_the_next_download(server: Any) -> None:
    chunks._spare.clear()
    framed._spares.clear()
    with wide_client(server.port) as client:
        first = client.get("/medium.bin", timeout=30)
        assert sha(first.body) == server.site.medium_sha256
        assert len(chunks._spare) == 1  # the chunk buffer, given back
        if tuning.ENABLED:
            assert len(framed._spares) == 1  # the last framed chunk, written out
        again = client.get("/medium.bin", timeout=30)
    assert sha(again.body) == server.site.medium_sha256
    assert len(chunks._spare) == 1  # taken and given back: still one


def test_a_batch_of_small_answers_does_not_crowd_the_pool(server: Any) -> None:
    """Eight 20 KB answers leave in one write of 160 KB: no large body would ever fit that
    buffer again, so it is not kept, and the framed chunks still are."""
    for number in range(8):
        path = server.site.root / f"part-{number}.bin"
        if not path.exists():
            path.write_bytes(bytes([number]) * 20_000)
    framed._spares.clear()
    with wide_client(server.port) as client:
        parts = client.batch([f"/part-{number}.bin" for number in range(8)])
        assert [len(part.body) for part in parts] == [20_000] * 8
        assert framed._spares == []
        assert client.get("/medium.bin", timeout=30).status == 200
    if tuning.ENABLED:
        assert len(framed._spares) == 1


def test_a_buffer_read_into_by_a_cancelled_thread_is_not_kept(
        server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[bytearray] = []
    monkeypatch.setattr(chunks, "read_cached", lambda fd, view, offset: None)  # threads
    monkeypatch.setattr(http, "keep_buffer", kept.append)
    with wide_client(server.port) as client:
        cut = client.request("/big.bin")
        client.read_until(lambda: len(client.streams[cut].body) > 1024 * 1024)
        client.reset(cut)
        after = client.get("/medium.bin", timeout=30)
    assert sha(after.body) == server.site.medium_sha256
    assert len(kept) == 1  # the medium download's, not the one cut off


def test_http1_downloads_are_intact(server: Any) -> None:
    with httpx.Client(verify=False) as client:
        bodies = [client.get(f"{server.url}/medium.bin").content for _ in range(3)]
    assert {sha(body) for body in bodies} == {server.site.medium_sha256}


@pytest.mark.skipif(not tuning.ENABLED, reason="the tuned h2 paths are off")
def test_large_bodies_are_read_into_their_frames(server: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk of a download is read into its DATA frames, never copied into them."""
    made: list[int] = []
    real_init = framed.FramedChunk.__init__

    def counting(self: Any, size: int, limit: int) -> None:
        made.append(size)
        real_init(self, size, limit)

    def copied(*args: Any) -> None:
        raise AssertionError("a file chunk was copied into its frames")

    monkeypatch.setattr(framed.FramedChunk, "__init__", counting)
    monkeypatch.setattr(tuning.TunedH2Connection, "_write_frames", copied)
    with wide_client(server.port) as client:
        result = client.get("/medium.bin", timeout=30)
    assert sha(result.body) == server.site.medium_sha256
    assert sum(made) == len(result.body) and len(made) > 1


def test_a_short_read_into_frames_still_sends_every_byte(server: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The page cache may hold only part of a chunk: what was read goes the ordinary way,
    and the rest follows."""
    real = chunks.read_cached

    def partly(fd: int, views: list[memoryview], offset: int) -> int | None:
        return real(fd, views[:1], offset)  # the first frame's worth only

    monkeypatch.setattr(chunks, "read_cached", partly)
    with wide_client(server.port) as client:
        results = client.batch(["/medium.bin"] * 2)
    assert {sha(r.body) for r in results} == {server.site.medium_sha256}

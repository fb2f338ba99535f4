"""Reading chunks of a large file: from the page cache in the loop, else in a thread."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import curio
import pytest

from hyper2web import chunks

DATA = os.urandom(300_000)


@pytest.fixture
def fd(tmp_path: Path) -> Any:
    path = tmp_path / "big.bin"
    path.write_bytes(DATA)
    handle = os.open(path, os.O_RDONLY)
    yield handle
    os.close(handle)


def read_all(fd: int, size: int = 64 * 1024) -> bytes:
    buffer = memoryview(bytearray(size))
    out = bytearray()

    async def main() -> None:
        offset = 0
        while True:
            count = await chunks.read_into(fd, [buffer], offset)
            if not count:
                return
            out.extend(buffer[:count])
            offset += count

    curio.run(main)
    return bytes(out)


@pytest.mark.skipif(getattr(os, "RWF_NOWAIT", None) is None, reason="Linux only")
def test_cached_pages_are_read_without_a_thread(fd: int, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    threads = []
    monkeypatch.setattr(chunks.curio, "run_in_thread",
                        lambda *args: threads.append(args) or curio.sleep(0))
    os.read(fd, len(DATA))  # in the page cache now (just written, and read)
    assert read_all(fd) == DATA
    assert threads == []


def test_pages_not_cached_are_read_in_a_thread(fd: int, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    real = os.preadv
    flags_seen = []

    def preadv(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
        flags_seen.append(flags)
        if flags:
            raise BlockingIOError(errno.EAGAIN, "would block")
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", preadv)
    assert read_all(fd) == DATA
    assert 0 in flags_seen


def test_a_file_system_without_nowait_reads_in_threads(fd: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.preadv
    calls = []

    def preadv(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
        calls.append(flags)
        if flags:
            raise OSError(errno.EOPNOTSUPP, "not supported")
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", preadv)
    monkeypatch.setattr(chunks, "_NOWAIT", getattr(os, "RWF_NOWAIT", 8))
    assert read_all(fd) == DATA
    assert calls.count(0) == len(calls) - 1  # asked once with the flag, never again
    assert chunks._NOWAIT is None

"""Reading a large file to send it: into one reused buffer, without a thread when it can.

A file bigger than ``SMALL_FILE`` is sent in chunks. Reading each chunk in a thread keeps
a slow disk from stalling every connection, but the hop costs two task switches a chunk,
and a file a developer serves again and again is in the page cache anyway. So each chunk
is first read with ``preadv(RWF_NOWAIT)`` (Linux 4.14+), which returns at once with what
is cached and fails with ``EAGAIN`` instead of waiting for the disk; only then is the
chunk read in a thread. Chunks go into one buffer per response: whoever sends a chunk
copies it before its ``write`` returns. Between two chunks the loop runs every other
task, so a long download never holds up the other connections.

The buffers themselves are kept for the next response (``chunk_buffer``): a fresh one of
this size is a fresh mapping from the system, whose every page faults on its first write,
which cost about a tenth of a large download's time.
"""

from __future__ import annotations

import errno
import os

from ._curio import curio

_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None) if hasattr(os, "preadv") else None
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)
CHUNK = 256 * 1024
KEPT = 8  # spare chunk buffers kept at most: 2 MiB, whatever the number of downloads
_spare: list[bytearray] = []


def chunk_buffer() -> bytearray:
    """A ``CHUNK``-sized buffer: a kept one if there is one."""
    try:
        return _spare.pop()
    except IndexError:  # none kept (checked this way: another thread's server may take one)
        return bytearray(CHUNK)


def keep_buffer(buffer: bytearray) -> None:
    """Give back a buffer from ``chunk_buffer`` for another response.

    Only after a response that ended normally: one cancelled during a read in a thread
    could still be written to by that thread.
    """
    if len(_spare) < KEPT and len(buffer) == CHUNK:
        _spare.append(buffer)


def read_cached(fd: int, views: list[memoryview], offset: int) -> int | None:
    """Read what the page cache holds of ``views``' length at ``offset``, filling them in
    order; None: not cached (or the system cannot tell). 0 is the end of the file."""
    global _NOWAIT
    if _NOWAIT is None:
        return None
    try:
        return os.preadv(fd, views, offset, _NOWAIT)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
        _NOWAIT = None  # this file system (or kernel) has no RWF_NOWAIT: threads from now on
        return None


async def read_into(fd: int, views: list[memoryview], offset: int) -> int:
    """Fill ``views`` in order from ``offset`` of ``fd`` (partly, at the end or when only
    part is cached); the number of bytes read, 0 at the end of the file."""
    count = read_cached(fd, views, offset)
    if count is not None:
        # What the thread hop gave for free: the loop runs every other task (and reads the
        # peer's frames, a reset among them) between two chunks, whatever the socket takes.
        await curio.sleep(0)
        return count
    read: int = await curio.run_in_thread(os.preadv, fd, views, offset)
    return read

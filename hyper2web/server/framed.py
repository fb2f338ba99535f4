"""A chunk of a large body laid out as its HTTP/2 DATA frames, for a file read to fill.

A chunk of a large file used to be read into a buffer and then copied into the frames
(``TunedH2Connection._write_frames``): a copy of every byte of every download, about a
tenth of a large download's time. A ``FramedChunk`` is the send buffer itself, with a gap
after each frame header; ``views`` are those gaps, in order, and one ``preadv`` scatters
the file straight into them. The frame headers are written when the chunk is sent, once
the connection has checked its windows and the stream again.

Buffers of framed chunks are kept for the next one (``take_spare``/``keep``): a fresh
buffer of this size is a fresh mapping from the system, whose every page faults on its
first write.
"""

from __future__ import annotations

from .fast_requests import END_STREAM, FRAME_HEADER

_DATA = 0x0
HEADER = FRAME_HEADER.size
# Written-out buffers of large bodies, kept for the next: for the whole process, at most
# SPARES_KEPT of at most SPARE_MAX bytes (a 256 KB file chunk, framed).
SPARE_MAX = 320 * 1024
SPARES_KEPT = 8
_spares: list[bytearray] = []


class FramedChunk:
    """``size`` body bytes as DATA frames of at most ``limit`` bytes each."""

    __slots__ = ("buffer", "limit", "size", "views", "_view")

    def __init__(self, size: int, limit: int) -> None:
        frames = -(-size // limit)
        total = size + HEADER * frames
        self.buffer = take_spare(total) or bytearray(total)
        self.size = size
        self.limit = limit
        self._view = memoryview(self.buffer)
        self.views = [self._view[at + HEADER:at + HEADER + min(limit, size - start)]
                      for at, start in ((n * (limit + HEADER), n * limit)
                                        for n in range(frames))]

    def frames(self, stream_id: int, end_stream: bool) -> bytearray:
        """The buffer, its frame headers written: DATA frames of ``stream_id``, the last
        one ending the stream if ``end_stream``. The views are let go, so the buffer can
        become (and grow as) the connection's send buffer."""
        pack_into, buffer, last = FRAME_HEADER.pack_into, self.buffer, len(self.views) - 1
        at = 0
        for number, view in enumerate(self.views):
            length = len(view)
            bits = END_STREAM if end_stream and number == last else 0
            pack_into(buffer, at, (length >> 8) & 0xFFFF, length & 0xFF, _DATA, bits,
                      stream_id & 0x7FFFFFFF)
            at += HEADER + length
        self._release()
        return buffer

    def payload(self, count: int) -> bytes:
        """The first ``count`` body bytes read into the views, joined (a read that came
        short goes out the ordinary way); the buffer is kept for another chunk."""
        data = b"".join(self.views)[:count]
        self.discard()
        return data

    def discard(self) -> None:
        """Not sent: the buffer goes back to the spares."""
        self._release()
        keep(self.buffer)

    def _release(self) -> None:
        for view in self.views:
            view.release()
        self._view.release()


def take_spare(size: int) -> bytearray | None:
    """A kept buffer of exactly ``size`` bytes, or None. Another thread's server may take
    one meanwhile: what was taken is checked, and put back if it is not the one."""
    for index, buffer in enumerate(_spares):
        if len(buffer) == size:
            try:
                taken = _spares.pop(index)
            except IndexError:
                return None
            if len(taken) == size:
                return taken
            _spares.append(taken)
            return None
    return None


def keep(buffer: bytearray) -> None:
    """Keep a written-out buffer of a framed chunk for the next one."""
    if len(buffer) <= SPARE_MAX and len(_spares) < SPARES_KEPT:
        _spares.append(buffer)

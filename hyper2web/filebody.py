"""Sending a file version's body: whole, one range, or several as multipart/byteranges.

A cached body is sliced in memory; a bigger file is read from disk (``open_file`` refuses
one that has become a symlink) and streamed by ``Response.send_open_file``.
"""

from __future__ import annotations

from .files import FileEntry, open_file
from .http import Response
from .ranges import Multipart, content_range


async def send_ranges(response: Response, entry: FileEntry,
                      ranges: list[tuple[int, int]]) -> None:
    """206: one range as it is, several as multipart/byteranges (RFC 9110 14.6)."""
    response.status = 206
    if len(ranges) == 1:
        first, last = ranges[0]
        response.set_header("content-range", content_range(first, last, entry.size))
        await send_body(response, entry.body, entry.path, first, last - first + 1)
        return
    multipart = Multipart(ranges, entry.size, entry.content_type)
    response.set_header("content-type", multipart.content_type)
    response.set_header("content-length", multipart.length)
    await response.start()
    if response.finished:  # HEAD
        return
    fh = None if entry.body is not None else open_file(entry.path)
    try:
        pieces = list(multipart.pieces())
        for number, (data, span) in enumerate(pieces):
            last_piece = number == len(pieces) - 1
            if span is not None:
                first, last = span
                if entry.body is not None:
                    data = entry.body[first:last + 1]
                else:
                    assert fh is not None
                    fh.seek(first)
                    data = fh.read(last - first + 1)
            await response.write(data, end=last_piece)
    finally:
        if fh is not None:
            fh.close()

async def send_body(response: Response, body: bytes | None, path: str, offset: int,
                    length: int) -> None:
    """A slice of a cached body, or of the file on disk streamed in chunks."""
    if body is not None:
        await response.send(body if length == len(body) else body[offset:offset + length])
        return
    with open_file(path) as fh:
        if offset:
            fh.seek(offset)
        await response.send_open_file(fh, length)

"""h2 with two costs of a busy or idle connection taken out; the protocol logic is h2's.

- ``TunedH2Connection`` writes DATA and HEADERS frames into the send buffer with one
  ``struct.pack`` each, where h2 serializes every frame through hyperframe's generic path
  (flag objects, padding joins) and then checks the sizes again in a generator: about 5 us
  of the 25 us h2 spends on a small response. Other frames, and padded or prioritized ones,
  still go through hyperframe.
- ``BlockDecoder`` remembers the fields of a header block that changed nothing in the
  HPACK dynamic table: a client asking for the same URL again (a reload, polling, h2load)
  sends the very same bytes, all indexes into that table, and decoding them again would
  give the same fields while the table is unchanged.
- ``CompactSettings`` keeps each setting's values in a list instead of a deque.
"""

from __future__ import annotations

import struct
from typing import Any

import h2.connection
import h2.settings
import hpack
from hyperframe.frame import DataFrame, Frame, HeadersFrame

_FRAME_HEADER = struct.Struct(">HBBBL")  # 24-bit length, type, flags, stream id
_END_STREAM, _END_HEADERS = 0x1, 0x4


class TunedH2Connection(h2.connection.H2Connection):
    """``h2.connection.H2Connection`` with a faster way into its send buffer."""

    def _prepare_for_sending(self, frames: list[Frame]) -> None:
        buffer = getattr(self, "_data_to_send", None)
        if not isinstance(buffer, bytearray):  # an h2 that keeps it otherwise
            super()._prepare_for_sending(frames)
            return
        for frame in frames:
            kind = type(frame)
            if kind is DataFrame or kind is HeadersFrame:
                flags = frame.flags._flags  # type: ignore[attr-defined]
                if not frame.pad_length and "PADDED" not in flags \
                        and "PRIORITY" not in flags:  # type: ignore[attr-defined]
                    body = frame.data  # type: ignore[attr-defined]
                    if type(body) is memoryview:
                        body = body.tobytes()
                    length = len(body)
                    frame.body_len = length
                    bits = _END_STREAM if "END_STREAM" in flags else 0
                    if "END_HEADERS" in flags:
                        bits |= _END_HEADERS
                    buffer += _FRAME_HEADER.pack((length >> 8) & 0xFFFF, length & 0xFF,
                                                 frame.type, bits,
                                                 frame.stream_id & 0x7FFFFFFF)
                    buffer += body
                    continue
            buffer += frame.serialize()


class BlockDecoder(hpack.Decoder):
    """``hpack.Decoder`` that skips decoding a block it decoded before in the same table.

    The dynamic table only changes by insertions at its front and evictions at its back, so
    its length, the identity of its first entry and its size limit tell whether it changed
    since a block was decoded (an insertion can be a no-op under a small limit, hence the
    limit). Blocks that changed the table are not remembered (their bytes would mean
    something else next time); at most ``MAX_BLOCKS`` are, per connection.
    """

    MAX_BLOCKS = 32

    def __init__(self, max_header_list_size: int = 65536) -> None:
        super().__init__(max_header_list_size)
        self._blocks: dict[tuple[bytes, bool], tuple[tuple[int, Any, int], list[Any]]] | None \
            = None

    def decode(self, data: bytes, raw: bool = False) -> Any:
        state = self._state()
        key = (bytes(data), raw)
        if self._blocks is not None:
            known = self._blocks.get(key)
            if known is not None and _same(known[0], state):
                return list(known[1])
        fields = super().decode(data, raw)
        if _same(self._state(), state):
            if self._blocks is None:
                self._blocks = {}
            elif len(self._blocks) >= self.MAX_BLOCKS:
                self._blocks.clear()
            self._blocks[key] = (state, list(fields))
        return fields

    def _state(self) -> tuple[int, Any, int]:
        """What decoding depends on: the entries (length, first one) and the size limit.

        The first entry is compared by identity, and the remembered block keeps it alive,
        so a new entry can never pass for it.
        """
        entries = self.header_table.dynamic_entries
        return (len(entries), entries[0] if entries else None, self.header_table.maxsize)


def _same(a: tuple[int, Any, int], b: tuple[int, Any, int]) -> bool:
    # ``is`` for the entry: ``==`` would pass an equal entry inserted later.
    return a[0] == b[0] and a[1] is b[1] and a[2] == b[2]


class _Values(list):  # type: ignore[type-arg]
    """The values of one setting (current first, then pending), as h2's deque offers them."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class CompactSettings(h2.settings.Settings):
    """h2's ``Settings`` holding each setting's values in a list instead of a deque.

    A deque costs about 760 bytes even for the one value a setting holds between changes;
    two ``Settings`` of about seven settings each made a third of an idle connection's
    memory. The values are only ever read at ``[0]``, appended and popped from the left.
    """

    def __init__(self, client: bool = True,
                 initial_values: dict[h2.settings.SettingCodes, int] | None = None) -> None:
        super().__init__(client, initial_values)
        self._compact()

    def __setitem__(self, key: Any, value: int) -> None:
        super().__setitem__(key, value)
        self._compact()

    def _compact(self) -> None:
        values = getattr(self, "_settings", None)
        if isinstance(values, dict):
            for key, held in values.items():
                if type(held) is not _Values:
                    values[key] = _Values(held)

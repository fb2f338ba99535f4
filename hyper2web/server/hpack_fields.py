"""HPACK done once: response fields encoded once each (``FieldEncoder``), and a request's
header block decoded once while the dynamic table is unchanged (``BlockDecoder``).

``BlockDecoder``: a client asking for the same URL again (a reload, polling, h2load) sends
the very same bytes, all indexes into the dynamic table, and decoding them again would give
the same fields while the table is unchanged. It reads hpack's table, so ``tuning`` uses it
only on the hpack versions tested.

``FieldEncoder``:

h2's encoder (hpack) spends as much time on a response's header block as the rest of a
small static response together: it searches its tables and formats every field of every
response in Python. A development server sends the same few fields again and again
(``content-type: text/html; charset=utf-8``, ``cache-control: no-cache``, an etag), so this
encoder keeps each field's encoded bytes and joins them.

It never adds to the dynamic table (fields are sent as an index into the static table or as
a literal *without indexing*, RFC 7541 section 6.2.2), so a field's bytes do not depend on
the connection and one cache serves them all. What is given up is compression of repeated
values on the wire, a few hundred bytes per response on a loopback or LAN link.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hpack
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

from .hpack_decode import decode_block
from .prepared import PerTuple

_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
_STATIC_FIELDS: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_FIELDS.setdefault((_name, _value), _index)
    _STATIC_NAMES.setdefault(_name, _index)

MAX_CACHED = 4096  # fields kept; the cache starts over when full
MAX_CACHED_FIELD = 512  # bytes of name + value; longer fields are encoded each time
_UNCACHED_NAMES = frozenset({b"set-cookie", b"authorization", b"proxy-authorization",
                             "set-cookie", "authorization", "proxy-authorization"})
# Keyed by the fields as given: bytes from h2, str from the tuned send_headers (and h2 4.1).
_cache: dict[tuple[bytes | str, bytes | str], bytes] = {}
MAX_BLOCKS = 256  # whole header blocks kept (``head_block``), and their encoded bytes
_heads = PerTuple(MAX_BLOCKS)  # (status, fields) -> the block with ``:status``
_blocks = PerTuple(MAX_BLOCKS)  # a block -> its bytes


def _with_status(status: int, fields: tuple[Any, ...]) -> tuple[Any, ...]:
    return ((":status", str(status)), *fields)


def head_block(status: int, fields: tuple[tuple[str, str], ...]) -> tuple[Any, ...]:
    """``:status`` and a response's ``fields`` as one header block, the same tuple each time
    for the same tuple of fields (a cached file's, built once), so ``FieldEncoder`` can
    keep its encoded bytes (``prepared.PerTuple``)."""
    block: tuple[Any, ...] = _heads.make(fields, status, _with_status)
    return block


def encode_integer(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 section 5.1: ``value`` in a ``prefix_bits`` prefix of the byte ``first``."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_string(data: bytes) -> bytes:
    """RFC 7541 section 5.2: Huffman-coded when that is shorter."""
    packed = _HUFFMAN.encode(data)
    if len(packed) < len(data):
        return encode_integer(len(packed), 7, 0x80) + packed
    return encode_integer(len(data), 7, 0) + data


def encode_field(name: bytes, value: bytes) -> bytes:
    """One field: a static table index, else a literal without indexing."""
    index = _STATIC_FIELDS.get((name, value))
    if index is not None:
        return encode_integer(index, 7, 0x80)
    name_index = _STATIC_NAMES.get(name)
    if name_index is not None:
        return encode_integer(name_index, 4, 0) + encode_string(value)
    return b"\x00" + encode_string(name) + encode_string(value)


class FieldEncoder:
    """Stands in for ``hpack.Encoder`` as ``h2.connection.H2Connection.encoder``.

    h2 hands ``encode`` the fields as ``(bytes, bytes)`` tuples (the tuned ``send_headers``
    as the response's ``(str, str)``) and sets
    ``header_table_size`` when the peer changes SETTINGS_HEADER_TABLE_SIZE; the next block
    then starts with the dynamic table size updates the peer's decoder expects (RFC 7541
    section 4.2), although this encoder keeps nothing in that table.
    """

    __slots__ = ("_size", "_size_changes")
    takes_text = True  # str fields are encoded here (UTF-8): no need to encode them first

    def __init__(self) -> None:
        self._size = 4096
        self._size_changes: list[int] = []

    @property
    def header_table_size(self) -> int:
        return self._size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        if value != self._size:
            self._size = value
            self._size_changes.append(value)

    def encode(self, headers: Iterable[tuple[bytes | str, bytes | str]],
               huffman: bool = True) -> bytes:
        if type(headers) is tuple and not self._size_changes:
            # A tuple never changes: its bytes are kept with it (``head_block``).
            kept: bytes | None = _blocks.get(headers)
            if kept is None:
                kept = _blocks.put(headers, self._encode(headers))
            return kept
        return self._encode(headers)

    def _encode(self, headers: Iterable[tuple[bytes | str, bytes | str]]) -> bytes:
        parts = []
        if self._size_changes:
            smallest, last = min(self._size_changes), self._size_changes[-1]
            parts.append(encode_integer(smallest, 5, 0x20))
            if last != smallest:
                parts.append(encode_integer(last, 5, 0x20))
            self._size_changes.clear()
        cache = _cache
        for field in headers:
            name, value = field[0], field[1]
            block = cache.get((name, value))
            if block is None:
                # h2 4.1 hands over str fields when it normalizes nothing (cached as given).
                block = encode_field(name if isinstance(name, bytes) else name.encode(),
                                     value if isinstance(value, bytes) else value.encode())
                if len(name) + len(value) <= MAX_CACHED_FIELD and \
                        name not in _UNCACHED_NAMES:
                    if len(cache) >= MAX_CACHED:
                        cache.clear()
                    cache[(name, value)] = block
            parts.append(block)
        return b"".join(parts)


class BlockDecoder(hpack.Decoder):
    """``hpack.Decoder`` that skips decoding a block it decoded before in the same table,
    and decodes the others with ``hpack_decode.decode_block``.

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
        # h2 asks for bytes (raw): that is read by ``decode_block``, hpack's steps faster.
        fields = decode_block(self, key[0]) if raw else super().decode(data, raw)
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

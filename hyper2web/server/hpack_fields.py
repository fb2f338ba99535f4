"""HPACK encoding of response headers without the dynamic table, each field encoded once.

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

from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

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

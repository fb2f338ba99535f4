"""A request's header block decoded by hpack's own steps, with the two common ones inline.

hpack's ``Decoder.decode`` spends most of a block's time around each field rather than in
it: a call per representation and per integer, a memoryview slice, two debug-log calls,
a ``HeaderTuple`` made through a Python ``__new__``, and a second tuple per field to turn
its parts into ``bytes``. A request block is mostly two kinds of representation (RFC 7541
section 6): a field from the tables by index, and a literal whose name comes from the
tables and whose value is sent without indexing (h2load and curl send every ``:path`` so).

``decode_block`` walks the block as ``Decoder.decode`` does, in the same order and with the
same checks. Those two kinds, when their integers fit their prefix and the block holds
them whole, are read here: the table lookups and Huffman decoding are hpack's own
(``HeaderTable.STATIC_TABLE``, its dynamic entries, ``decode_huffman``). Every other
representation, and any of those two that is cut short or out of range, goes to the
decoder's own method for it, which reads it, changes the table and raises exactly as
``decode`` would. So the fields, the table and every error are hpack's; a test decodes
thousands of generated and mutated blocks both ways and compares all three.

It reads the decoder's private methods and table, so it is used only where ``tuning`` is,
on the hpack versions tested.
"""

from __future__ import annotations

from typing import Any

from hpack import HPACKDecodingError, OversizedHeaderListError
from hpack.huffman_table import decode_huffman
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple
from hpack.table import HeaderTable

_new = tuple.__new__
# The static table's fields as hpack returns them: made once, shared (tuples never change).
_STATIC = tuple(_new(HeaderTuple, field) for field in HeaderTable.STATIC_TABLE)
_STATIC_COUNT = len(_STATIC)
_ENTRY_OVERHEAD = 32  # RFC 7541 section 4.1, as hpack's table_entry_size


def decode_block(decoder: Any, data: bytes) -> list[Any]:
    """``decoder.decode(data, raw=True)``: the fields as ``bytes`` header tuples."""
    fields: list[Any] = []
    dynamic = decoder.header_table.dynamic_entries
    limit = decoder.max_header_list_size
    size = 0
    view: memoryview | None = None
    end = len(data)
    at = 0
    while at < end:
        first = data[at]
        field: Any = None
        if first & 0x80:  # indexed field
            index = first & 0x7F
            if 0 < index <= _STATIC_COUNT:
                field = _STATIC[index - 1]
                at += 1
            elif _STATIC_COUNT < index < 0x7F and index - _STATIC_COUNT <= len(dynamic):
                field = _new(HeaderTuple, dynamic[index - _STATIC_COUNT - 1])
                at += 1
        elif not first & 0xE0:  # literal without indexing (0000) or never indexed (0001)
            index = first & 0x0F
            start = at + 2
            if 0 < index < 0x0F and start <= end:
                length = data[start - 1]
                stop = start + (length & 0x7F)
                if length & 0x7F != 0x7F and stop <= end:
                    name = _STATIC[index - 1][0]  # 1-14: always the static table
                    value = data[start:stop]
                    if length & 0x80:
                        value = decode_huffman(value)
                    field = _new(NeverIndexedHeaderTuple if first & 0x10 else HeaderTuple,
                                 (name, value))
                    at = stop
        if field is None:  # hpack reads it, as ``Decoder.decode`` would
            if view is None:
                view = memoryview(data)
            field, used = _by_hpack(decoder, first, view[at:], bool(fields))
            at += used
            if field is None:
                continue
        fields.append(field)
        size += _ENTRY_OVERHEAD + len(field[0]) + len(field[1])
        if size > limit:
            msg = f"A header list larger than {limit} has been received"
            raise OversizedHeaderListError(msg)
    decoder._assert_valid_table_size()
    return fields


def _by_hpack(decoder: Any, first: int, rest: memoryview, after_fields: bool) -> tuple[Any, int]:
    """One representation read by the decoder's own method: (field or None, bytes used)."""
    if first & 0x80:
        field, used = decoder._decode_indexed(rest)
    elif first & 0x40:
        field, used = decoder._decode_literal_index(rest)
    elif first & 0x20:
        if after_fields:
            msg = "Table size update not at the start of the block"
            raise HPACKDecodingError(msg)
        return None, decoder._update_encoding_context(rest)
    else:
        field, used = decoder._decode_literal_no_index(rest)
    # What ``decode`` does to every field before returning it with ``raw=True``.
    return _new(type(field), (bytes(field[0]), bytes(field[1]))), used

"""Response header blocks encoded field by field without the dynamic table: every decoder
must read them back exactly, including after the peer shrinks its header table."""

from __future__ import annotations

import subprocess
from typing import Any

import hpack
import pytest

from hyper2web.server.hpack_fields import (
    MAX_BLOCKS,
    MAX_CACHED,
    FieldEncoder,
    _blocks,
    _cache,
    _heads,
    encode_integer,
    head_block,
)
from tests.server.h2client import H2Client
from tests.support import need_tool

FIELDS = [
    (b":status", b"200"),  # a whole static table entry
    (b":status", b"207"),  # a static name with another value
    (b"content-type", b"text/html; charset=utf-8"),
    (b"x-content-type-options", b"nosniff"),  # a name outside the static table
    (b"etag", b'"1a2b-3c4d"'),
    (b"x-empty", b""),
    (b"x-long", b"v" * 5000),  # lengths above one prefix byte, never cached
    (b"x-bytes", bytes(range(32, 127))),  # characters whose Huffman code is longer
]


def decode(block: bytes, decoder: hpack.Decoder | None = None) -> list[tuple[bytes, bytes]]:
    return (decoder or hpack.Decoder()).decode(block, raw=True)


def test_fields_decode_back_exactly() -> None:
    encoder = FieldEncoder()
    decoder = hpack.Decoder()
    for _ in range(3):  # the second and third blocks come from the cache
        assert decode(encoder.encode(FIELDS), decoder) == FIELDS
    # Nothing was added to the peer's dynamic table.
    assert len(decoder.header_table.dynamic_entries) == 0


@pytest.mark.parametrize(("value", "bits", "encoded"), [
    (10, 5, b"\x0a"), (1337, 5, b"\x1f\x9a\x0a"), (42, 8, b"\x2a"), (127, 7, b"\x7f\x00"),
])
def test_integers_as_in_rfc_7541_appendix_c1(value: int, bits: int, encoded: bytes) -> None:
    assert encode_integer(value, bits, 0) == encoded


def test_a_smaller_table_is_announced_at_the_start_of_the_next_block() -> None:
    encoder = FieldEncoder()
    encoder.header_table_size = 0
    encoder.header_table_size = 256
    block = encoder.encode([(b":status", b"200")])
    # RFC 7541 4.2: the smallest size, then the final one, before any field.
    assert block == bytes([0x20]) + bytes([0x3F, 0xE1, 0x01]) + b"\x88"
    decoder = hpack.Decoder()
    decoder.header_table_size = 256
    assert decode(block, decoder) == [(b":status", b"200")]
    assert encoder.encode([(b":status", b"200")]) == b"\x88"  # announced once


def test_a_prepared_block_is_made_and_encoded_once_and_reads_back_the_same() -> None:
    """``head_block``: the same tuple for the same tuple of fields, whose bytes the encoder
    keeps; a table size change still goes first, and the bytes equal a list's."""
    fields = (("content-type", "text/html"), ("etag", '"1"'), ("content-length", "2"))
    block = head_block(200, fields)
    assert head_block(200, fields) is block and head_block(304, fields) is not block
    assert head_block(200, tuple(fields)) is block  # the same tuple object
    assert head_block(200, (*fields, ("x", "y"))) is not block
    encoder = FieldEncoder()
    as_list = encoder.encode(list(block))
    assert encoder.encode(block) == as_list
    assert encoder.encode(block) is encoder.encode(block)  # kept, not encoded again
    assert decode(as_list) == [(k.encode(), v.encode()) for k, v in block]
    encoder.header_table_size = 0
    assert encoder.encode(block) == bytes([0x20]) + as_list  # the update, then the block
    assert encoder.encode(block) == as_list


def test_kept_blocks_are_bounded() -> None:
    encoder = FieldEncoder()
    for number in range(MAX_BLOCKS + 10):
        encoder.encode(head_block(200, (("content-length", str(number)),)))
    assert len(_blocks) <= MAX_BLOCKS and len(_heads) <= MAX_BLOCKS


def test_the_cache_is_bounded() -> None:
    encoder = FieldEncoder()
    for number in range(MAX_CACHED + 10):
        encoder.encode([(b"content-length", str(number).encode())])
    assert len(_cache) <= MAX_CACHED
    assert decode(encoder.encode([(b"content-length", b"7")])) == [(b"content-length", b"7")]


def test_h2_client_reads_many_responses_on_one_connection(server: Any) -> None:
    with H2Client(server.port) as client:
        for path in ["/index.html", "/echo/a", "/missing", "/index.html", "/fast"] * 4:
            result = client.get(path, timeout=5)
            assert result.status in (200, 404)
            assert result.header("content-length") is not None


def test_nghttp_with_a_zero_header_table(server: Any) -> None:
    """nghttp2 insists on the table size update after it lowers SETTINGS_HEADER_TABLE_SIZE."""
    nghttp = need_tool("nghttp")
    url = f"https://127.0.0.1:{server.port}"
    done = subprocess.run(
        [nghttp, "-nv", "--header-table-size=0", f"{url}/index.html", f"{url}/echo/x",
         f"{url}/fast"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "COMPRESSION_ERROR" not in done.stdout
    assert done.stdout.count(":status: 200") == 3

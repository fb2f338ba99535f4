"""``hpack_decode.decode_block`` against hpack's own ``Decoder.decode``: the same fields (types
included), the same dynamic table and the same errors, for generated, hand-made, cut and
mutated header blocks, one decoder pair carried across each whole sequence."""

from __future__ import annotations

import random
import re

import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

from hyper2web.server.hpack_decode import decode_block
from hyper2web.server.hpack_fields import BlockDecoder

_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
NAMES = [":path", ":authority", ":method", ":scheme", "user-agent", "accept", "cookie",
         "accept-encoding", "if-none-match", "x-custom", "sec-fetch-mode", "referer"]


def _outcome(decoder: hpack.Decoder, block: bytes, fast: bool) -> tuple:
    try:
        fields = decode_block(decoder, block) if fast else decoder.decode(block, raw=True)
        result: tuple = ("ok", [(type(f), f[0], f[1]) for f in fields])
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        # hpack 4.0 names the memoryview it read in some messages: its address differs.
        result = ("error", type(exc), re.sub(r"<memory at 0x[0-9a-f]+>", "<memory>", str(exc)))
    table = decoder.header_table
    return result, list(table.dynamic_entries), table.maxsize, decoder.header_table_size


def _check(pair: tuple[hpack.Decoder, hpack.Decoder], block: bytes, label: object) -> str:
    stock, fast = _outcome(pair[0], block, False), _outcome(pair[1], block, True)
    assert fast == stock, (label, block.hex())
    return stock[0][0]


def _pair(limit: int = 65536) -> tuple[hpack.Decoder, hpack.Decoder]:
    return hpack.Decoder(limit), hpack.Decoder(limit)


def _value(rng: random.Random) -> str:
    size = rng.choice([0, 1, 5, 20, 126, 127, 128, 300])
    return "".join(rng.choice("abcXYZ019/-_.?=&% ") for _ in range(size))


def _headers(rng: random.Random) -> list:
    headers = []
    for _ in range(rng.randint(1, 9)):
        name = rng.choice(NAMES)
        value = rng.choice(["GET", "https", "/", "*/*", "gzip, deflate, br"]) \
            if rng.random() < 0.3 else _value(rng)
        if rng.random() < 0.15:
            headers.append((name, value, True))  # sensitive: never indexed
        else:
            headers.append((name, value))
    return headers


def _string(data: bytes, huffman: bool) -> bytes:
    if huffman:
        data = _HUFFMAN.encode(data)
    return _integer(len(data), 7, 0x80 if huffman else 0) + data


def _integer(value: int, bits: int, first: int) -> bytes:
    limit = (1 << bits) - 1
    if value < limit:
        return bytes((first | value,))
    out, value = bytearray((first | limit,)), value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(out + bytes((value,)))


# Hand-made representations: the inline kinds at their edges, and every other kind.
MADE = {
    "static index": b"\x82\x84\x87",
    "index 0": b"\x80",
    "index past the tables": b"\xbf",
    "index with a long integer": _integer(70, 7, 0x80),
    "index 127 and up": _integer(127, 7, 0x80) + _integer(130, 7, 0x80),
    "long integer cut": b"\xff",
    "literal, static name, plain": b"\x04" + _string(b"/a/b.js?v=1", False),
    "literal, static name, huffman": b"\x04" + _string(b"/a/b.js?v=1", True),
    "never indexed": b"\x14" + _string(b"/secret", True),
    "name index 15 (long integer)": _integer(15, 4, 0) + _string(b"x", False),
    "name index past the tables": _integer(70, 4, 0) + _string(b"x", False),
    "literal name": b"\x00" + _string(b"x-a", False) + _string(b"b", True),
    "value of 127 bytes": b"\x04" + _string(b"v" * 127, False),
    "value of 200 bytes, huffman": b"\x04" + _string(b"/p" * 100, True),
    "value cut": b"\x04\x05ab",
    "no value length": b"\x04",
    "empty value": b"\x04\x00",
    "bad huffman": b"\x04\x81\xff",
    "huffman with bad padding": b"\x04\x82\x00\x00",
    "incremental indexing": b"\x44" + _string(b"/new", True),
    "incremental then indexed": b"\x44" + _string(b"/new", True) + b"\xbe",
    "size update first": b"\x3f\xe1\x1f\x82",
    "size update after a field": b"\x82\x20",
    "size update too large": b"\x3f\xe1\xff\x07",
    "two size updates": b"\x20\x3f\xe1\x1f\x84",
}


@pytest.mark.parametrize("label", list(MADE))
def test_hand_made_representations(label: str) -> None:
    pair = _pair()
    # A table of 80 entries first, so dynamic indexes (62, 63, and 127 and up, which take
    # more than the first byte) mean something.
    seed = b"\x41" + _string(b"two.example", True) + b"".join(
        b"\x40" + _string(b"x-n", False) + _string(str(n).encode(), False) for n in range(79))
    _check(pair, seed, "seed")
    _check(pair, MADE[label], label)
    _check(pair, b"\xbe\xbf" + MADE[label], ("after dynamic fields", label))
    for cut in range(len(MADE[label])):
        _check(pair, MADE[label][:cut], ("cut", label, cut))


@pytest.mark.parametrize("seed", range(6))
def test_generated_blocks_decode_alike(seed: int) -> None:
    rng = random.Random(seed)
    encoder, pair = hpack.Encoder(), _pair()
    outcomes = set()
    for step in range(700):
        if step % 150 == 75:  # the peer's encoder changes its table size: updates, evictions
            encoder.header_table_size = rng.choice([0, 100, 4096])
        block = encoder.encode(_headers(rng), huffman=rng.random() < 0.7)
        outcomes.add(_check(pair, block, step))
    assert outcomes == {"ok"}


@pytest.mark.parametrize("seed", range(6))
def test_mutated_blocks_fail_or_pass_alike(seed: int) -> None:
    rng = random.Random(100 + seed)
    encoder = hpack.Encoder()
    pair = _pair(rng.choice([65536, 400]))  # a small limit: oversized header lists too
    outcomes = set()
    for step in range(600):
        block = bytearray(encoder.encode(_headers(rng), huffman=rng.random() < 0.7))
        for _ in range(rng.randint(1, 3)):
            spot = rng.randrange(len(block))
            kind = rng.random()
            if kind < 0.5:
                block[spot] = rng.randrange(256)
            elif kind < 0.7:
                del block[spot:]
            else:
                block.insert(spot, rng.randrange(256))
            if not block:
                break
        if step % 97 == 0:  # our SETTINGS shrank the table and the peer did not follow
            allowed = rng.choice([0, 200, 4096])
            for decoder in pair:
                decoder.max_allowed_table_size = allowed
        outcomes.add(_check(pair, bytes(block), step))
    assert outcomes == {"ok", "error"}  # both kinds of outcome were compared


def test_the_block_decoder_uses_it_for_bytes_and_hpack_for_text() -> None:
    encoder, stock, ours = hpack.Encoder(), hpack.Decoder(), BlockDecoder()
    block = encoder.encode([(":path", "/a?x=1"), ("user-agent", "curl/8"), ("x-b", "c")])
    assert ours.decode(block, raw=True) == stock.decode(block, raw=True)
    block = encoder.encode([(":path", "/é"), ("x-b", "c")])
    assert ours.decode(block) == stock.decode(block) == [(":path", "/é"), ("x-b", "c")]
    with pytest.raises(hpack.HPACKDecodingError):
        ours.decode(b"\x04\x81\xff", raw=True)

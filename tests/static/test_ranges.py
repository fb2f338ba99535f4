"""Byte ranges end to end: single and multiple ranges, if-range, 416, HEAD, big files."""

from __future__ import annotations

import os
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import pytest

from tests.static.statictools import curl, h2_request, parse_byteranges, touch_later

DATA = bytes(range(256)) * 16 + b"tail"  # 4100 bytes, every offset recognisable
TEXT = b"".join(b"line %05d of a compressible text file\n" % i for i in range(200))
BIG = os.urandom(1024 * 1024) * 5 + b"end of the big file"  # beyond the in-memory cache


@pytest.fixture
def root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    public.mkdir()
    (public / "data.bin").write_bytes(DATA)
    (public / "text.txt").write_bytes(TEXT)
    (public / "empty.bin").write_bytes(b"")
    (public / "big.bin").write_bytes(BIG)
    (public / "a file é.bin").write_bytes(DATA)
    return public


@pytest.fixture
def server(serve_app, root):
    return serve_app(root=root)


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("0-9", 0, 9),
        ("0-0", 0, 0),
        ("4099-4099", 4099, 4099),
        ("100-", 100, 4099),
        ("-50", 4050, 4099),
        ("-1", 4099, 4099),
        ("-100000", 0, 4099),
        ("4000-99999", 4000, 4099),
        ("0-", 0, 4099),
    ],
)
def test_single_range(server, client, spec, first, last) -> None:
    r = client.get(server.url + "/data.bin", headers={"range": f"bytes={spec}"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert r.content == DATA[first:last + 1]
    assert int(r.headers["content-length"]) == last - first + 1
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["accept-ranges"] == "bytes"


def test_zero_length_start_gives_one_byte(server) -> None:
    raw = h2_request(server.port, "/data.bin", headers=[("range", "bytes=0-0")])
    assert raw.status == 206 and raw.body == DATA[:1]
    assert raw.header("content-range") == f"bytes 0-0/{len(DATA)}"
    assert raw.header("content-length") == "1"


@pytest.mark.parametrize(
    "spans",
    [
        [(0, 9), (100, 199)],
        [(0, 0), (4099, 4099)],
        [(10, 19), (1000, 1999), (4090, 4099)],
    ],
)
def test_several_ranges_give_multipart(server, client, spans) -> None:
    spec = ",".join(f"{a}-{b}" for a, b in spans)
    r = client.get(server.url + "/data.bin", headers={"range": f"bytes={spec}"})
    assert r.status_code == 206
    assert "content-range" not in r.headers
    ctype = r.headers["content-type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    assert int(r.headers["content-length"]) == len(r.content)
    parts = parse_byteranges(r.content, ctype)
    assert len(parts) == len(spans)
    for (headers, data), (a, b) in zip(parts, spans, strict=True):
        assert headers["content-range"] == f"bytes {a}-{b}/{len(DATA)}"
        assert headers["content-type"] == "application/octet-stream"
        assert data == DATA[a:b + 1]


def test_suffix_and_open_ranges_in_multipart(server, client) -> None:
    r = client.get(server.url + "/text.txt",
                   headers={"range": "bytes=0-4, -6", "accept-encoding": "gzip, br"})
    assert r.status_code == 206 and "content-encoding" not in r.headers
    parts = parse_byteranges(r.content, r.headers["content-type"])
    size = len(TEXT)
    assert [p[0]["content-range"] for p in parts] == [
        f"bytes 0-4/{size}", f"bytes {size - 6}-{size - 1}/{size}"]
    assert [p[1] for p in parts] == [TEXT[:5], TEXT[-6:]]
    assert parts[0][0]["content-type"] == "text/plain; charset=utf-8"


def test_multipart_with_curl(server) -> None:
    got = curl(server.url + "/data.bin", "-r", "0-9,20-29,4096-")
    assert got.version == "2" and got.status == 206
    parts = parse_byteranges(got.body, got.headers["content-type"])
    assert [data for _, data in parts] == [DATA[0:10], DATA[20:30], DATA[4096:]]
    assert parts[2][0]["content-range"] == f"bytes 4096-4099/{len(DATA)}"


def test_ranges_that_cost_more_than_the_file_are_ignored(server, client) -> None:
    r = client.get(server.url + "/data.bin", headers={"range": "bytes=0-4000,100-4099"})
    assert r.status_code == 200 and r.content == DATA


@pytest.mark.parametrize("spec", ["bytes=abc", "bytes=9-3", "items=0-1", "bytes=-", "0-5"])
def test_malformed_range_is_ignored(server, client, spec) -> None:
    r = client.get(server.url + "/data.bin", headers={"range": spec})
    assert r.status_code == 200 and r.content == DATA
    assert "content-range" not in r.headers


def test_if_range(server, client, root) -> None:
    url = server.url + "/data.bin"
    full = client.get(url)
    etag, date = full.headers["etag"], full.headers["last-modified"]
    for validator in (etag, date):
        r = client.get(url, headers={"range": "bytes=10-19", "if-range": validator})
        assert r.status_code == 206, validator
        assert r.content == DATA[10:20]
    older = formatdate(parsedate_to_datetime(date).timestamp() - 60, usegmt=True)
    for validator in ('"stale"', older, f"W/{etag}"):
        r = client.get(url, headers={"range": "bytes=10-19", "if-range": validator})
        assert r.status_code == 200, validator
        assert r.content == DATA and "content-range" not in r.headers
    # the file changes: the old validators now send the whole new file
    new = DATA[::-1]
    (root / "data.bin").write_bytes(new)
    touch_later(root / "data.bin")
    for validator in (etag, date):
        r = client.get(url, headers={"range": "bytes=10-19", "if-range": validator})
        assert r.status_code == 200, validator
        assert r.content == new


def test_if_range_with_curl(server) -> None:
    etag = curl(server.url + "/data.bin").headers["etag"]
    got = curl(server.url + "/data.bin", "-r", "5-9", "-H", f"If-Range: {etag}")
    assert got.status == 206 and got.body == DATA[5:10]
    got = curl(server.url + "/data.bin", "-r", "5-9", "-H", 'If-Range: "other"')
    assert got.status == 200 and got.body == DATA


@pytest.mark.parametrize("spec", ["bytes=4100-", "bytes=5000-6000", "bytes=-0",
                                  "bytes=4100-4200, 9000-"])
def test_unsatisfiable_range_gives_416(server, client, spec) -> None:
    r = client.get(server.url + "/data.bin", headers={"range": spec})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"
    assert r.content == b""


def test_empty_file(server, client) -> None:
    url = server.url + "/empty.bin"
    r = client.get(url)
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    for spec in ("bytes=0-0", "bytes=0-", "bytes=-5"):
        r = client.get(url, headers={"range": spec})
        assert r.status_code == 416, spec
        assert r.headers["content-range"] == "bytes */0"
    r = client.head(url, headers={"range": "bytes=0-0"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */0"


def test_unsatisfiable_range_with_matching_if_none_match_is_304(server, client) -> None:
    """Preconditions come before the range (RFC 9110 13.2.2): a cached copy wins."""
    url = server.url + "/data.bin"
    etag = client.get(url).headers["etag"]
    r = client.get(url, headers={"range": "bytes=9000-", "if-none-match": etag})
    assert r.status_code == 304 and r.content == b""
    r = client.get(url, headers={"range": "bytes=0-9", "if-none-match": etag})
    assert r.status_code == 304


def test_range_on_a_compressible_file_is_never_encoded(server) -> None:
    """The raw client sees the bytes as sent: a slice of the file itself."""
    for coding in ("br", "gzip", "zstd", "br, gzip, zstd"):
        raw = h2_request(server.port, "/text.txt",
                         headers=[("range", "bytes=100-299"), ("accept-encoding", coding)])
        assert raw.status == 206
        assert raw.header("content-encoding") is None
        assert raw.body == TEXT[100:300]
        assert raw.header("content-range") == f"bytes 100-299/{len(TEXT)}"
    # the same file without a range is compressed: the check above means something
    whole = h2_request(server.port, "/text.txt", headers=[("accept-encoding", "br")])
    assert whole.status == 200 and whole.header("content-encoding") == "br"


def test_range_on_a_compressible_file_with_curl(server) -> None:
    got = curl(server.url + "/text.txt", "-r", "0-99", "-H", "Accept-Encoding: br, gzip")
    assert got.status == 206 and "content-encoding" not in got.headers
    assert got.body == TEXT[:100]


def test_head_with_range(server, client) -> None:
    r = client.head(server.url + "/data.bin", headers={"range": "bytes=10-29"})
    assert r.status_code == 206 and r.content == b""
    assert r.headers["content-range"] == f"bytes 10-29/{len(DATA)}"
    assert r.headers["content-length"] == "20"
    r = client.head(server.url + "/data.bin", headers={"range": "bytes=0-1,10-11"})
    assert r.status_code == 206 and r.content == b""
    got = client.get(server.url + "/data.bin", headers={"range": "bytes=0-1,10-11"})
    assert r.headers["content-length"] == got.headers["content-length"]
    raw = h2_request(server.port, "/big.bin", "HEAD", headers=[("range", "bytes=-10")])
    assert raw.status == 206 and raw.chunks == []
    assert raw.header("content-range") == f"bytes {len(BIG) - 10}-{len(BIG) - 1}/{len(BIG)}"


@pytest.mark.parametrize(
    "spans",
    [[(0, 99)], [(3_000_000, 3_999_999)], [(len(BIG) - 19, len(BIG) - 1)],
     [(0, 9), (4_000_000, 4_000_009), (len(BIG) - 5, len(BIG) - 1)]],
)
def test_ranges_of_a_big_file_stream_from_disk(server, client, spans) -> None:
    spec = ",".join(f"{a}-{b}" for a, b in spans)
    r = client.get(server.url + "/big.bin", headers={"range": f"bytes={spec}"})
    assert r.status_code == 206
    if len(spans) == 1:
        a, b = spans[0]
        assert r.headers["content-range"] == f"bytes {a}-{b}/{len(BIG)}"
        assert r.content == BIG[a:b + 1]
    else:
        parts = parse_byteranges(r.content, r.headers["content-type"])
        assert [data for _, data in parts] == [BIG[a:b + 1] for a, b in spans]


def test_range_on_a_percent_encoded_name(server, client) -> None:
    r = client.get(server.url + "/a%20file%20%C3%A9.bin", headers={"range": "bytes=-4"})
    assert r.status_code == 206 and r.content == DATA[-4:]
    got = curl(server.url + "/a%20file%20%C3%A9.bin", "-r", "1-3")
    assert got.status == 206 and got.body == DATA[1:4]

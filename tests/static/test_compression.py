"""Content coding end to end: negotiation, which files, precompressed siblings, caching."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import brotli
import httpx
import pytest
import zstandard

from hyper2web import encoding
from tests.static.statictools import curl, h2_request, need_tool, touch_later


def text(kind: str, size: int = 6000) -> bytes:
    line = f"/* {kind}: some text that compresses well */ const value = 'lorem ipsum';\n"
    return (line * (size // len(line) + 1)).encode()[:size]


COMPRESSIBLE = {
    "page.html": text("html"),
    "style.css": text("css"),
    "app.js": text("js"),
    "mod.mjs": text("mjs"),
    "data.json": b'{"items": [' + b'{"name": "value", "n": 12345}, ' * 200 + b"{}]}",
    "icon.svg": b"<svg xmlns='http://www.w3.org/2000/svg'>" + b"<rect width='1'/>" * 200
                + b"</svg>",
    "module.wasm": b"\x00asm\x01\x00\x00\x00" + b"\x00\x01\x02\x03" * 1000,
    "manifest.webmanifest": b'{"name": "app", "icons": [' + b'{"src": "i.png"},' * 200
                            + b"{}]}",
    "feed.xml": b"<?xml version='1.0'?><feed>" + b"<entry>item</entry>" * 200 + b"</feed>",
    "notes.txt": text("txt"),
    "app.js.map": b'{"version": 3, "mappings": "' + b"AAAA;" * 1000 + b'"}',
}
INCOMPRESSIBLE = {
    "image.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 6000,
    "font.woff2": b"wOF2" + b"\x00" * 6000,
    "archive.zip": b"PK\x03\x04" + b"\x00" * 6000,
    "photo.jpg": b"\xff\xd8\xff" + b"\x00" * 6000,
    "clip.mp4": b"\x00\x00\x00\x18ftyp" + b"\x00" * 6000,
    "blob.bin": b"\x00" * 6000,
    "bundle.js.gz": gzip.compress(text("gz js"), mtime=0),
    "theme.css.br": brotli.compress(text("br css")),
    "vector.svgz": gzip.compress(text("svgz"), mtime=0),
}
SMALL = {"tiny.js": text("tiny", 1000), "tiny.css": text("tiny", 200), "tiny.json": b"{}"}
ALL = {**COMPRESSIBLE, **INCOMPRESSIBLE, **SMALL}


def decode(coding: str | None, data: bytes) -> bytes:
    if coding is None:
        return data
    if coding == "br":
        return brotli.decompress(data)
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise AssertionError(f"unexpected coding {coding}")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    public.mkdir()
    for name, data in ALL.items():
        (public / name).write_bytes(data)
    return public


@pytest.fixture
def server(serve_app, root):
    return serve_app(root=root)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("br", "br"),
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("x-gzip", "gzip"),
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, zstd", "zstd"),
        ("br;q=0, gzip", "gzip"),
        ("br;q=0, zstd;q=0, gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("br;q=0.1, gzip;q=0.2, zstd;q=0.3", "zstd"),
        ("GZIP;Q=1", "gzip"),
        ("*", "br"),
        ("*, br;q=0", "zstd"),
        ("identity", None),
        ("deflate", None),
        ("br;q=0, gzip;q=0, zstd;q=0", None),
        ("*;q=0, identity", None),
        ("gzip;q=0.5, identity;q=1", None),
        ("", None),
    ],
)
def test_negotiation_honours_q_values(server, accept, expected) -> None:
    raw = h2_request(server.port, "/app.js", headers=[("accept-encoding", accept)])
    assert raw.status == 200
    assert raw.header("content-encoding") == expected
    assert raw.header("vary") == "accept-encoding"
    assert int(raw.header("content-length") or -1) == len(raw.body)
    if expected is not None:
        assert len(raw.body) < len(COMPRESSIBLE["app.js"])
    assert decode(expected, raw.body) == COMPRESSIBLE["app.js"]


@pytest.mark.parametrize("name", list(COMPRESSIBLE))
@pytest.mark.parametrize("coding", ["br", "gzip", "zstd"])
def test_compressible_types_are_compressed(server, name, coding) -> None:
    raw = h2_request(server.port, "/" + name, headers=[("accept-encoding", coding)])
    assert raw.status == 200
    assert raw.header("content-encoding") == coding, raw.header("content-type")
    assert raw.header("vary") == "accept-encoding"
    assert len(raw.body) < len(COMPRESSIBLE[name])
    assert decode(coding, raw.body) == COMPRESSIBLE[name]


@pytest.mark.parametrize("name", list(INCOMPRESSIBLE))
def test_binary_and_precompressed_files_are_sent_as_they_are(server, name) -> None:
    raw = h2_request(server.port, "/" + name, headers=[("accept-encoding", "br, gzip, zstd")])
    assert raw.status == 200
    assert raw.header("content-encoding") is None, raw.header("content-type")
    assert raw.body == INCOMPRESSIBLE[name]
    assert raw.header("vary") is None


@pytest.mark.parametrize("name", list(SMALL))
def test_small_files_are_not_compressed(server, name) -> None:
    raw = h2_request(server.port, "/" + name, headers=[("accept-encoding", "br, gzip, zstd")])
    assert raw.status == 200
    assert raw.header("content-encoding") is None
    assert raw.body == SMALL[name]


@pytest.mark.parametrize(("coding", "suffix"), [("br", ".br"), ("gzip", ".gz"),
                                                ("zstd", ".zst")])
def test_fresh_precompressed_sibling_is_served_as_is(serve_app, root, coding, suffix) -> None:
    data = COMPRESSIBLE["app.js"]
    sibling = {
        "br": brotli.compress(data, quality=11, lgwin=16),
        "gzip": gzip.compress(data, compresslevel=9, mtime=123456789),
        "zstd": zstandard.ZstdCompressor(level=19).compress(data),
    }[coding]
    assert sibling != encoding.compress(coding, data)  # distinguishable from the server's
    (root / ("app.js" + suffix)).write_bytes(sibling)
    touch_later(root / ("app.js" + suffix))
    server = serve_app(root=root)
    raw = h2_request(server.port, "/app.js", headers=[("accept-encoding", coding)])
    assert raw.status == 200 and raw.header("content-encoding") == coding
    assert raw.body == sibling
    assert raw.header("content-length") == str(len(sibling))
    assert raw.header("content-type") == "text/javascript; charset=utf-8"
    assert raw.header("vary") == "accept-encoding"
    assert decode(coding, raw.body) == data
    # other codings are still compressed by the server
    other = "gzip" if coding != "gzip" else "br"
    raw = h2_request(server.port, "/app.js", headers=[("accept-encoding", other)])
    assert raw.header("content-encoding") == other and decode(other, raw.body) == data
    # a HEAD agrees with the GET
    head = h2_request(server.port, "/app.js", "HEAD", headers=[("accept-encoding", coding)])
    assert head.header("content-length") == str(len(sibling)) and head.chunks == []


def test_stale_precompressed_sibling_is_ignored(serve_app, root) -> None:
    data = COMPRESSIBLE["style.css"]
    old = brotli.compress(b"an older version of style.css" * 50)
    (root / "style.css.br").write_bytes(old)
    (root / "style.css.gz").write_bytes(gzip.compress(b"older" * 300))
    stamp = os.stat(root / "style.css").st_mtime_ns - 60 * 10**9
    for name in ("style.css.br", "style.css.gz"):
        os.utime(root / name, ns=(stamp, stamp))
    server = serve_app(root=root)
    for coding in ("br", "gzip"):
        raw = h2_request(server.port, "/style.css", headers=[("accept-encoding", coding)])
        assert raw.header("content-encoding") == coding
        assert decode(coding, raw.body) == data


def test_a_sibling_that_is_a_symlink_is_ignored(serve_app, root, tmp_path) -> None:
    # A symlinked sibling could lead out of the served folder: never sent.
    data = COMPRESSIBLE["app.js"]
    outside = tmp_path / "outside.br"
    outside.write_bytes(brotli.compress(b"not for the client " * 100))
    (root / "app.js.br").symlink_to(outside)
    touch_later(outside)
    server = serve_app(root=root)
    raw = h2_request(server.port, "/app.js", headers=[("accept-encoding", "br")])
    assert raw.status == 200 and raw.header("content-encoding") == "br"
    assert decode("br", raw.body) == data


def test_sibling_becomes_stale_when_the_file_is_edited(serve_app, root) -> None:
    data = COMPRESSIBLE["app.js"]
    sibling = brotli.compress(data, quality=11, lgwin=16)
    (root / "app.js.br").write_bytes(sibling)
    touch_later(root / "app.js.br")
    server = serve_app(root=root)
    first = h2_request(server.port, "/app.js", headers=[("accept-encoding", "br")])
    assert first.body == sibling
    edited = data.replace(b"lorem", b"LOREM")
    (root / "app.js").write_bytes(edited)
    touch_later(root / "app.js", 10)
    second = h2_request(server.port, "/app.js", headers=[("accept-encoding", "br")])
    assert second.header("content-encoding") == "br"
    assert decode("br", second.body) == edited
    assert second.header("etag") != first.header("etag")


def test_decoding_clients_get_the_file(server, client) -> None:
    """httpx with its default accept-encoding, and curl --compressed, decode to the file."""
    with httpx.Client(http2=True, verify=False) as default:
        for name, data in ALL.items():
            r = default.get(f"{server.url}/{name}")
            assert r.http_version == "HTTP/2"
            assert r.content == data, name
    for name in ("app.js", "data.json", "icon.svg", "image.png"):
        got = curl(f"{server.url}/{name}", "--compressed")
        assert got.version == "2" and got.body == ALL[name]
        assert got.headers.get("content-encoding") == (None if name == "image.png" else "br")


def test_curl_sees_the_compressed_bytes(server) -> None:
    need_tool("curl")
    for coding in ("gzip", "br", "zstd"):
        got = curl(f"{server.url}/page.html", "-H", f"Accept-Encoding: {coding}")
        assert got.headers["content-encoding"] == coding
        assert got.headers["vary"] == "accept-encoding"
        assert int(got.headers["content-length"]) == len(got.body)
        assert decode(coding, got.body) == COMPRESSIBLE["page.html"]


def test_head_matches_get_for_each_coding(server, client) -> None:
    for coding in ("br", "gzip", "zstd", "identity"):
        headers = {"accept-encoding": coding}
        got = client.get(server.url + "/feed.xml", headers=headers)
        head = client.head(server.url + "/feed.xml", headers=headers)
        assert head.status_code == 200 and head.content == b""
        for field in ("content-encoding", "content-length", "etag", "vary", "content-type"):
            assert head.headers.get(field) == got.headers.get(field), (coding, field)


def test_large_compressible_file(serve_app, root) -> None:
    """Bigger than the in-memory cache of plain bodies, still compressed, still whole."""
    data = b"".join(b"row %07d, some repeated text here\n" % i for i in range(20000))
    assert len(data) > 256 * 1024
    (root / "large.csv").write_bytes(data)
    server = serve_app(root=root)
    for coding in ("br", "gzip", "zstd"):
        raw = h2_request(server.port, "/large.csv", headers=[("accept-encoding", coding)])
        assert raw.header("content-encoding") == coding
        assert decode(coding, raw.body) == data
    raw = h2_request(server.port, "/large.csv", headers=[("accept-encoding", "identity")])
    assert raw.body == data


def test_compressed_bodies_are_cached(serve_app, root, monkeypatch) -> None:
    calls: list[tuple[str, int]] = []
    for coding in ("br", "gzip"):
        real = encoding.COMPRESSORS[coding]

        def counting(data: bytes, real=real, coding=coding) -> bytes:
            calls.append((coding, len(data)))
            return real(data)

        monkeypatch.setitem(encoding.COMPRESSORS, coding, counting)
    server = serve_app(root=root)
    for _ in range(3):
        raw = h2_request(server.port, "/app.js", headers=[("accept-encoding", "br")])
        assert decode("br", raw.body) == COMPRESSIBLE["app.js"]
    assert calls == [("br", len(COMPRESSIBLE["app.js"]))]
    for _ in range(2):
        h2_request(server.port, "/app.js", "HEAD", headers=[("accept-encoding", "br")])
        raw = h2_request(server.port, "/app.js", headers=[("accept-encoding", "gzip")])
        assert decode("gzip", raw.body) == COMPRESSIBLE["app.js"]
    assert [c for c, _ in calls] == ["br", "gzip"]
    # an edit makes a new version: compressed once more, then cached again
    edited = COMPRESSIBLE["app.js"].upper()
    (root / "app.js").write_bytes(edited)
    touch_later(root / "app.js")
    for _ in range(2):
        raw = h2_request(server.port, "/app.js", headers=[("accept-encoding", "br")])
        assert decode("br", raw.body) == edited
    assert [c for c, _ in calls] == ["br", "gzip", "br"]


def test_curl_with_a_browser_accept_encoding(server) -> None:
    """curl as a plain client with the browsers' header: it gets br and decodes it."""
    path = need_tool("curl")
    done = subprocess.run([path, "--http2", "-k", "-s", "--compressed", "-H",
                           "Accept-Encoding: gzip, deflate, br, zstd",
                           f"{server.url}/style.css"], capture_output=True, timeout=20)
    assert done.returncode == 0 and done.stdout == COMPRESSIBLE["style.css"]

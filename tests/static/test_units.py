"""Unit tests of the pure parts of static serving: ranges, codings, validators, listing."""

from __future__ import annotations

import os
import time

import pytest

from hyper2web import encoding
from hyper2web.files import FileCache, not_modified
from hyper2web.listing import render_listing
from hyper2web.ranges import Multipart, Unsatisfiable, if_range_matches, parse_range
from hyper2web.static import prefers_html


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, [(0, 0)]),
        ("bytes=0-4", 10, [(0, 4)]),
        ("bytes=5-", 10, [(5, 9)]),
        ("bytes=-3", 10, [(7, 9)]),
        ("bytes=-30", 10, [(0, 9)]),
        ("bytes=8-100", 10, [(8, 9)]),
        ("bytes=0-1, 4-5", 10, [(0, 1), (4, 5)]),
        ("bytes=0-1,20-30", 10, [(0, 1)]),
        (None, 10, None),
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=5-2", 10, None),
        ("bytes=-", 10, None),
        ("bytes=0-9,0-9", 10, None),  # more than the whole file: ignored
        ("bytes=" + ",".join(["0-0"] * 17), 10, None),
    ],
)
def test_parse_range(header, size, expected) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"),
                         [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-0", 0), ("bytes=-5", 0)])
def test_unsatisfiable_ranges(header, size) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_if_range() -> None:
    assert if_range_matches(None, '"a"', "date")
    assert if_range_matches('"a"', '"a"', "date")
    assert not if_range_matches('"b"', '"a"', "date")
    assert not if_range_matches('W/"a"', '"a"', "date")
    assert if_range_matches("date", '"a"', "date")
    assert not if_range_matches("other date", '"a"', "date")


def test_multipart_length_matches_body() -> None:
    data = bytes(range(100))
    parts = Multipart([(0, 9), (50, 59)], len(data), "text/plain")
    body = b"".join(piece if span is None else data[span[0]:span[1] + 1]
                    for piece, span in parts.pieces())
    assert len(body) == parts.length
    assert b"content-range: bytes 50-59/100" in body
    assert body.endswith(f"--{parts.boundary}--\r\n".encode())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("gzip, br", "br"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("*", encoding.PREFERENCE[0]),
        ("*;q=0", None),
        ("identity", None),
        ("deflate", None),
        ("gzip;q=0.5, identity;q=1", None),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("gzip;q=0.2", "gzip"),
        ("gzip;q=0.2, identity;q=0.2", "gzip"),
        ("*;q=0.5, identity;q=0.6", None),
        ("zstd", "zstd" if "zstd" in encoding.PREFERENCE else None),
    ],
)
def test_choose_coding(header, expected) -> None:
    assert encoding.choose_coding(header) == expected


@pytest.mark.parametrize(
    ("ctype", "expected"),
    [("text/html; charset=utf-8", True), ("text/javascript; charset=utf-8", True),
     ("application/json", True), ("image/svg+xml; charset=utf-8", True),
     ("application/wasm", True), ("application/manifest+json; charset=utf-8", True),
     ("image/png", False), ("font/woff2", False), ("video/mp4", False)],
)
def test_compressible(ctype, expected) -> None:
    assert encoding.is_compressible(ctype) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("app.js.gz", True), ("app.js.br", True), ("a.css.zst", True), ("logo.svgz", True),
     ("APP.JS.GZ", True), ("app.js", False), ("gz.js", False), ("style.css", False)],
)
def test_compressed_names(name, expected) -> None:
    assert encoding.is_compressed_name(name) is expected


def test_not_modified() -> None:
    now = time.time()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 10))
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert not_modified({"if-none-match": '"x"'}, '"x"', now)
    assert not_modified({"if-none-match": 'W/"x", "y"'}, '"x"', now)
    assert not_modified({"if-none-match": "*"}, '"x"', now)
    assert not not_modified({"if-none-match": '"y"'}, '"x"', now)
    assert not_modified({"if-modified-since": date}, '"x"', now)
    assert not not_modified({"if-modified-since": old}, '"x"', now)
    # if-none-match wins over if-modified-since
    assert not not_modified({"if-none-match": '"y"', "if-modified-since": date}, '"x"', now)
    assert not not_modified({"if-modified-since": "garbage"}, '"x"', now)


def test_file_cache_sees_changes(tmp_path) -> None:
    path = tmp_path / "a.js"
    path.write_text("x" * 2000)
    cache = FileCache()
    first = cache.get(str(path), os.stat(path))
    assert first.body == b"x" * 2000
    assert cache.get(str(path), os.stat(path)) is first
    path.write_text("y" * 2001)
    second = cache.get(str(path), os.stat(path))
    assert second is not first and second.etag != first.etag and second.body == b"y" * 2001
    variant = second.variant("gzip")
    assert variant is not None and variant.etag != second.etag and variant.size < 2001


def test_stale_precompressed_sibling_is_ignored(tmp_path) -> None:
    path = tmp_path / "a.css"
    path.write_text("body{}" * 400)
    sibling = tmp_path / "a.css.gz"
    sibling.write_bytes(b"precompressed")
    old = os.stat(path).st_mtime_ns - 10**9
    os.utime(sibling, ns=(old, old))
    entry = FileCache().get(str(path), os.stat(path))
    variant = entry.variant("gzip")
    assert variant is not None and variant.body != b"precompressed"


def test_prefers_html() -> None:
    chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
    assert prefers_html(chrome)
    assert not prefers_html("*/*")
    assert not prefers_html("application/json")
    assert not prefers_html("text/html;q=0.5, application/json")
    assert not prefers_html("")


def test_listing_escapes_and_hides(tmp_path) -> None:
    (tmp_path / "sub dir").mkdir()
    (tmp_path / "<b>&.txt").write_text("x")
    (tmp_path / ".secret").write_text("x")
    page = render_listing("/files/", str(tmp_path)).decode()
    assert "&lt;b&gt;&amp;.txt" in page
    assert 'href="%3Cb%3E%26.txt"' in page
    assert 'href="sub%20dir/"' in page
    assert ".secret" not in page
    assert "href='../'" in page
    assert page.index("sub dir/") < page.index("&lt;b&gt;")

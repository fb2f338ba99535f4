"""103 Early Hints: the preload links of a page, sent before its 200."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.h2client import H2Client
from tests.static.statictools import CHROME_ACCEPT, curl, h2_request

PAGE = b"""<!doctype html>
<html><head>
<meta charset=utf-8><title>Hints</title>
<link rel=preload href="/style.css" as=style>
<link rel="modulepreload" href="/app.mjs">
<link rel="stylesheet" href="/other.css">
<link href='/font.woff2' rel='preload' as='font' type='font/woff2' crossorigin>
<link rel=icon href=/favicon.ico>
</head><body>hints</body></html>
"""
PLAIN = b"<!doctype html><title>No hints</title><link rel=stylesheet href=/style.css>"
EXPECTED = ["</style.css>; rel=preload; as=style", "</app.mjs>; rel=modulepreload",
            "</font.woff2>; rel=preload; as=font; type=font/woff2; crossorigin"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_bytes(PAGE)
    (public / "plain.html").write_bytes(PLAIN)
    (public / "style.css").write_text("body{}\n")
    (public / "app.mjs").write_text("export const a = 1;\n")
    return public


def links_of(head: list[tuple[str, str]]) -> list[str]:
    values = [v for k, v in head if k == "link"]
    return [part.strip() for value in values for part in value.split(",")]


@pytest.mark.parametrize("path", ["/", "/index.html"])
def test_103_comes_before_the_200(serve_app, root, path) -> None:
    server = serve_app(root=root, early_hints=True)
    raw = h2_request(server.port, path, headers=[("accept", CHROME_ACCEPT)])
    assert raw.order == ["informational", "response", "data"]
    assert len(raw.informational) == 1
    hint = raw.informational[0]
    assert dict(hint)[":status"] == "103"
    assert links_of(hint) == EXPECTED
    assert raw.status == 200 and raw.body == PAGE


def test_no_103_without_the_option(serve_app, root) -> None:
    server = serve_app(root=root)
    raw = h2_request(server.port, "/", headers=[("accept", CHROME_ACCEPT)])
    assert raw.informational == [] and raw.order == ["response", "data"]
    assert raw.status == 200 and raw.body == PAGE


def test_no_103_for_pages_without_preload_links(serve_app, root) -> None:
    server = serve_app(root=root, early_hints=True)
    raw = h2_request(server.port, "/plain.html")
    assert raw.informational == [] and raw.status == 200 and raw.body == PLAIN


def test_no_103_for_head_304_and_other_files(serve_app, root) -> None:
    server = serve_app(root=root, early_hints=True)
    with H2Client(server.port) as client:
        head = client.fetch("/", "HEAD")
        assert head.informational == [] and head.status == 200 and head.chunks == []
        etag = client.fetch("/").header("etag")
        assert etag
        cached = client.fetch("/", headers=[("if-none-match", etag)])
        assert cached.status == 304 and cached.informational == []
        css = client.fetch("/style.css")
        assert css.status == 200 and css.informational == []
        missing = client.fetch("/missing.html")
        assert missing.status == 404 and missing.informational == []
        # a second GET on the same connection gets its hints again
        again = client.fetch("/")
        assert links_of(again.informational[0]) == EXPECTED


def test_compressed_page_still_gets_hints(serve_app, root) -> None:
    (root / "index.html").write_bytes(PAGE + b"<p>padding</p>" * 200)
    server = serve_app(root=root, early_hints=True)
    raw = h2_request(server.port, "/", headers=[("accept-encoding", "br")])
    assert raw.order[:2] == ["informational", "response"]
    assert raw.header("content-encoding") == "br"


def test_spa_fallback_gets_hints(serve_app, root) -> None:
    server = serve_app(root=root, early_hints=True, spa=True)
    raw = h2_request(server.port, "/some/route", headers=[("accept", CHROME_ACCEPT)])
    assert raw.status == 200 and raw.body == PAGE
    assert links_of(raw.informational[0]) == EXPECTED


def test_curl_and_httpx_get_the_page(serve_app, root, client) -> None:
    server = serve_app(root=root, early_hints=True)
    got = curl(server.url + "/")
    assert got.version == "2"
    assert [status for status, _ in got.heads] == [103, 200]
    assert got.heads[0][1]["link"].split(", ") == EXPECTED
    assert got.body == PAGE
    r = client.get(server.url + "/")
    assert r.status_code == 200 and r.content == PAGE


def test_serve_early_hints_option(cli_server, root) -> None:
    server = cli_server(["serve", str(root), "--early-hints", "--port", "0"])
    raw = h2_request(server.port, "/", headers=[("accept", CHROME_ACCEPT)])
    assert raw.order[:2] == ["informational", "response"]
    assert links_of(raw.informational[0]) == EXPECTED
    assert raw.status == 200
    assert b"/__hyper2web__/" in raw.body  # live reload is on: the page is the filtered one
    plain = cli_server(["serve", str(root), "--no-reload", "--port", "0"])
    raw = h2_request(plain.port, "/")
    assert raw.informational == [] and raw.body == PAGE


TRICKY = """<!doctype html><head>
<link data-rel=preload href="/not-a-preload.js">
<link rel=preload href="/modulepreload-named.js" as=script title="as=style type=x">
<link rel="preload" href="/data.json?a=1&amp;b=2" as=fetch crossorigin="use-credentials">
<link rel=preload href="/café font.woff2" as=font crossorigin=anonymous>
<link rel=preload href="/x.js" as="script onload=alert(1)">
<link rel=preload as=image>
<link rel=preload href="/a>b.png" as=image>
<LINK REL=MODULEPRELOAD HREF=/upper.mjs>
</head>""".encode()


def test_preload_links_are_read_attribute_by_attribute(serve_app, root) -> None:
    (root / "tricky.html").write_bytes(TRICKY)
    server = serve_app(root=root, early_hints=True)
    raw = h2_request(server.port, "/tricky.html")
    assert raw.status == 200 and raw.body == TRICKY
    assert links_of(raw.informational[0]) == [
        "</modulepreload-named.js>; rel=preload; as=script",
        "</data.json?a=1&b=2>; rel=preload; as=fetch; crossorigin=use-credentials",
        "</caf%C3%A9%20font.woff2>; rel=preload; as=font; crossorigin",
        "</x.js>; rel=preload",
        "</upper.mjs>; rel=modulepreload",
    ]

"""Validators end to end: etag, last-modified, 304s, and a file edited between requests."""

from __future__ import annotations

import os
import re
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.static.statictools import curl, h2_request, touch_later

STRONG_ETAG = re.compile(r'^"[!#-~]+"$')  # RFC 9110 entity-tag, no W/ prefix
FILES = {
    "index.html": b"<!doctype html><title>Home</title><p>" + b"home " * 400,
    "style.css": b"body { color: #123456; }\n" * 100,
    "app.js": b"console.log('validators');\n" * 100,
    "small.js": b"let a = 1;\n",
    "logo.png": b"\x89PNG\r\n\x1a\n" + os.urandom(3000),
    "empty.txt": b"",
    "dossier é/un fichier ü.txt": "unicode names — ok\n".encode() * 80,
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    for name, data in FILES.items():
        path = public / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return public


@pytest.fixture
def server(serve_app, root):
    return serve_app(root=root)


def url_of(name: str) -> str:
    return "/" + quote(name)


@pytest.mark.parametrize("name", list(FILES))
def test_every_file_has_strong_validators(server, client, root, name) -> None:
    r = client.get(server.url + url_of(name))
    assert r.status_code == 200
    assert r.content == FILES[name]
    etag = r.headers["etag"]
    assert STRONG_ETAG.match(etag), etag
    mtime = os.stat(root / name).st_mtime
    assert r.headers["last-modified"] == formatdate(mtime, usegmt=True)
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("name", list(FILES))
def test_if_none_match_gives_304_without_body(server, client, name) -> None:
    first = client.get(server.url + url_of(name))
    etag = first.headers["etag"]
    again = client.get(server.url + url_of(name), headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["last-modified"] == first.headers["last-modified"]
    assert again.headers["cache-control"] == "no-cache"
    assert "content-type" not in again.headers
    # On the wire: the head ends the stream, no DATA frame follows.
    raw = h2_request(server.port, url_of(name), headers=[("if-none-match", etag),
                                                          ("accept-encoding", "identity")])
    assert raw.status == 304 and raw.ended and raw.chunks == []
    assert raw.order == ["response"]


def test_if_none_match_lists_and_weak_forms(server, client) -> None:
    url = server.url + "/app.js"
    etag = client.get(url).headers["etag"]
    for value in (f'"nope", {etag}', f"W/{etag}", "*", f'{etag}, "other"'):
        r = client.get(url, headers={"if-none-match": value})
        assert r.status_code == 304, value
        assert r.content == b""
    for value in ('"nope"', etag[:-2] + '"', '"", "x"'):
        r = client.get(url, headers={"if-none-match": value})
        assert r.status_code == 200, value
        assert r.content == FILES["app.js"]


def test_if_modified_since(server, client) -> None:
    url = server.url + "/style.css"
    last_modified = client.get(url).headers["last-modified"]
    r = client.get(url, headers={"if-modified-since": last_modified})
    assert r.status_code == 304 and r.content == b""
    later = formatdate(parsedate_to_datetime(last_modified).timestamp() + 3600, usegmt=True)
    assert client.get(url, headers={"if-modified-since": later}).status_code == 304
    earlier = formatdate(parsedate_to_datetime(last_modified).timestamp() - 1, usegmt=True)
    r = client.get(url, headers={"if-modified-since": earlier})
    assert r.status_code == 200 and r.content == FILES["style.css"]
    r = client.get(url, headers={"if-modified-since": "not a date"})
    assert r.status_code == 200
    # if-none-match decides when both are present (RFC 9110 13.2.2)
    r = client.get(url, headers={"if-modified-since": last_modified, "if-none-match": '"old"'})
    assert r.status_code == 200 and r.content == FILES["style.css"]


@pytest.mark.parametrize("same_size", [False, True])
def test_etag_changes_when_the_file_changes(server, client, root, same_size) -> None:
    path = root / "app.js"
    url = server.url + "/app.js"
    first = client.get(url)
    old_etag, old_date = first.headers["etag"], first.headers["last-modified"]
    new = FILES["app.js"].replace(b"validators", b"VALIDATORS" if same_size else b"changed!!!!")
    assert (len(new) == len(FILES["app.js"])) is same_size
    path.write_bytes(new)
    touch_later(path)
    second = client.get(url)
    assert second.status_code == 200 and second.content == new
    assert second.headers["etag"] != old_etag
    assert second.headers["last-modified"] != old_date
    # The browser's copy is stale: its validators must not give a 304.
    r = client.get(url, headers={"if-none-match": old_etag})
    assert r.status_code == 200 and r.content == new
    r = client.get(url, headers={"if-modified-since": old_date})
    assert r.status_code == 200 and r.content == new
    r = client.get(url, headers={"if-none-match": second.headers["etag"]})
    assert r.status_code == 304


def test_etag_differs_per_encoding(server, client) -> None:
    url = server.url + "/app.js"
    tags = {}
    for coding in ("identity", "gzip", "br", "zstd"):
        r = client.get(url, headers={"accept-encoding": coding})
        assert r.status_code == 200 and r.content == FILES["app.js"]
        assert r.headers.get("content-encoding", "identity") == coding
        assert STRONG_ETAG.match(r.headers["etag"])
        tags[coding] = r.headers["etag"]
    assert len(set(tags.values())) == 4, tags
    # Each tag validates its own encoding only.
    r = client.get(url, headers={"accept-encoding": "br", "if-none-match": tags["br"]})
    assert r.status_code == 304 and r.headers["etag"] == tags["br"]
    r = client.get(url, headers={"accept-encoding": "gzip", "if-none-match": tags["br"]})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    r = client.get(url, headers={"if-none-match": tags["gzip"]})
    assert r.status_code == 200 and r.content == FILES["app.js"]


@pytest.mark.parametrize("name", list(FILES))
def test_head_carries_the_same_validators(server, client, name) -> None:
    for coding in ("identity", "br"):
        headers = {"accept-encoding": coding}
        got = client.get(server.url + url_of(name), headers=headers)
        head = client.head(server.url + url_of(name), headers=headers)
        assert head.status_code == 200 and head.content == b""
        for field in ("etag", "last-modified", "content-length", "content-type",
                      "cache-control", "content-encoding", "vary"):
            assert head.headers.get(field) == got.headers.get(field), field
        conditional = client.head(server.url + url_of(name),
                                  headers={**headers, "if-none-match": got.headers["etag"]})
        assert conditional.status_code == 304 and conditional.content == b""
        assert conditional.headers["etag"] == got.headers["etag"]


def test_curl_revalidates_with_304(server) -> None:
    first = curl(server.url + "/style.css")
    assert first.version == "2" and first.status == 200
    etag = first.headers["etag"]
    again = curl(server.url + "/style.css", "-H", f"If-None-Match: {etag}")
    assert again.status == 304 and again.body == b""
    assert again.headers["etag"] == etag
    # curl's own time condition sends if-modified-since
    since = curl(server.url + "/style.css", "-z", first.headers["last-modified"])
    assert since.status == 304 and since.body == b""

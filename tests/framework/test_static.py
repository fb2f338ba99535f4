"""Static files over a real HTTP/2 connection: index files, redirects, 404/405, types, headers.

Every request sends ``accept-encoding: identity`` so ``content-length`` is the file's size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

IDENTITY = {"accept-encoding": "identity"}


@pytest.fixture
def server(serve_app, site):
    return serve_app(root=site)


def test_get_serves_file_bytes(server, site, client) -> None:
    r = client.get(server.url + "/style.css", headers=IDENTITY)
    assert r.status_code == 200
    assert r.http_version == client.version
    assert r.content == (site / "style.css").read_bytes()
    assert r.headers["content-length"] == str((site / "style.css").stat().st_size)


def test_head_has_get_headers_and_no_body(server, site, client) -> None:
    get = client.get(server.url + "/app.js", headers=IDENTITY)
    head = client.head(server.url + "/app.js", headers=IDENTITY)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    size = str((site / "app.js").stat().st_size)
    assert head.headers["content-length"] == get.headers["content-length"] == size
    for name in ("content-type", "cache-control", "x-content-type-options", "etag",
                 "last-modified"):
        assert head.headers[name] == get.headers[name], name


def test_root_serves_index(server, site, client) -> None:
    r = client.get(server.url + "/", headers=IDENTITY)
    assert r.status_code == 200
    assert r.content == (site / "index.html").read_bytes()
    assert r.headers["content-type"] == "text/html; charset=utf-8"


def test_folder_with_slash_serves_its_index(server, site, client) -> None:
    r = client.get(server.url + "/docs/", headers=IDENTITY)
    assert r.status_code == 200
    assert r.content == (site / "docs" / "index.html").read_bytes()


def test_head_on_root(server, site, client) -> None:
    r = client.head(server.url + "/", headers=IDENTITY)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str((site / "index.html").stat().st_size)


@pytest.mark.parametrize(("path", "location"), [
    ("/docs", "/docs/"),
    ("/docs?x=1&y=two", "/docs/?x=1&y=two"),
    ("/deep/er", "/deep/er/"),
])
def test_folder_without_slash_redirects(serve_app, site, client, path, location) -> None:
    (site / "deep" / "er").mkdir(parents=True)
    (site / "deep" / "er" / "index.html").write_text("deeper")
    server = serve_app(root=site)
    r = client.get(server.url + path)
    assert r.status_code == 301
    assert r.headers["location"] == location
    followed = client.get(server.url + location, headers=IDENTITY)
    assert followed.status_code == 200
    assert followed.content != b""


def test_custom_default_file(serve_app, site, client) -> None:
    (site / "home.html").write_text("<p>home page</p>")
    (site / "docs" / "home.html").write_text("<p>docs home</p>")
    server = serve_app(root=site, default_file="home.html")
    r = client.get(server.url + "/", headers=IDENTITY)
    assert r.status_code == 200
    assert r.text == "<p>home page</p>"
    r = client.get(server.url + "/docs/", headers=IDENTITY)
    assert r.text == "<p>docs home</p>"
    r = client.get(server.url + "/docs")
    assert r.status_code == 301
    assert r.headers["location"] == "/docs/"


def test_missing_file_gives_small_html_404(server, client) -> None:
    r = client.get(server.url + "/nope.html")
    assert r.status_code == 404
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert b"404" in r.content
    assert 0 < len(r.content) < 4096
    assert r.headers["content-length"] == str(len(r.content))


def test_missing_file_in_missing_folder_404(server, client) -> None:
    assert client.get(server.url + "/no/such/thing.js").status_code == 404


def test_site_404_page_is_used(serve_app, site, client) -> None:
    page = b"<!doctype html><title>Lost</title><p>my own not-found page</p>"
    (site / "404.html").write_bytes(page)
    server = serve_app(root=site)
    r = client.get(server.url + "/missing/page", headers=IDENTITY)
    assert r.status_code == 404
    assert r.content == page
    assert r.headers["content-type"] == "text/html; charset=utf-8"


def test_a_404_page_leading_out_of_the_root_is_not_used(serve_app, site, tmp_path,
                                                        client) -> None:
    outside = tmp_path / "elsewhere.html"
    outside.write_bytes(b"<p>a file outside the served folder</p>")
    (site / "404.html").symlink_to(outside)
    server = serve_app(root=site)
    r = client.get(server.url + "/missing/page", headers=IDENTITY)
    assert r.status_code == 404
    assert b"outside the served folder" not in r.content
    assert b"404" in r.content  # the built-in page


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/index.html", "/style.css", "/missing.txt"])
def test_other_methods_on_static_paths_405(server, client, method, path) -> None:
    r = client.request(method, server.url + path, content=b"data")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"


CONTENT_TYPES = [
    ("page.html", "text/html; charset=utf-8"),
    ("site.css", "text/css; charset=utf-8"),
    ("main.js", "text/javascript; charset=utf-8"),
    ("module.mjs", "text/javascript; charset=utf-8"),
    ("data.json", "application/json; charset=utf-8"),
    ("app.webmanifest", "application/manifest+json; charset=utf-8"),
    ("lib.wasm", "application/wasm"),
    ("logo.svg", "image/svg+xml; charset=utf-8"),
    ("pic.png", "image/png"),
    ("photo.jpg", "image/jpeg"),
    ("photo.webp", "image/webp"),
    ("photo.avif", "image/avif"),
    ("favicon.ico", "image/x-icon"),
    ("font.woff2", "font/woff2"),
    ("notes.txt", "text/plain; charset=utf-8"),
]


@pytest.fixture
def typed_site(site: Path) -> Path:
    for name, _ in CONTENT_TYPES:
        (site / name).write_bytes(b"x" * 10 + name.encode())
    return site


@pytest.mark.parametrize(("name", "ctype"), CONTENT_TYPES)
def test_content_types_and_headers(serve_app, typed_site, client, name, ctype) -> None:
    server = serve_app(root=typed_site)
    for method in ("GET", "HEAD"):
        r = client.request(method, f"{server.url}/{name}", headers=IDENTITY)
        assert r.status_code == 200
        assert r.headers["content-type"] == ctype
        assert r.headers["content-length"] == str(10 + len(name))
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.content == (b"" if method == "HEAD" else b"x" * 10 + name.encode())


def test_uppercase_extension_has_the_same_type(serve_app, site, client) -> None:
    (site / "SHOUT.JS").write_text("1")
    server = serve_app(root=site)
    r = client.get(server.url + "/SHOUT.JS")
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"


def test_empty_file(server, client) -> None:
    for method in ("GET", "HEAD"):
        r = client.request(method, server.url + "/empty.txt", headers=IDENTITY)
        assert r.status_code == 200
        assert r.content == b""
        assert r.headers["content-length"] == "0"
        assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_large_file_arrives_whole(serve_app, site, client) -> None:
    blob = bytes(range(256)) * 4096 * 3  # 3 MiB, more than one flow-control window
    (site / "big.bin").write_bytes(blob)
    server = serve_app(root=site)
    r = client.get(server.url + "/big.bin", headers=IDENTITY)
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(blob))
    assert r.content == blob


def test_percent_encoded_names(serve_app, site, client) -> None:
    (site / "a file é.txt").write_text("spaced")
    server = serve_app(root=site)
    r = client.get(server.url + "/a%20file%20%C3%A9.txt", headers=IDENTITY)
    assert r.status_code == 200
    assert r.text == "spaced"


def test_query_string_is_ignored_for_files(server, site, client) -> None:
    r = client.get(server.url + "/style.css?v=123", headers=IDENTITY)
    assert r.status_code == 200
    assert r.content == (site / "style.css").read_bytes()


def test_auto_serve_static_file_off(serve_app, site, client) -> None:
    server = serve_app(root=site, auto_serve_static_file=False)
    for path in ("/", "/index.html", "/style.css", "/docs/"):
        r = client.get(server.url + path)
        assert r.status_code == 404, path
        assert b"home" not in r.content


@pytest.mark.parametrize("path", ["/style.css/", "/docs/index.html/", "/empty.txt//"])
def test_file_with_trailing_slash_is_404(server, client, path) -> None:
    r = client.get(server.url + path)
    assert r.status_code == 404
    assert b"color: red" not in r.content


def test_redirect_keeps_the_folder_name_encoded(serve_app, site, client) -> None:
    (site / "my dir é").mkdir()
    (site / "my dir é" / "index.html").write_text("spaced folder")
    server = serve_app(root=site)
    r = client.get(server.url + "/my%20dir%20%C3%A9?a=b")
    assert r.status_code == 301
    assert r.headers["location"] == "/my%20dir%20%C3%A9/?a=b"
    r = client.get(server.url + r.headers["location"], headers=IDENTITY)
    assert (r.status_code, r.text) == (200, "spaced folder")


def test_head_of_a_404_and_a_redirect_has_no_body(server, client) -> None:
    r = client.head(server.url + "/missing.html")
    assert (r.status_code, r.content) == (404, b"")
    assert int(r.headers["content-length"]) > 0
    r = client.head(server.url + "/docs")
    assert (r.status_code, r.content) == (301, b"")
    assert r.headers["location"] == "/docs/"

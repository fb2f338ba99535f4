"""History-API fallback (``spa``) and folder listings, in-process and through ``serve``."""

from __future__ import annotations

import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpx
import pytest

from tests.static.statictools import CHROME_ACCEPT, curl

FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
INDEX = b"<!doctype html><title>SPA shell</title><div id=app></div>"


@pytest.fixture
def spa_root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    (public / "docs").mkdir(parents=True)
    (public / "assets").mkdir()
    (public / "index.html").write_bytes(INDEX)
    (public / "app.js").write_text("console.log('app');\n")
    (public / "style.css").write_text("body{}\n")
    (public / "docs" / "index.html").write_text("<!doctype html><title>Docs</title>")
    (public / "assets" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return public


# -- spa ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dashboard", "/users/42/profile", "/deep/link/",
                                  "/docs/missing-page", "/assets/route", "/caf%C3%A9",
                                  "/dashboard?tab=2"])
@pytest.mark.parametrize("accept", [CHROME_ACCEPT, FIREFOX_ACCEPT, "text/html"])
def test_spa_sends_index_for_page_urls(serve_app, spa_root, client, path, accept) -> None:
    server = serve_app(root=spa_root, spa=True)
    r = client.get(server.url + path, headers={"accept": accept})
    assert r.status_code == 200
    assert r.content == INDEX
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["etag"] == client.get(server.url + "/index.html").headers["etag"]


@pytest.mark.parametrize("path", [
    "/missing.js", "/missing.css", "/img/photo.png", "/font.woff2", "/favicon.ico",
    "/data.json", "/sw.js", "/manifest.webmanifest", "/assets/missing.svg",
    "/__hyper2web__/anything", "/__hyper2web__/reload", "/.hidden-route",
])
def test_spa_never_answers_for_assets(serve_app, spa_root, client, path) -> None:
    server = serve_app(root=spa_root, spa=True)
    r = client.get(server.url + path, headers={"accept": CHROME_ACCEPT})
    assert r.status_code == 404
    assert INDEX not in r.content


@pytest.mark.parametrize("accept", ["*/*", "application/json", "", "text/html;q=0.5, "
                                    "application/json", "text/html;q=0", "image/*"])
def test_spa_leaves_fetches_alone(serve_app, spa_root, client, accept) -> None:
    server = serve_app(root=spa_root, spa=True)
    headers = {"accept": accept} if accept else {}
    if not accept:
        client.headers.pop("accept", None)
    r = client.get(server.url + "/api/users", headers=headers)
    assert r.status_code == 404
    assert INDEX not in r.content


def test_spa_keeps_real_files_and_folders(serve_app, spa_root, client) -> None:
    server = serve_app(root=spa_root, spa=True)
    headers = {"accept": CHROME_ACCEPT}
    assert client.get(server.url + "/app.js", headers=headers).text == "console.log('app');\n"
    assert b"<title>Docs</title>" in client.get(server.url + "/docs/", headers=headers).content
    r = client.get(server.url + "/docs", headers=headers)
    assert r.status_code == 301 and r.headers["location"] == "/docs/"


def test_spa_head_and_revalidation(serve_app, spa_root, client) -> None:
    server = serve_app(root=spa_root, spa=True)
    headers = {"accept": CHROME_ACCEPT}
    got = client.get(server.url + "/settings", headers=headers)
    head = client.head(server.url + "/settings", headers=headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(INDEX))
    assert head.headers["etag"] == got.headers["etag"]
    again = client.get(server.url + "/settings",
                       headers={**headers, "if-none-match": got.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_without_spa_a_missing_page_is_404(serve_app, spa_root, client) -> None:
    server = serve_app(root=spa_root)
    r = client.get(server.url + "/dashboard", headers={"accept": CHROME_ACCEPT})
    assert r.status_code == 404
    assert INDEX not in r.content


def test_serve_spa_option(cli_server, spa_root) -> None:
    server = cli_server(["serve", str(spa_root), "--spa", "--no-reload", "--port", "0"])
    page = curl(server.url + "/dashboard/settings", "-H", f"Accept: {CHROME_ACCEPT}")
    assert page.version == "2" and page.status == 200 and page.body == INDEX
    assert curl(server.url + "/dashboard/settings").status == 404  # curl sends */*
    for path in ("/missing.js", "/sw.js", "/manifest.webmanifest", "/__hyper2web__/x"):
        assert curl(server.url + path, "-H", f"Accept: {CHROME_ACCEPT}").status == 404, path
    assert curl(server.url + "/app.js").body == b"console.log('app');\n"


def test_serve_without_spa(cli_server, spa_root) -> None:
    server = cli_server(["serve", str(spa_root), "--no-reload", "--port", "0"])
    page = curl(server.url + "/dashboard", "-H", f"Accept: {CHROME_ACCEPT}")
    assert page.status == 404 and INDEX not in page.body


# -- listing ---------------------------------------------------------------------------------

STAMP = time.mktime((2020, 5, 17, 12, 34, 0, 0, 0, -1))  # local time, as the page shows it
NAMES = {
    "readme.txt": b"r" * 1234,
    "a b é.txt": b"unicode & space\n",
    "<b>&'\".txt": b"escaped\n",
    "#hash?.txt": b"hash and question mark\n",
    "100%.txt": b"percent\n",
    "big.bin": b"\x00" * (3 * 1024 * 1024),
    "tiny.txt": b"12345",
    ".hidden": b"secret\n",
    "sub dir/inner.txt": b"inner\n",
    ".git/config": b"[core]\n",
    "Zeta/z.txt": b"z\n",
}


class Links(HTMLParser):
    """Anchors (href, text) and table rows (cell texts) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self.title = ""
        self._href: str | None = None
        self._text: list[str] = []
        self._cell: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text)))
            self._href = None
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data


def parse(page: bytes) -> Links:
    parser = Links()
    parser.feed(page.decode())
    return parser


@pytest.fixture
def list_root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    (public / "files").mkdir(parents=True)
    (public / "index.html").write_text("<!doctype html><title>Home</title>")
    for name, data in NAMES.items():
        path = public / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (STAMP, STAMP))
    (public / "empty").mkdir()
    (public / "a&b <c>").mkdir()
    (public / "a&b <c>" / "x.txt").write_text("x")
    (public / "dossier é").mkdir()
    (public / "dossier é" / "f.txt").write_text("f")
    return public


def test_listing_shows_names_sizes_dates_and_working_links(serve_app, list_root,
                                                           client) -> None:
    server = serve_app(root=list_root)
    page_url = server.url + "/files/"
    r = client.get(page_url)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    page = parse(r.content)
    assert page.title == "Index of /files/"
    shown = [text for _, text in page.links]
    visible = ["sub dir/", "Zeta/", "#hash?.txt", "100%.txt", "<b>&'\".txt", "a b é.txt",
               "big.bin", "readme.txt", "tiny.txt"]
    assert shown == ["../", *visible]  # parent first, then folders, then files
    rows = {row[0]: row[1:] for row in page.rows[1:] if row}
    assert rows["readme.txt"] == ["1.2 KB", "2020-05-17 12:34"]
    assert rows["big.bin"] == ["3.0 MB", "2020-05-17 12:34"]
    assert rows["tiny.txt"] == ["5 B", "2020-05-17 12:34"]
    assert rows["sub dir/"][0] == ""  # no size for folders
    for href, text in page.links:
        target = urljoin(page_url, href)
        got = client.get(target)
        assert got.status_code == 200, (href, target)
        if text == "../":
            assert urlsplit(target).path == "/"
            assert b"<title>Home</title>" in got.content
        elif text.endswith("/"):
            assert parse(got.content).title == f"Index of /files/{text}"
        else:
            assert got.content == NAMES[text], text
            assert unquote(urlsplit(target).path) == f"/files/{text}"


def test_listing_hides_dotfiles(serve_app, list_root, client) -> None:
    server = serve_app(root=list_root)
    r = client.get(server.url + "/files/")
    assert b".hidden" not in r.content and b".git" not in r.content
    assert client.get(server.url + "/files/.hidden").status_code == 404
    assert client.get(server.url + "/files/.git/config").status_code == 404


def test_listing_escapes_names_in_text_and_links(serve_app, list_root, client) -> None:
    server = serve_app(root=list_root)
    body = client.get(server.url + "/files/").text
    assert "<b>&'" not in body  # never raw markup
    assert "&lt;b&gt;&amp;" in body
    assert 'href="%3Cb%3E%26%27%22.txt"' in body
    r = client.get(server.url + "/" + quote("a&b <c>") + "/")
    assert r.status_code == 200
    assert parse(r.content).title == "Index of /a&b <c>/"
    assert "<c>" not in r.text and "a&amp;b &lt;c&gt;" in r.text
    links = {text: href for href, text in parse(r.content).links}
    assert client.get(str(r.url.join(links["x.txt"]))).text == "x"


def test_root_and_empty_folder_listings(serve_app, tmp_path, client) -> None:
    public = tmp_path / "bare"
    (public / "empty").mkdir(parents=True)
    (public / "only.txt").write_text("only")
    server = serve_app(root=public)
    root_page = parse(client.get(server.url + "/").content)
    assert [text for _, text in root_page.links] == ["empty/", "only.txt"]  # no parent link
    empty = client.get(server.url + "/empty/")
    assert empty.status_code == 200 and b"This folder is empty." in empty.content
    assert [text for _, text in parse(empty.content).links] == ["../"]


def test_listing_head(serve_app, list_root, client) -> None:
    server = serve_app(root=list_root)
    head = client.head(server.url + "/files/")
    got = client.get(server.url + "/files/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["content-type"] == "text/html; charset=utf-8"


def test_listing_sees_new_files(serve_app, list_root, client) -> None:
    server = serve_app(root=list_root)
    assert b"later.txt" not in client.get(server.url + "/files/").content
    (list_root / "files" / "later.txt").write_text("later")
    assert b"later.txt" in client.get(server.url + "/files/").content


@pytest.mark.parametrize(
    ("path", "location"),
    [("/files", "/files/"), ("/files?sort=name", "/files/?sort=name"),
     ("/dossier%20%C3%A9", "/dossier%20%C3%A9/"), ("/docs", "/docs/"),
     ("/files/sub%20dir", "/files/sub%20dir/")],
)
def test_folder_without_slash_redirects(serve_app, list_root, client, path, location) -> None:
    (list_root / "docs").mkdir()
    (list_root / "docs" / "index.html").write_text("docs")
    server = serve_app(root=list_root)
    r = client.get(server.url + path)
    assert r.status_code == 301
    assert r.headers["location"] == location
    followed = client.get(server.url + path, follow_redirects=True)
    assert followed.status_code == 200
    assert followed.url.path == unquote(location.split("?")[0])
    head = client.head(server.url + path)
    assert head.status_code == 301 and head.headers["location"] == location


def test_listing_off(serve_app, list_root, client) -> None:
    (list_root / "docs").mkdir()
    (list_root / "docs" / "index.html").write_text("docs index")
    server = serve_app(root=list_root, listing=False)
    for path in ("/files/", "/files", "/empty/", "/files/sub%20dir/"):
        r = client.get(server.url + path)
        assert r.status_code == 404, path
        assert b"Index of" not in r.content
    assert client.get(server.url + "/files/readme.txt").content == NAMES["readme.txt"]
    assert client.get(server.url + "/docs/").text == "docs index"
    assert client.get(server.url + "/docs").status_code == 301


def test_serve_lists_and_no_list(cli_server, list_root) -> None:
    listing = cli_server(["serve", str(list_root), "--no-reload", "--port", "0"])
    got = curl(listing.url + "/files/")
    assert got.status == 200 and b"Index of /files/" in got.body
    link = re.search(rb'href="(a%20b%20[^"]+)"', got.body)
    assert link is not None
    followed = curl(listing.url + "/files/" + link.group(1).decode())
    assert followed.status == 200 and followed.body == NAMES["a b é.txt"]
    redirect = curl(listing.url + "/files")
    assert redirect.status == 301 and redirect.headers["location"] == "/files/"
    assert curl(listing.url + "/files", "-L").body == got.body

    hidden = cli_server(["serve", str(list_root), "--no-list", "--no-reload", "--port", "0"])
    for path in ("/files/", "/files"):
        got = curl(hidden.url + path)
        assert got.status == 404 and b"Index of" not in got.body
    assert curl(hidden.url + "/files/tiny.txt").body == b"12345"


def test_listing_links_with_httpx_following_redirects(serve_app, list_root) -> None:
    server = serve_app(root=list_root)
    with httpx.Client(http2=True, verify=False, follow_redirects=True) as c:
        r = c.get(server.url + "/dossier%20%C3%A9")
        assert r.status_code == 200 and r.url.path == "/dossier é/"
        href = dict((t, h) for h, t in parse(r.content).links)["f.txt"]
        assert c.get(r.url.join(href)).text == "f"

"""Versioned module URLs: pages that load ES modules get an import map naming each module's
version; a versioned module is immutable; a reload after an edit fetches only what changed
and never runs an old module (Chromium)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyper2web.modmap import IMMUTABLE, read_page, requested_version
from tests.reload.livekit import edit

Serve = Callable[..., Any]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Modules</title>
<!-- <script type="importmap">{}</script> -->
<script type="module" src="/main.js"></script>
</head><body><p id="t">modules</p></body></html>
"""
MAIN = ('import { a } from "./mods/a.js";\nimport { b } from "/mods/b.js";\n'
        'document.body.dataset.ready = `${a}:${b}`;\n')
B = 'import { a } from "./a.js";\nexport const b = a + 1;\n'
IMPORT_MAP = re.compile(r'<script type="importmap">(\{"imports".*?)</script>')


@pytest.fixture
def modules(project: Path) -> Path:
    public = project / "public"
    (public / "mods").mkdir()
    (public / "modules.html").write_text(PAGE)
    (public / "main.js").write_text(MAIN)
    (public / "mods" / "a.js").write_text("export const a = 1;\n")
    (public / "mods" / "b.js").write_text(B)
    return public


def import_map(html: str) -> dict[str, str]:
    found = IMPORT_MAP.search(html)
    assert found is not None, html
    imports: dict[str, str] = json.loads(found.group(1))["imports"]
    return imports


# -- reading pages ---------------------------------------------------------------------------

def test_a_page_without_modules_gets_no_map() -> None:
    assert read_page(b"<html><head><script src=app.js></script></head></html>", "/").at == -1
    assert read_page(b"<p>no scripts at all</p>", "/").at == -1


def test_the_map_goes_before_the_first_script_and_leaves_out_the_pages_own_modules() -> None:
    html = (b'<head><!-- <script type=module src=x.js></script> -->'
            b'<script src="/classic.js"></script>'
            b'<script type=module src="app.js"></script>'
            b'<link rel="modulepreload" href="../lib/util.js"></head>')
    page = read_page(html, "/games/index.html")
    assert page.at == html.index(b'<script src="/classic.js">')
    assert page.own == frozenset({"/games/app.js", "/lib/util.js"})


def test_a_page_with_its_own_import_map_is_left_alone() -> None:
    html = b'<script type="importmap">{"imports":{}}</script><script type=module>1</script>'
    assert read_page(html, "/").at == -1


def test_requested_version() -> None:
    assert requested_version("h2w=abc") == "abc"
    assert requested_version("x=1&h2w=abc") == "abc"
    assert requested_version("xh2w=abc") is None
    assert requested_version("") is None


# -- over the wire -----------------------------------------------------------------------------

def test_the_page_maps_every_module_but_its_own(serve: Serve, modules: Path,
                                                  client: httpx.Client) -> None:
    server = serve()
    answer = client.get(server.url + "/modules.html")
    assert answer.status_code == 200
    mapped = import_map(answer.text)
    # Every script under the root but /main.js, which the page loads itself.
    assert set(mapped) == {"/app.js", "/mods/a.js", "/mods/b.js"}
    # Before the page's module script, after the comment that only mentions one.
    assert answer.text.index('type="importmap">{') < answer.text.index('src="/main.js"')
    # A page without modules is served as it was.
    assert "importmap" not in client.get(server.url + "/").text

    versioned = client.get(server.url + mapped["/mods/a.js"])
    assert versioned.status_code == 200 and versioned.text == "export const a = 1;\n"
    assert versioned.headers["cache-control"] == IMMUTABLE
    for url in ("/mods/a.js", "/mods/a.js?h2w=000000000000"):
        plain = client.get(server.url + url)
        assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"


def test_an_edit_changes_the_version_and_the_pages_etag(serve: Serve, modules: Path,
                                                        client: httpx.Client) -> None:
    server = serve()
    first = client.get(server.url + "/modules.html")
    etag = first.headers["etag"]
    again = client.get(server.url + "/modules.html", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    old = import_map(first.text)

    edit(modules / "mods" / "a.js", "export const a = 10;\n")
    second = client.get(server.url + "/modules.html", headers={"if-none-match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag
    new = import_map(second.text)
    assert new["/mods/a.js"] != old["/mods/a.js"] and new["/mods/b.js"] == old["/mods/b.js"]
    # The old version's URL no longer promises immutability; the new one does.
    stale = client.get(server.url + old["/mods/a.js"])
    assert stale.text == "export const a = 10;\n" and stale.headers["cache-control"] == "no-cache"
    fresh = client.get(server.url + new["/mods/a.js"])
    assert fresh.headers["cache-control"] == IMMUTABLE

    # A module made after the first page joins the map; a deleted one leaves it.
    (modules / "mods" / "c.js").write_text("export const c = 3;\n")
    (modules / "mods" / "b.js").unlink()
    third = import_map(client.get(server.url + "/modules.html").text)
    assert set(third) == {"/app.js", "/mods/a.js"}  # c.js: the walk ran before it was made, and no
    client.get(server.url + "/mods/c.js")  # request named it; once served, it is known
    assert set(import_map(client.get(server.url + "/modules.html").text)) == \
        {"/app.js", "/mods/a.js", "/mods/c.js"}


def test_no_map_without_live_reload(serve: Serve, modules: Path,
                                    client: httpx.Client) -> None:
    server = serve("--no-reload")
    assert client.get(server.url + "/modules.html").text == PAGE
    answer = client.get(server.url + "/mods/a.js?h2w=anything")
    assert answer.headers["cache-control"] == "no-cache"


def test_client_script_is_versioned_and_revalidates(serve: Serve, client: httpx.Client) -> None:
    server = serve()
    tag = re.search(r'src="(/__hyper2web__/client\.js\?v=\w+)"',
                    client.get(server.url + "/").text)
    assert tag is not None
    answer = client.get(server.url + tag.group(1))
    assert answer.status_code == 200 and answer.headers["cache-control"] == IMMUTABLE
    plain = client.get(server.url + "/__hyper2web__/client.js")
    assert plain.headers["cache-control"] == "no-cache"
    again = client.get(server.url + "/__hyper2web__/client.js",
                       headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


# -- in Chromium -------------------------------------------------------------------------------

def _requests(server: Any, since: int) -> list[str]:
    """The paths the server answered since output line ``since`` (its access log)."""
    paths = []
    for line in server.output[since:]:
        found = re.match(r"(GET|HEAD)\s+(\S+) (\d{3}) ", line)
        if found:
            paths.append(found.group(2))
    return paths


def test_reload_after_an_edit_fetches_only_the_edited_module(serve: Serve, modules: Path,
                                                             page: Any) -> None:
    server = serve()
    page.goto(server.url + "/modules.html")
    page.wait_for_function("document.body.dataset.ready === '1:2'")
    page.wait_for_timeout(300)
    # A reload with nothing edited takes every module from the browser's cache.
    before = len(server.output)
    page.reload()
    page.wait_for_function("document.body.dataset.ready === '1:2'")
    page.wait_for_timeout(300)
    assert [p for p in _requests(server, before) if p.startswith("/mods/")] == []

    for value in (5, 6, 7):
        before = len(server.output)
        edit(modules / "mods" / "a.js", f"export const a = {value};\n")
        page.reload()
        # Never stale: the page runs the edited module, and its importer sees it.
        page.wait_for_function(f"document.body.dataset.ready === '{value}:{value + 1}'")
        page.wait_for_timeout(300)
        asked = _requests(server, before)
        # The edit also pushes a live reload, which can come just after the manual one:
        # the page may then load twice, but only the edited module is ever asked for.
        modules_asked = {p for p in asked if p.startswith("/mods/")}
        assert len(modules_asked) == 1, asked
        assert modules_asked.pop().startswith("/mods/a.js?h2w="), asked
    assert page.errors == []

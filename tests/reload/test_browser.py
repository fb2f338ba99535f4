"""What a person sees in Chromium: reloads, stylesheet swaps, the error overlay, restarts,
and pages controlled by a cache-first service worker.

The browser trusts the test certificate through an NSS database in a HOME of its own
(``certutil -A -t "CP,,"``) instead of ``--ignore-certificate-errors``: service workers
register only on an origin whose certificate the browser trusts, and this way every page
runs exactly as on a developer's machine that trusts its local certificate.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.reload.livekit import EventStream, edit, prime_routes, prime_site

Serve = Callable[..., Any]
Events = Callable[..., EventStream]

CONNECTED = "() => !!(window.__hyper2webReload && window.__hyper2webReload.bootId)"
OVERLAY = "#__hyper2web_overlay"


def open_live(tab: Any, url: str) -> None:
    """Load ``url`` and wait until the page's live reload client heard the server's hello."""
    response = tab.goto(url)
    assert response is not None and response.status == 200
    tab.wait_for_function(CONNECTED, timeout=5000)


def ready_server(serve: Serve, events: Events, project: Path, *options: str) -> Any:
    """A server whose site watcher (and routes watcher, with routes.py) is known to run."""
    server = serve(*options)
    stream = events(server.port)
    assert stream.next().kind == "hello"
    prime_site(stream, project / "public")
    if (project / "routes.py").exists():
        prime_routes(stream, project / "routes.py")
    return server


def test_html_edit_reloads_the_page(serve: Serve, events: Events, project: Path,
                                    page: Any) -> None:
    server = ready_server(serve, events, project)
    open_live(page, server.url + "/")
    assert page.text_content("#t") == "one"
    page.evaluate("window.marker = 42")
    edit(project / "public" / "index.html",
         (project / "public" / "index.html").read_text().replace(">one<", ">two<"))
    page.wait_for_function("document.getElementById('t')?.textContent === 'two'",
                           timeout=1500)
    assert page.evaluate("window.marker") is None
    assert page.evaluate("performance.getEntriesByType('navigation')[0].type") == "reload"
    assert page.errors == []


def test_css_edit_swaps_the_stylesheet_without_a_reload(serve: Serve, events: Events,
                                                        project: Path, page: Any) -> None:
    server = ready_server(serve, events, project)
    open_live(page, server.url + "/")
    color = "getComputedStyle(document.getElementById('t')).color"
    assert page.evaluate(color) == "rgb(255, 0, 0)"
    page.evaluate("window.marker = 42")
    edit(project / "public" / "style.css", "#t { color: rgb(0, 0, 255); }\n")
    page.wait_for_function(f"{color} === 'rgb(0, 0, 255)'", timeout=1500)
    assert page.evaluate("window.marker") == 42
    # The old <link> goes once the new one applied: one stylesheet, with a fresh URL.
    page.wait_for_function(
        "document.querySelectorAll('link[rel=stylesheet]').length === 1", timeout=1000)
    assert "__hyper2web=" in page.evaluate("document.querySelector('link').href")

    # Two saves in a row: still one stylesheet in the end, with the last color.
    edit(project / "public" / "style.css", "#t { color: rgb(0, 128, 0); }\n")
    page.wait_for_function(f"{color} === 'rgb(0, 128, 0)'", timeout=1500)
    edit(project / "public" / "style.css", "#t { color: rgb(1, 2, 3); }\n")
    page.wait_for_function(f"{color} === 'rgb(1, 2, 3)'", timeout=1500)
    page.wait_for_function(
        "document.querySelectorAll('link[rel=stylesheet]').length === 1", timeout=1000)
    assert page.evaluate("window.marker") == 42
    assert page.errors == []


ROUTES = """\
def setup(app):
    app.get("api", api)


async def api(request, response):
    await response.send_text("api")
"""


def test_error_overlay_for_broken_routes(serve: Serve, events: Events, project: Path,
                                         page: Any, browser: Any) -> None:
    (project / "routes.py").write_text(ROUTES)
    server = ready_server(serve, events, project)
    open_live(page, server.url + "/")
    assert page.query_selector(OVERLAY) is None
    page.evaluate("window.marker = 1")

    edit(project / "routes.py", ROUTES.replace("def setup(app):", "def setup(app"))
    overlay = page.wait_for_selector(OVERLAY, timeout=2000)
    message = overlay.inner_text()
    assert "routes.py:1" in message and "SyntaxError" in message
    assert page.evaluate("window.marker") == 1, "an error must not reload the page"
    # It covers the page.
    box = overlay.bounding_box()
    size = page.viewport_size
    assert box is not None and box["width"] >= size["width"] and box["height"] >= size["height"]
    # Opaque: the page's own heading does not show through the overlay's title.
    background = overlay.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(17, 17, 17)", background

    # A tab opened while routes.py is broken shows the error at once.
    late = browser.new_page()
    try:
        open_live(late, server.url + "/")
        late.wait_for_selector(OVERLAY, timeout=2000)
    finally:
        late.close()

    # A page saved meanwhile reloads, and the error is still shown.
    edit(project / "public" / "index.html",
         (project / "public" / "index.html").read_text().replace(">one<", ">two<"))
    page.wait_for_function("document.getElementById('t')?.textContent === 'two'",
                           timeout=2000)
    page.wait_for_selector(OVERLAY, timeout=2000)
    page.evaluate("window.marker = 2")

    edit(project / "routes.py", ROUTES)
    page.wait_for_function("window.marker === undefined", timeout=2000)
    page.wait_for_function(CONNECTED, timeout=2000)
    assert page.query_selector(OVERLAY) is None


def test_page_reloads_after_a_server_restart(serve: Serve, project: Path, page: Any) -> None:
    first = serve()
    open_live(page, first.url + "/")
    page.evaluate("window.marker = 'before restart'")
    assert first.stop(signal.SIGINT) == 0
    # The same port again, as a developer restarting the server gets.
    second = serve("--port", str(first.port), "--strict-port")
    assert second.port == first.port
    started = time.monotonic()
    page.wait_for_function("window.marker === undefined", timeout=5000)
    page.wait_for_function(CONNECTED, timeout=5000)
    assert time.monotonic() - started < 5
    assert page.text_content("#t") == "one"


SW_PAGE = """<!doctype html>
<html>
<head><title>Offline first</title></head>
<body>
<p id="t">one</p>
<script>navigator.serviceWorker.register("/sw.js");</script>
</body>
</html>
"""

CACHE_FIRST_SW = """\
const CACHE = "site-v1";
self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(["/", "/index.html"])));
  self.skipWaiting();
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  event.respondWith(caches.match(event.request).then((hit) => hit || fetch(event.request)));
});
"""


def test_page_under_a_cache_first_service_worker(serve: Serve, events: Events,
                                                 project: Path, page: Any) -> None:
    public = project / "public"
    (public / "index.html").write_text(SW_PAGE)
    (public / "sw.js").write_text(CACHE_FIRST_SW)
    server = ready_server(serve, events, project)
    open_live(page, server.url + "/")
    page.wait_for_function("!!navigator.serviceWorker.controller", timeout=5000)
    cached = page.evaluate(
        "caches.open('site-v1').then(c => c.match('/')).then(r => r && r.text())")
    assert cached is not None and ">one<" in cached, "the worker did not cache the page"
    # The controlled page is answered from the cache from now on.
    page.reload()
    page.wait_for_function(CONNECTED, timeout=5000)
    assert page.evaluate(
        "performance.getEntriesByType('navigation')[0].workerStart") > 0

    edit(public / "index.html", SW_PAGE.replace(">one<", ">two<"))
    page.wait_for_function("document.getElementById('t')?.textContent === 'two'",
                           timeout=1000)
    assert page.evaluate("!!navigator.serviceWorker.controller")

    # A new worker script: the page reloads under the new worker. Slower: right after a
    # navigation the browser holds update() for its own update check, then installs and
    # activates the worker (about 3 s in all here).
    page.evaluate("window.marker = 1")
    edit(public / "sw.js", CACHE_FIRST_SW.replace("site-v1", "site-v2"))
    page.wait_for_function("window.marker === undefined", timeout=5000)
    page.wait_for_function(CONNECTED, timeout=3000)
    page.wait_for_function(
        "caches.keys().then(names => names.includes('site-v2'))", timeout=3000)
    assert page.evaluate("new URL(navigator.serviceWorker.controller.scriptURL).pathname") \
        == "/sw.js"
    assert page.errors == []

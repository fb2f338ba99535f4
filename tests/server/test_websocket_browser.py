"""A WebSocket from a real browser: Chromium opens it over the page's HTTP/2 connection
(RFC 8441), and messages go both ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyper2web import App
from tests.support import launched_chromium

PAGE = """<!doctype html><title>ws</title><script>
window.replies = [];
const ws = new WebSocket(`wss://${location.host}/echo`);
ws.onopen = () => ws.send("from the page");
ws.onmessage = (event) => window.replies.push(event.data);
</script>"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium(timeout=15000) as instance:
        yield instance


def test_chromium_opens_a_websocket_over_http2(browser: Any, serve_app: Any,
                                              tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(PAGE)
    app = App(root=tmp_path)
    seen: list[str] = []

    @app.websocket("echo")
    async def echo(request, ws):
        seen.append(request.http_version)
        async for message in ws:
            await ws.send(f"echo: {message} over HTTP/{request.http_version}")

    running = serve_app(app)
    context = browser.new_context(ignore_https_errors=True)
    try:
        tab = context.new_page()
        tab.goto(f"https://localhost:{running.port}/", timeout=10000)
        assert tab.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") \
            == "h2"
        tab.wait_for_function("window.replies.length > 0", timeout=10000)
        assert tab.evaluate("window.replies") == ["echo: from the page over HTTP/2"]
    finally:
        context.close()
    assert seen == ["2"]

"""The sample site in headless Chromium, served by ``hyper2web serve`` over HTTP/2."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import CHROMIUM_ARGS, REPO, CliServer, need_module, need_tool

BROWSER_ARGS = [*CHROMIUM_ARGS, "--ignore-certificate-errors"]


@pytest.mark.timeout(60)
def test_sample_site_in_chromium(cli_server: Callable[..., CliServer], tmp_path: Path) -> None:
    chromium = need_tool("chromium")
    sync_api = need_module("playwright.sync_api")
    shutil.copytree(REPO / "sample_site", tmp_path / "sample_site",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pem", "*.key",
                                                  "records.json", "records.sqlite3*"))
    records = [{"name": n, "score": s, "date": "2024-01-01T00:00:00+00:00"}
               for n, s in (("Ada", 42), ("Linus", 37), ("Grace", 31))]
    (tmp_path / "sample_site" / "records.json").write_text(
        json.dumps({"1": records, "2": [], "3": []}))
    server = cli_server(["serve", "public", "--port", "0"], cwd=tmp_path / "sample_site")

    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=BROWSER_ARGS, timeout=15000)
        try:
            context = browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            page.set_default_timeout(10000)
            page.on("console",
                    lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error"
                    else None)
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            failed: list[str] = []
            page.on("requestfailed", lambda req: failed.append(req.url))

            response = page.goto(server.url + "/", wait_until="load")
            assert response is not None and response.status == 200
            assert page.title() == "The Game"
            assert page.locator("h1").inner_text() == "The Game"
            protocol = page.evaluate(
                "performance.getEntriesByType('navigation')[0].nextHopProtocol")
            assert protocol == "h2"

            # game.js fetched /top10/1 (routes.py) and put the records in the list.
            first = page.locator("#top10 li").first
            sync_api.expect(first).to_have_text("Ada: 42")
            assert page.locator("#top10 li").all_inner_texts() == [
                "Ada: 42", "Linus: 37", "Grace: 31"]

            resources = page.evaluate(
                "performance.getEntriesByType('resource')"
                ".map(e => [new URL(e.name).pathname, e.nextHopProtocol])")
            fetched = dict(resources)
            for path in ("/style.css", "/game.js", "/top10/1"):
                assert fetched.get(path) == "h2", resources
            # style.css applied: the header is dark.
            assert page.evaluate("getComputedStyle(document.querySelector('header'))"
                                 ".backgroundColor") == "rgb(17, 24, 39)"
            assert failed == []
        finally:
            browser.close()
    assert errors == []

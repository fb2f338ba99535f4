"""The point of the local CA: a real Chromium, with no flag that skips certificate checks,
loads the site and registers a service worker once ``hyper2web certs --install`` ran, and
refuses the very same server before that and after ``--uninstall``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.certs.catools import ca_file, common_name, load_cert, run_cli, user_env

# No --ignore-certificate-errors: the browser checks the certificate as it would for a user.
from tests.support import CHROMIUM_ARGS, CliServer, need_module, need_tool, start_cli

INDEX = """<!doctype html>
<html><head><title>Offline first</title></head>
<body><h1>Offline first</h1></body></html>
"""
WORKER = """self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', () => {});
"""
REGISTER = """async () => {
    const registration = await navigator.serviceWorker.register('/sw.js');
    const ready = await navigator.serviceWorker.ready;
    return {
        scope: registration.scope,
        script: ready.active && ready.active.scriptURL,
        secure: window.isSecureContext,
        protocol: performance.getEntriesByType('navigation')[0].nextHopProtocol,
    };
}"""


def visit(sync_api: Any, chromium: str, home: Path, url: str) -> dict[str, Any]:
    """Open ``url`` in a fresh Chromium whose HOME (so NSS database) is ``home``.

    Returns how it went: the error text, or the status, issuer and service worker found.
    """
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                    env={**os.environ, "HOME": str(home)}, timeout=15000)
        try:
            page = browser.new_page()
            page.set_default_timeout(10000)
            try:
                response = page.goto(url, wait_until="load")
            except sync_api.Error as exc:
                return {"error": str(exc)}
            assert response is not None
            details = response.security_details() or {}
            return {"status": response.status, "issuer": details.get("issuer"),
                    "title": page.title(), "worker": page.evaluate(REGISTER)}
        finally:
            browser.close()


@pytest.mark.timeout(90)
def test_chromium_trusts_the_site_once_the_ca_is_installed(tmp_path: Path) -> None:
    chromium = need_tool("chromium")
    need_tool("certutil")
    sync_api = need_module("playwright.sync_api")
    site = tmp_path / "site"
    (site / "public").mkdir(parents=True)
    (site / "public" / "index.html").write_text(INDEX)
    (site / "public" / "sw.js").write_text(WORKER)
    home = tmp_path / "home"
    home.mkdir()
    env = user_env(home, tmp_path / "sys")  # the same user for the CLI and the browser

    server: CliServer = start_cli(["serve", "public", "--port", "0", "--no-reload"], site, env)
    try:
        url = f"https://localhost:{server.port}/"
        assert "created a local certificate authority" in "".join(server.output)

        # Before --install: the browser does not know the authority.
        before = visit(sync_api, chromium, home, url)
        assert "net::ERR_CERT_AUTHORITY_INVALID" in before.get("error", ""), before

        installed = run_cli(["certs", "--install"], tmp_path, env)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert f"trusted in Chromium/Chrome ({home / '.pki' / 'nssdb'})" in installed.stdout

        after = visit(sync_api, chromium, home, url)
        assert "error" not in after, after
        assert after["status"] == 200 and after["title"] == "Offline first"
        assert after["issuer"] == common_name(load_cert(ca_file(home)))
        assert after["worker"] == {"scope": url, "script": url + "sw.js", "secure": True,
                                   "protocol": "h2"}

        # --uninstall takes the trust away again.
        removed = run_cli(["certs", "--uninstall"], tmp_path, env)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        again = visit(sync_api, chromium, home, url)
        assert "net::ERR_CERT_AUTHORITY_INVALID" in again.get("error", ""), again
    finally:
        assert server.stop() == 0
    assert "Traceback" not in "".join(server.output)


@pytest.mark.timeout(60)
def test_installed_first_then_served(tmp_path: Path) -> None:
    """The order a user follows: ``certs --install`` once, then ``serve``."""
    chromium = need_tool("chromium")
    need_tool("certutil")
    sync_api = need_module("playwright.sync_api")
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text(INDEX)
    (tmp_path / "public" / "sw.js").write_text(WORKER)
    home = tmp_path / "home"
    home.mkdir()
    env = user_env(home, tmp_path / "sys")

    installed = run_cli(["certs", "--install"], tmp_path, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    server = start_cli(["serve", "public", "--port", "0"], tmp_path, env)
    try:
        text = "".join(server.output)
        assert "certificate authority" not in text  # the installed one signs the leaf
        assert "created a certificate for localhost, *.localhost, 127.0.0.1, ::1" in text
        url = f"https://localhost:{server.port}/"
        seen = visit(sync_api, chromium, home, url)
        assert "error" not in seen, seen
        assert seen["status"] == 200
        assert seen["worker"]["script"] == url + "sw.js"
        assert seen["worker"]["secure"] is True
    finally:
        assert server.stop() == 0

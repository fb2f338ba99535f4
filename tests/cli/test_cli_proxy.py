"""``serve --proxy PREFIX=URL`` and ``[proxy]`` in hyper2web.toml, against a real backend."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import run_cli


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.endswith("/page"):  # a server-rendered page
            body, kind = PAGE, "text/html; charset=utf-8"
        else:
            if self.path.endswith("/slow"):
                time.sleep(2)
            body = json.dumps({"path": self.path}).encode()
            kind = "application/json"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("x-host-seen", self.headers.get("host", ""))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


PAGE = b"<!doctype html><html><head><title>rendered</title></head><body>hi</body></html>"


def _echo_server(context: ssl.SSLContext | None = None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"{'https' if context else 'http'}://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def backend() -> Iterator[str]:
    yield from _echo_server()


@pytest.fixture
def tls_backend(cert_pair: tuple[Path, Path]) -> Iterator[str]:
    """An https:// backend whose certificate no trust store knows."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_pair[0]), str(cert_pair[1]))
    yield from _echo_server(context)


@pytest.fixture
def public(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>front</title>front")
    return root


def _get(server: Any, path: str) -> httpx.Response:
    with httpx.Client(http2=True, verify=False, timeout=10) as client:
        return client.get(server.url + path)


def test_serve_proxy_forwards_a_prefix(cli_server: Any, public: Path, backend: str) -> None:
    server = cli_server(["serve", str(public), "--port", "0", "--proxy", f"/api={backend}",
                         "--proxy", f"/v2={backend}/next"])
    assert _get(server, "/api/users?x=1").json() == {"path": "/api/users?x=1"}
    deadline = time.monotonic() + 5  # the banner's lines after the URL are read by a thread
    while f"Proxy:   /api -> {backend}" not in "".join(server.output):
        assert time.monotonic() < deadline, "".join(server.output)
        time.sleep(0.02)
    assert _get(server, "/api/users?x=1").json() == {"path": "/api/users?x=1"}
    assert _get(server, "/v2/users").json() == {"path": "/next/users"}
    assert "front" in _get(server, "/").text


def test_the_proxy_table_in_hyper2web_toml(cli_server: Any, public: Path,
                                           backend: str) -> None:
    (public.parent / "hyper2web.toml").write_text(f'[proxy]\n"/api" = "{backend}/"\n')
    server = cli_server(["serve", str(public), "--port", "0"])
    assert _get(server, "/api/users").json() == {"path": "/users"}


def test_by_default_host_is_kept_pages_get_the_reload_client_and_60_s_are_waited(
        cli_server: Any, public: Path, backend: str) -> None:
    server = cli_server(["serve", str(public), "--port", "0", "--proxy", f"/api={backend}"])
    assert _get(server, "/api/x").headers["x-host-seen"] == f"localhost:{server.port}"
    assert b"/__hyper2web__/client.js" in _get(server, "/api/page").content
    assert _get(server, "/api/slow").status_code == 200  # 2 s is well within the default


def _proxy_options_hold(server: Any, backend: str) -> None:
    """--proxy-change-origin, --proxy-no-inject and --proxy-timeout 0.5 are in force."""
    assert _get(server, "/api/x").headers["x-host-seen"] == backend.removeprefix("http://")
    assert _get(server, "/api/page").content == PAGE  # as the backend sent it
    started = time.monotonic()
    slow = _get(server, "/api/slow")
    assert slow.status_code == 504 and "no answer within 0.5 s" in slow.text
    assert time.monotonic() - started < 1.5


def test_serve_proxy_options(cli_server: Any, public: Path, backend: str) -> None:
    server = cli_server(["serve", str(public), "--port", "0", "--proxy", f"/api={backend}",
                         "--proxy-change-origin", "--proxy-no-inject",
                         "--proxy-timeout", "0.5"])
    _proxy_options_hold(server, backend)


def test_the_proxy_options_in_hyper2web_toml(cli_server: Any, public: Path,
                                             backend: str) -> None:
    (public.parent / "hyper2web.toml").write_text(
        "proxy-change-origin = true\nproxy-no-inject = true\nproxy-timeout = 0.5\n"
        f'[proxy]\n"/api" = "{backend}"\n')
    server = cli_server(["serve", str(public), "--port", "0"])
    _proxy_options_hold(server, backend)


@pytest.mark.parametrize("how", ["flag", "toml"])
def test_proxy_insecure_accepts_a_self_signed_backend(cli_server: Any, public: Path,
                                                      tls_backend: str, how: str) -> None:
    checked = cli_server(["serve", str(public), "--port", "0", "--proxy",
                          f"/api={tls_backend}"])
    refused = _get(checked, "/api/x")
    assert refused.status_code == 502 and "TLS with the backend failed" in refused.text
    checked.stop()
    if how == "flag":
        args = ["--proxy-insecure"]
    else:
        (public.parent / "hyper2web.toml").write_text("proxy-insecure = true\n")
        args = []
    trusting = cli_server(["serve", str(public), "--port", "0", "--proxy",
                           f"/api={tls_backend}", *args])
    assert _get(trusting, "/api/x").json() == {"path": "/api/x"}


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_proxy_timeout_is_a_clear_error(public: Path, tmp_path: Path,
                                              value: str) -> None:
    result = run_cli(["serve", str(public), "--proxy-timeout", value], cwd=tmp_path,
                     env={"HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "--proxy-timeout" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value, message", [
    ("api=http://x", "is not PREFIX=URL"),
    ("/api", "is not PREFIX=URL"),
    ("/api=ftp://x", "is not an http:// or https:// URL"),
])
def test_a_bad_proxy_value_is_a_clear_error(public: Path, tmp_path: Path, value: str,
                                            message: str) -> None:
    result = run_cli(["serve", str(public), "--proxy", value], cwd=tmp_path,
                     env={"HOME": str(tmp_path)})
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_watch_reloads_the_pages_when_a_folder_outside_the_root_changes(
        cli_server: Any, public: Path, tmp_path: Path, backend: str) -> None:
    from tests.reload.livekit import HttpxEventStream

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text("<p>one</p>")
    server = cli_server(["serve", str(public), "--port", "0", "--proxy", f"/app={backend}",
                         "--watch", str(templates)])
    events = HttpxEventStream(server.url)
    try:
        assert events.next().kind == "hello"
        (templates / "page.html").write_text("<p>two</p>")
        reload = events.until(lambda event: event.kind == "reload")
        assert reload.paths == []  # every page: the backend renders them
    finally:
        events.close()


def test_watch_needs_an_existing_path(public: Path, tmp_path: Path) -> None:
    result = run_cli(["serve", str(public), "--watch", str(tmp_path / "nope")], cwd=tmp_path,
                     env={"HOME": str(tmp_path)})
    assert result.returncode == 2 and "does not exist" in result.stderr

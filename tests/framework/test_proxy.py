"""``app.proxy``: a prefix forwarded to a real backend (a stdlib ``http.server`` in a thread),
over HTTP/2 and HTTP/1.1 in front: paths, the order of prefixes, forwarding fields, bodies
streamed both ways, keep-alive, https backends. Fields in ``test_proxy_fields.py``, faults in
``test_proxy_faults.py``, pages in ``test_proxy_pages.py``, WebSockets in
``test_proxy_websocket.py``."""

from __future__ import annotations

import hashlib
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyper2web import App
from tests.framework.proxykit import Backend, BackendServer, serve_backend
from tests.support import PROTOCOLS, protocol_client

SMALL_LIMIT = 64 * 1024  # the App's max_body_size: every upload below is far larger


@pytest.fixture
def proxied(serve_app: Any, tmp_path: Path, backend_server: BackendServer) -> Any:
    (tmp_path / "index.html").write_text("<!doctype html><title>front</title>front")
    app = App(root=tmp_path, max_body_size=SMALL_LIMIT)

    @app.get("api/local")
    async def local(request, response):
        await response.send(b"routes come first")

    app.proxy("/api", backend_server.url)
    app.proxy("/strip", backend_server.url + "/")
    running = serve_app(app)
    running.backend = backend_server
    return running


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_prefix_goes_to_the_backend_unchanged_with_forwarding_fields(
        proxied: Any, protocol: str) -> None:
    with protocol_client(protocol) as client:
        answer = client.get(f"https://localhost:{proxied.port}/api/echo?q=1",
                            headers={"x-mine": "kept"})
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["path"] == "/api/echo?q=1"
    headers = seen["headers"]
    assert headers["host"] == f"localhost:{proxied.port}"  # kept, as vite does by default
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == f"localhost:{proxied.port}"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["forwarded"] == f'for="127.0.0.1";proto=https;host="localhost:{proxied.port}"'
    assert headers["x-mine"] == "kept"
    assert answer.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_a_target_with_a_path_replaces_the_prefix(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{proxied.port}/strip/echo")
    assert answer.json()["path"] == "/echo"


@pytest.mark.parametrize("order", ["shorter first", "longer first"])
def test_the_longest_matching_prefix_wins_whatever_the_order(serve_app: Any, tmp_path: Path,
                                                             order: str) -> None:
    with serve_backend(Backend) as outer, serve_backend(Backend) as inner:
        app = App(root=tmp_path)
        pairs = [("/api", outer.url), ("/api/v2", inner.url)]
        for prefix, url in pairs if order == "shorter first" else pairs[::-1]:
            app.proxy(prefix, url)
        running = serve_app(app)
        expected = {"/api/echo": outer, "/api/v2/echo": inner, "/api/v2?echo=1": inner,
                    "/api/v2/deeper/echo": inner, "/api/v2x/echo": outer,
                    "/api/v3/echo": outer}
        with protocol_client("HTTP/2") as client:
            for path, server in expected.items():
                seen = client.get(f"https://localhost:{running.port}{path}").json()
                assert (path, seen["port"]) == (path, server.server_address[1])
                assert seen["path"] == path  # unchanged: neither target has a path


def test_routes_come_first_then_proxies_then_static_files(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        base = f"https://localhost:{proxied.port}"
        assert client.get(base + "/api/local").text == "routes come first"
        assert client.get(base + "/api/nothing").text == "backend 404"
        assert "front" in client.get(base + "/").text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_upload_streams_to_the_backend_as_it_is_sent(proxied: Any, protocol: str) -> None:
    """The backend has the first piece while the browser still holds the rest back, and the
    whole upload, far over the App's body limit, arrives: nothing buffers it."""
    body = os.urandom(2 * 1024 * 1024)
    backend = proxied.backend
    seen_early: list[bool] = []

    def pieces() -> Iterator[bytes]:
        yield body[:16384]
        seen_early.append(backend.first.wait(10))  # the rest waits for the backend
        for start in range(16384, len(body), 65536):
            yield body[start:start + 65536]

    with protocol_client(protocol, timeout=20) as client:
        answer = client.post(f"https://localhost:{proxied.port}/api/upload", content=pieces())
    assert seen_early == [True]
    assert answer.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                             "path": "/api/upload"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_upload_with_a_length_over_the_body_limit_still_reaches_the_backend(
        proxied: Any, protocol: str) -> None:
    body = os.urandom(16 * SMALL_LIMIT)
    with protocol_client(protocol, timeout=20) as client:
        answer = client.post(f"https://localhost:{proxied.port}/strip/upload", content=body)
    assert answer.status_code == 200  # a buffering proxy answers 413 at the headers
    assert answer.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                             "path": "/upload"}


def test_an_event_stream_is_relayed_as_it_arrives(proxied: Any) -> None:
    with httpx.Client(http2=True, verify=False, timeout=10) as client, \
            client.stream("GET", f"https://localhost:{proxied.port}/api/slow-events") as answer:
        started = time.monotonic()
        first = next(answer.iter_raw())
        assert b"data: first" in first
        assert time.monotonic() - started < 1.0  # before the backend's second event


def test_keep_alive_reuses_backend_connections(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        for _ in range(5):
            assert client.get(f"https://localhost:{proxied.port}/api/echo").status_code == 200
    api = next(p for p in proxied.app.proxies if p.prefix == "/api")
    assert len(api.upstream._idle) == 1  # one connection, used five times


@pytest.fixture
def tls_backend(cert_pair: tuple[Path, Path]) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_pair[0]), str(cert_pair[1]))
    with serve_backend(Backend, context) as server:
        yield server.url


def test_an_https_backend_is_verified_unless_told_not_to(serve_app: Any, tmp_path: Path,
                                                         tls_backend: str) -> None:
    app = App(root=tmp_path)
    app.proxy("/checked", tls_backend + "/api")
    app.proxy("/trusted", tls_backend + "/api", verify=False, change_origin=True)
    running = serve_app(app)
    with protocol_client("HTTP/2") as client:
        refused = client.get(f"https://localhost:{running.port}/checked/echo")
        assert refused.status_code == 502
        assert "TLS with the backend failed" in refused.text
        answer = client.get(f"https://localhost:{running.port}/trusted/echo")
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["path"] == "/api/echo"
    assert seen["headers"]["host"] == tls_backend.removeprefix("https://")  # change_origin

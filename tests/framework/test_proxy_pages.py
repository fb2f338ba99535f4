"""Live reload for server-rendered pages: HTML from the backend gets the reload client,
whatever content coding the backend chose (decoded, injected, sent as identity), its
cookies kept, unless ``inject=False``."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyper2web import App
from hyper2web.reload import LiveReload
from tests.framework.proxykit import BackendServer, serve_backend
from tests.support import PROTOCOLS, need_module, protocol_client

PAGE = b"<!doctype html><html><head><title>rendered</title></head><body>hi</body></html>"


def _brotli(data: bytes) -> bytes:
    brotli = need_module("brotli")
    return bytes(brotli.compress(data))


def _zstd(data: bytes) -> bytes:
    zstandard = need_module("zstandard")
    return bytes(zstandard.ZstdCompressor().compress(data))


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


# path -> (content-encoding, encoder)
CODINGS: dict[str, tuple[str | None, Callable[[bytes], bytes]]] = {
    "/plain": (None, lambda data: data),
    "/gzip": ("gzip", gzip.compress),
    "/br": ("br", _brotli),
    "/zstd": ("zstd", _zstd),
    "/deflate": ("deflate", zlib.compress),  # RFC 9110's deflate: the zlib format
    "/raw-deflate": ("deflate", _raw_deflate),  # as some servers send it
}

COOKIES = ["session=abc; Path=/; HttpOnly", "csrftoken=xyz; Path=/"]


class Pages(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        """A page in the coding its path names; ``/login`` sets two cookies, as a login
        page of Django or Flask does."""
        coding, encode = CODINGS.get(self.path, CODINGS["/plain"])
        body = encode(PAGE)
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        if coding:
            self.send_header("content-encoding", coding)
        if self.path == "/login":
            for cookie in COOKIES:
                self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(body)))
        self.send_header("etag", '"v1"')
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def pages() -> Iterator[BackendServer]:
    with serve_backend(Pages) as server:
        yield server


@pytest.mark.parametrize("path", list(CODINGS))
def test_server_rendered_pages_get_the_live_reload_client(serve_app: Any, tmp_path: Path,
                                                          pages: BackendServer,
                                                          path: str) -> None:
    CODINGS[path][1](b"")  # skips when the coding's library is not installed
    app = App(root=tmp_path, live_reload=LiveReload())
    app.proxy("/", pages.url)
    running = serve_app(app)
    with httpx.Client(http2=True, verify=False, timeout=10) as client:
        answer = client.get(f"https://localhost:{running.port}{path}",
                            headers={"accept-encoding": "gzip, deflate, br, zstd"})
    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers and "etag" not in answer.headers
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert answer.content.startswith(b"<!doctype html><html><head>")
    assert b"/__hyper2web__/client.js" in answer.content
    assert b"<body>hi</body></html>" in answer.content


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_page_with_the_client_injected_keeps_its_cookies(serve_app: Any, tmp_path: Path,
                                                           pages: BackendServer,
                                                           protocol: str) -> None:
    app = App(root=tmp_path, live_reload=LiveReload())
    app.proxy("/", pages.url)
    running = serve_app(app)
    with protocol_client(protocol) as client:
        answer = client.get(f"https://localhost:{running.port}/login")
    assert b"/__hyper2web__/client.js" in answer.content
    assert answer.headers.get_list("set-cookie") == COOKIES


def test_inject_false_leaves_backend_pages_as_they_are(serve_app: Any, tmp_path: Path,
                                                       pages: BackendServer) -> None:
    app = App(root=tmp_path, live_reload=LiveReload())
    app.proxy("/", pages.url, inject=False)
    running = serve_app(app)
    with httpx.Client(http2=True, verify=False, timeout=10) as client:
        answer = client.get(f"https://localhost:{running.port}/plain")
    assert answer.content == PAGE and answer.headers["etag"] == '"v1"'

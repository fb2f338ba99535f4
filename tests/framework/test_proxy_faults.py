"""Faults on either side of the proxy are clear and cost nothing else: a backend down (502)
or slow (504), one that dies mid-body (that stream reset over HTTP/2; over HTTP/1.1 the
response cut and the connection closed), a browser that leaves mid-upload (the backend's
connection closed, not pooled). The server logs no traceback for any of them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyper2web import App
from tests.framework.proxykit import Backend, BackendServer, assert_no_traceback, serve_backend
from tests.server.h1raw import H1Raw, request
from tests.server.h2client import H2Client
from tests.support import protocol_client


@pytest.fixture
def backend_server() -> Iterator[BackendServer]:
    with serve_backend(Backend) as server:
        yield server


@pytest.fixture
def proxied(serve_app: Any, tmp_path: Path, backend_server: BackendServer,
            caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level("DEBUG")  # every logger, every level: any traceback is seen
    app = App(root=tmp_path)
    app.proxy("/api", backend_server.url, timeout=1.0)
    running = serve_app(app)
    running.backend = backend_server
    return running


def test_a_backend_that_is_down_gives_a_502_that_names_it(
        serve_app: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    app = App(root=tmp_path)
    app.proxy("/api", f"http://127.0.0.1:{port}")
    running = serve_app(app)
    with protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{running.port}/api/x")
        assert answer.status_code == 502
        assert f"http://127.0.0.1:{port}" in answer.text
        assert "connection refused: is your backend running?" in answer.text
        assert client.get(f"https://localhost:{running.port}/api/y").status_code == 502
    lines = [r for r in caplog.records if r.getMessage().startswith("proxy ")]
    assert len(lines) == 2  # one line each
    assert_no_traceback(caplog)


def test_a_slow_backend_gives_504(proxied: Any, caplog: pytest.LogCaptureFixture) -> None:
    with protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{proxied.port}/api/sleep")
    assert answer.status_code == 504
    assert "no answer within 1 s" in answer.text
    assert_no_traceback(caplog)


def test_a_backend_that_dies_mid_body_resets_that_stream_only(
        proxied: Any, caplog: pytest.LogCaptureFixture) -> None:
    with H2Client(proxied.port) as client:
        for path in ("/api/dies", "/api/dies-chunked"):
            cut = client.streams[client.request(path)]
            client.read_until(lambda: cut.done, timeout=10)  # noqa: B023 - used at once
            assert cut.reset is not None  # not a clean end: the body is cut
            after = client.get("/api/echo")  # the same connection serves on
            assert after.status == 200
    assert_no_traceback(caplog)


def _to_eof(client: H1Raw) -> bytes:
    """What the server sends until it closes the connection."""
    while not client.eof:
        try:
            client._fill()
        except EOFError:
            break
    data, client.buffer = client.buffer, b""
    return data


def test_over_http11_a_body_cut_with_a_length_closes_the_connection(
        proxied: Any, caplog: pytest.LogCaptureFixture) -> None:
    with H1Raw(proxied.port) as client:
        client.send(request("GET", "/api/dies"))
        head = client.response(head_only=True)
        assert head.status == 200 and head.header("content-length") == "1000000"
        body = _to_eof(client)  # the connection closes: the browser sees a short body
    assert body == b"x" * 1000
    with H1Raw(proxied.port) as client:  # the server serves on
        client.send(request("GET", "/api/echo"))
        assert client.response().status == 200
    assert_no_traceback(caplog)


def test_over_http11_a_cut_chunked_body_never_gets_its_last_chunk(
        proxied: Any, caplog: pytest.LogCaptureFixture) -> None:
    with H1Raw(proxied.port) as client:
        client.send(request("GET", "/api/dies-chunked"))
        head = client.response(head_only=True)
        assert head.status == 200 and head.header("transfer-encoding") == "chunked"
        body = _to_eof(client)
    assert b"y" * 1000 in body
    assert not body.endswith(b"0\r\n\r\n")  # no terminating chunk: the browser sees a cut
    assert_no_traceback(caplog)


def test_a_browser_that_leaves_mid_upload_closes_the_backend_connection(
        proxied: Any, caplog: pytest.LogCaptureFixture) -> None:
    backend = proxied.backend
    with H2Client(proxied.port) as client:
        sid = client.request("/api/upload", "POST", end_stream=False)
        client.send_body(sid, b"z" * 1000, end_stream=False)
        assert backend.first.wait(10)  # the backend is reading the upload
        client.reset(sid)
        assert backend.cut.wait(10)  # and sees its connection closed, not left open
        assert client.get("/api/echo").status == 200
    api = proxied.app.proxies[0]
    assert len(api.upstream._idle) == 1  # only the clean exchange's connection is kept
    assert_no_traceback(caplog)


def test_a_browser_that_leaves_mid_upload_over_http11(
        proxied: Any, caplog: pytest.LogCaptureFixture) -> None:
    backend = proxied.backend
    client = H1Raw(proxied.port)
    client.send(request("POST", "/api/upload", "Transfer-Encoding: chunked",
                        body=b"3e8\r\n" + b"z" * 1000 + b"\r\n"))
    assert backend.first.wait(10)
    client.close()
    assert backend.cut.wait(10)
    assert_no_traceback(caplog)

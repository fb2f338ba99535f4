"""The fields a proxied message keeps and loses (RFC 9110 section 7.6.1), both ways, and
``Location`` / ``Content-Location`` brought back to this server, in plain and in
path-replacing mode: as nginx's default ``proxy_redirect`` does for absolute URLs under the
target URL, and further (see ``Proxy.pointing_here``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from hyper2web import App
from tests.framework.proxykit import BackendServer
from tests.server.h1raw import H1Raw, request
from tests.support import PROTOCOLS, protocol_client

ONE_HOP = ("connection", "x-private", "keep-alive", "proxy-connection", "upgrade", "trailer")


@pytest.fixture
def proxied(serve_app: Any, tmp_path: Path, backend_server: BackendServer) -> Any:
    app = App(root=tmp_path)
    app.proxy("/api", backend_server.url)  # plain: the path goes unchanged
    app.proxy("/strip", backend_server.url + "/")  # /strip/x -> /x
    app.proxy("/sub", backend_server.url + "/api")  # /sub/x -> /api/x
    running = serve_app(app)
    running.backend = backend_server
    return running


def test_a_request_loses_its_hop_by_hop_fields_and_those_its_connection_names(
        proxied: Any) -> None:
    """Only HTTP/1.1 carries these (HTTP/2 refuses them), so the browser side is HTTP/1.1."""
    with H1Raw(proxied.port) as client:
        client.send(request("GET", "/api/echo", "Connection: keep-alive, X-Private, TE",
                            "X-Private: secret", "Keep-Alive: timeout=5",
                            "Proxy-Connection: keep-alive", "TE: trailers", "Trailer: x-sum",
                            "X-Public: kept"))
        answer = client.response()
        client.send(request("GET", "/api/echo", "TE: gzip"))
        other = client.response()
    assert answer.status == 200
    headers = json.loads(answer.body)["headers"]
    assert [name for name in ONE_HOP if name in headers] == []
    assert headers["x-public"] == "kept"
    assert "te" not in headers
    assert "te" not in json.loads(other.body)["headers"]


def test_te_trailers_never_reaches_the_backend(proxied: Any) -> None:
    """The backend's trailer fields are not relayed: ``TE: trailers`` passed on would tell
    it they reach the browser. HTTP/2 allows this one TE value, so it does arrive here."""
    with protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{proxied.port}/api/echo",
                            headers={"te": "trailers"})
    assert "te" not in answer.json()["headers"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_response_loses_its_hop_by_hop_fields_and_those_its_connection_names(
        proxied: Any, protocol: str) -> None:
    with protocol_client(protocol) as client:
        answer = client.get(f"https://localhost:{proxied.port}/api/hop")
    assert answer.status_code == 200 and answer.content == b"hello"
    assert [name for name in (*ONE_HOP, "te") if name in answer.headers] == []
    assert answer.headers["x-public"] == "kept"
    if protocol == "HTTP/2":  # over HTTP/1.1 the server frames the body chunked itself
        assert "transfer-encoding" not in answer.headers


def _moved(client: Any, port: int, path: str, **fields: str) -> Any:
    answer = client.get(f"https://localhost:{port}{path}?{urlencode(fields)}")
    return answer.headers.get("location"), answer.headers.get("content-location")


def test_a_location_at_the_backend_is_rewritten_to_this_server(proxied: Any) -> None:
    with protocol_client("HTTP/2") as client:
        answer = client.get(f"https://localhost:{proxied.port}/api/redirect")
    assert answer.status_code == 302
    assert answer.headers["location"] == f"https://localhost:{proxied.port}/api/echo?x=1"


@pytest.mark.parametrize("prefix, sent, seen", [
    # plain: the backend's origin becomes this server's, the path stays
    ("/api", "{backend}/api/users?x=1", "{here}/api/users?x=1"),
    ("/api", "{backend}", "{here}/"),
    ("/api", "/api/users", "/api/users"),
    # the target's path is replaced by the prefix: for absolute URLs as nginx's default
    # proxy_redirect does, for path-absolute ones beyond it
    ("/strip", "{backend}/users", "{here}/strip/users"),
    ("/strip", "{backend}/", "{here}/strip/"),
    ("/strip", "/users?page=2", "/strip/users?page=2"),
    ("/strip", "/", "/strip/"),
    ("/sub", "{backend}/api/users", "{here}/sub/users"),
    ("/sub", "{backend}/api", "{here}/sub"),
    ("/sub", "/api/users#top", "/sub/users#top"),
    ("/sub", "{backend}/other", "{here}/other"),  # at the backend, not under its path
    ("/sub", "/apiary", "/apiary"),  # not under /api
    ("/sub", "/other", "/other"),
    # elsewhere: unchanged
    ("/strip", "http://example.com/users", "http://example.com/users"),
    ("/strip", "{backend}0/users", "{backend}0/users"),  # another port
    ("/strip", "users/2", "users/2"),
    ("/strip", "//example.com/x", "//example.com/x"),
])
def test_location_and_content_location_point_here(proxied: Any, prefix: str, sent: str,
                                                  seen: str) -> None:
    names = {"backend": proxied.backend.url, "here": f"https://localhost:{proxied.port}"}
    sent, seen = sent.format(**names), seen.format(**names)
    with protocol_client("HTTP/2") as client:
        redirect = _moved(client, proxied.port, prefix + "/moved", location=sent)
        described = _moved(client, proxied.port, prefix + "/moved",
                           **{"content-location": sent})
    assert redirect == (seen, None)
    assert described == (None, seen)

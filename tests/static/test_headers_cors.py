"""``--header``, ``--cors`` and service worker headers on every kind of response."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hyper2web.certs import write_certificates
from hyper2web_cli.cli import main
from tests.static.statictools import Serve, curl, h2_request

ROUTES = '''
async def hello(request, response):
    await response.send_json({"hello": "world"})


async def echo(request, response):
    await response.send(request.body)


async def boom(request, response):
    raise RuntimeError("boom")


async def own_frame_options(request, response):
    response.set_header("x-frame-options", "SAMEORIGIN")
    await response.send(b"mine")


def setup(app):
    app.get("api/hello", hello)
    app.post("api/echo", echo)
    app.get("api/boom", boom)
    app.get("api/own", own_frame_options)
'''
EXTRA = {"x-frame-options": "DENY", "permissions-policy": "camera=()", "x-custom": "a: b"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("headers")
    public = base / "public"
    (public / "js").mkdir(parents=True)
    (public / "files").mkdir()
    (public / "index.html").write_text("<!doctype html><title>Headers</title>")
    (public / "app.js").write_text("console.log('app');\n" * 100)
    (public / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    (public / "service-worker.js").write_text("// worker\n")
    (public / "js" / "worker.js").write_text("// a worker under /js/\n")
    (public / "files" / "a.txt").write_text("a")
    (base / "routes.py").write_text(ROUTES)
    write_certificates(base)  # found beside the served folder
    (base / "home").mkdir()
    return base


@pytest.fixture(scope="module")
def with_headers(project: Path) -> Iterator[Serve]:
    server = Serve(["public", "--header", "X-Frame-Options: DENY", "-H",
                    "Permissions-Policy: camera=()", "--header", "X-Custom: a: b",
                    "--cors", "--sw-allowed", "/", "--no-reload"], project, project / "home")
    yield server
    assert server.stop() == 0
    # every traceback is the failing handler's (once per protocol), logged as it should be
    out = "".join(server.output)
    assert out.count("Traceback") == out.count("failed on GET /api/boom") >= 1


@pytest.fixture(scope="module")
def plain(project: Path) -> Iterator[Serve]:
    server = Serve(["public", "--no-reload"], project, project / "home")
    yield server
    assert server.stop() == 0


def every_kind(client: httpx.Client, url: str) -> dict[str, httpx.Response]:
    """One response of each kind the server gives."""
    etag = client.get(url + "/app.js").headers["etag"]
    return {
        "file": client.get(url + "/app.js"),
        "page": client.get(url + "/"),
        "head": client.head(url + "/app.js"),
        "304": client.get(url + "/app.js", headers={"if-none-match": etag}),
        "206": client.get(url + "/app.js", headers={"range": "bytes=0-3"}),
        "416": client.get(url + "/app.js", headers={"range": "bytes=99999-"}),
        "404": client.get(url + "/missing.png"),
        "head 404": client.head(url + "/missing.png"),
        "301": client.get(url + "/files"),
        "listing": client.get(url + "/files/"),
        "405": client.post(url + "/app.js", content=b"x"),
        "api": client.get(url + "/api/hello"),
        "api post": client.post(url + "/api/echo", content=b"ping"),
        "api 500": client.get(url + "/api/boom"),
        "reserved": client.get(url + "/__hyper2web__/nothing"),
        "preflight": client.options(url + "/api/hello", headers={
            "origin": "https://elsewhere.example", "access-control-request-method": "POST"}),
    }


def test_headers_on_every_response(with_headers: Serve, client: httpx.Client) -> None:
    responses = every_kind(client, with_headers.url)
    expected_status = {"file": 200, "page": 200, "head": 200, "304": 304, "206": 206,
                       "416": 416, "404": 404, "head 404": 404, "301": 301, "listing": 200,
                       "405": 405, "api": 200, "api post": 200, "api 500": 500,
                       "reserved": 404, "preflight": 204}
    for kind, r in responses.items():
        assert r.status_code == expected_status[kind], kind
        for name, value in EXTRA.items():
            assert r.headers.get(name) == value, (kind, name)
        assert r.headers.get("access-control-allow-origin") == "*", kind
    assert responses["api"].json() == {"hello": "world"}
    assert responses["api post"].content == b"ping"


def test_handler_set_header_wins(with_headers: Serve, client: httpx.Client) -> None:
    r = client.get(with_headers.url + "/api/own")
    assert r.content == b"mine"
    assert r.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert r.headers["permissions-policy"] == "camera=()"


def test_headers_with_curl_and_raw_h2(with_headers: Serve) -> None:
    got = curl(with_headers.url + "/missing")
    assert got.status == 404 and got.headers["x-frame-options"] == "DENY"
    raw = h2_request(with_headers.port, "/api/hello")
    assert raw.header("x-frame-options") == "DENY"
    assert raw.header_names().count("x-frame-options") == 1
    assert raw.header("access-control-allow-origin") == "*"


def test_without_options_no_extra_headers(plain: Serve, client: httpx.Client) -> None:
    for kind, r in every_kind(client, plain.url).items():
        for name in (*EXTRA, "access-control-allow-origin", "access-control-allow-methods"):
            assert name not in r.headers, (kind, name)
    preflight = client.options(plain.url + "/api/hello", headers={
        "origin": "https://elsewhere.example", "access-control-request-method": "POST"})
    assert preflight.status_code == 405


@pytest.mark.parametrize("path", ["/api/hello", "/app.js", "/missing"])
def test_cors_preflight(with_headers: Serve, client: httpx.Client, path: str) -> None:
    r = client.options(with_headers.url + path, headers={
        "origin": "https://elsewhere.example",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "content-type, x-token",
    })
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-origin"] == "*"
    assert "PUT" in r.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-token"} <= allowed
    assert int(r.headers["access-control-max-age"]) > 0


def test_cors_preflight_with_curl(with_headers: Serve) -> None:
    got = curl(with_headers.url + "/api/echo", "-X", "OPTIONS", "-H", "Origin: https://x.test",
               "-H", "Access-Control-Request-Method: POST",
               "-H", "Access-Control-Request-Headers: X-Requested-With")
    assert got.status == 204
    assert got.headers["access-control-allow-origin"] == "*"
    assert "POST" in got.headers["access-control-allow-methods"]
    assert "x-requested-with" in got.headers["access-control-allow-headers"].lower()
    assert "access-control-max-age" in got.headers


@pytest.mark.parametrize(
    ("path", "headers", "allowed"),
    [
        ("/sw.js", {}, True),
        ("/service-worker.js", {}, True),
        ("/js/worker.js", {"service-worker": "script"}, True),
        ("/js/worker.js", {}, False),
        ("/app.js", {}, False),
        ("/index.html", {}, False),
    ],
)
def test_service_worker_scripts(with_headers: Serve, plain: Serve, client: httpx.Client,
                                path: str, headers: dict[str, str], allowed: bool) -> None:
    for method in ("GET", "HEAD"):
        r = client.request(method, with_headers.url + path, headers=headers)
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers.get("service-worker-allowed") == ("/" if allowed else None), method
        r = client.request(method, plain.url + path, headers=headers)
        assert r.headers["cache-control"] == "no-cache"
        assert "service-worker-allowed" not in r.headers
    etag = client.get(with_headers.url + path, headers=headers).headers["etag"]
    r = client.get(with_headers.url + path, headers={**headers, "if-none-match": etag})
    assert r.status_code == 304 and r.headers["cache-control"] == "no-cache"


def test_sw_allowed_in_app(serve_app, project: Path, client: httpx.Client) -> None:
    server = serve_app(root=project / "public", sw_allowed="/app/")
    assert client.get(server.url + "/sw.js").headers["service-worker-allowed"] == "/app/"
    assert "service-worker-allowed" not in client.get(server.url + "/app.js").headers


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NoColon", "is not \"Name: value\""),
        (": value", "is not \"Name: value\""),
        ("Bad Name: x", "is not a valid header name"),
        ("X-Ünicode: x", "is not a valid header name"),
        ("Content-Length: 5", "cannot be set on every response"),
        ("Connection: close", "cannot be set on every response"),
        ("Transfer-Encoding: chunked", "cannot be set on every response"),
        ("X-A: one\ntwo", "has a line break"),
    ],
)
def test_bad_header_values_are_usage_errors(project: Path, value: str, message: str) -> None:
    result = CliRunner().invoke(main, ["serve", str(project / "public"), "--header",
                                       "X-Fine: yes", "--header", value])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--header'" in result.output
    assert message in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                     SystemExit)


def test_bad_header_in_a_real_process(project: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "hyper2web_cli", "serve", "public", "--port",
                           "0", "--header", "X-Frame-Options DENY"], cwd=project,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert "Error: Invalid value for '--header'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout

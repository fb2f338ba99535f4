"""What HTTP/2 serves works over HTTP/1.1 through the same code: the same requests are made
with an HTTP/2 and an HTTP/1.1 client and must get the same answers (validators, ranges,
compression, SPA fallback, listings, routes, error pages, the access log)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hyper2web import App

PAGE = b"<!doctype html><title>Home</title><p>" + b"home " * 400


@pytest.fixture
def site(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    (public / "docs").mkdir(parents=True)
    (public / "listed").mkdir()
    (public / "index.html").write_bytes(PAGE)
    (public / "data.json").write_text('{"items": [' + '{"n": 12345}, ' * 300 + "{}]}")
    (public / "listed" / "a.txt").write_text("a\n")
    return public


@pytest.fixture(params=["HTTP/2", "HTTP/1.1"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    http2 = request.param == "HTTP/2"
    with httpx.Client(http1=not http2, http2=http2, verify=False, timeout=10,
                      headers={"accept-encoding": "identity"}) as c:
        c.version = request.param  # type: ignore[attr-defined]
        yield c


def serve(serve_app, site: Path):
    app = App(root=site, port=0, spa=True)

    @app.get("api/user/{userId}")
    async def user(request, response):
        await response.send_json({"id": request.para["userId"]})

    @app.post("api/echo")
    async def echo(request, response):
        await response.send(request.stream.data)

    return serve_app(app)


def test_files_validators_and_ranges(serve_app, site: Path, client: httpx.Client) -> None:
    server = serve(serve_app, site)
    first = client.get(server.url + "/index.html")
    assert first.http_version == client.version  # type: ignore[attr-defined]
    assert first.status_code == 200 and first.content == PAGE
    again = client.get(server.url + "/index.html",
                       headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    part = client.get(server.url + "/index.html", headers={"range": "bytes=0-14"})
    assert part.status_code == 206 and part.content == PAGE[:15]
    assert part.headers["content-range"] == f"bytes 0-14/{len(PAGE)}"


def test_compression(serve_app, site: Path, client: httpx.Client) -> None:
    server = serve(serve_app, site)
    raw = client.get(server.url + "/data.json", headers={"accept-encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert int(raw.headers["content-length"]) < len(raw.content)  # sent compressed
    assert raw.content == (site / "data.json").read_bytes()  # httpx decoded it


def test_spa_listing_routes_and_errors(serve_app, site: Path, client: httpx.Client) -> None:
    server = serve(serve_app, site)
    shell = client.get(server.url + "/app/settings", headers={"accept": "text/html"})
    assert shell.status_code == 200 and shell.content == PAGE
    listing = client.get(server.url + "/listed/")
    assert listing.status_code == 200 and "a.txt" in listing.text
    assert client.get(server.url + "/api/user/42").json() == {"id": "42"}
    echoed = client.post(server.url + "/api/echo", content=b"x" * 100_000)
    assert echoed.status_code == 200 and echoed.content == b"x" * 100_000
    missing = client.get(server.url + "/missing.png")
    assert missing.status_code == 404 and "404" in missing.text
    wrong = client.delete(server.url + "/api/user/42")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
    moved = client.get(server.url + "/listed")
    assert moved.status_code == 301 and moved.headers["location"] == "/listed/"


def test_the_access_log(serve_app, site: Path, client: httpx.Client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="hyper2web.access")
    server = serve(serve_app, site)
    client.get(server.url + "/api/user/7")

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "hyper2web.access"]

    # The line is written once the answer has left, so it may follow the client's read.
    deadline = time.monotonic() + 5
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any(line.startswith("GET    /api/user/7 200 ") and line.endswith(" ms")
               for line in logged()), logged()

"""Streaming request bodies (``stream=True``): the handler runs when the headers arrive and
reads the body as it comes, on HTTP/2 and HTTP/1.1; the client sends only as fast as the
handler reads. Without ``stream=True`` nothing changes."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from hyper2web import App
from hyper2web._curio import curio
from hyper2web.router import Routes
from tests.server.h2client import H2Client

MIB = 1024 * 1024


def streaming_app(root: Path) -> Any:
    app = App(root=root, port=0)
    app.seen = {"started": threading.Event(), "release": None, "errors": []}

    @app.post("upload", stream=True)
    async def upload(request, response):
        app.seen["started"].set()
        release = app.seen["release"]
        if release is not None:
            while not release.is_set():
                await curio.sleep(0.02)
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream:
            digest.update(chunk)
            size += len(chunk)
        await response.send_json({"size": size, "sha256": digest.hexdigest(),
                                  "data": len(request.stream.data)})

    async def collected(request, response):
        pieces = [chunk async for chunk in request.stream]
        await response.send_json({"pieces": len(pieces), "size": len(request.stream.data)})

    app.post("collected", collected)

    routes = Routes()

    @routes.put("put/{name}", stream=True)
    async def put(request, response):
        size = 0
        async for chunk in request.stream:
            size += len(chunk)
        await response.send_json({"name": request.para["name"], "size": size})

    app.include(routes)
    return app


def pattern(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def test_the_handler_runs_at_headers_time_and_reads_the_body(serve_app, tmp_path) -> None:
    app = streaming_app(tmp_path)
    server = serve_app(app)
    body = pattern(5 * MIB + 123)
    with H2Client(server.port) as client:
        sid = client.request("/upload", method="POST", end_stream=False)
        client.send_body(sid, body[:1000], end_stream=False)
        assert app.seen["started"].wait(5), "the handler did not start before the body ended"
        client.send_body(sid, body[1000:])
        result = client.wait(sid)
    assert result.status == 200
    answer = __import__("json").loads(result.body)
    assert answer == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                      "data": 0}


def test_the_client_is_held_back_until_the_handler_reads(serve_app, tmp_path) -> None:
    app = streaming_app(tmp_path)
    app.seen["release"] = threading.Event()
    server = serve_app(app)
    body = pattern(8 * MIB)
    with H2Client(server.port, timeout=20) as client:
        sid = client.request("/upload", method="POST", end_stream=False)
        sender = threading.Thread(target=client.send_body, args=(sid, body), daemon=True)
        sender.start()
        time.sleep(1.0)
        # Nothing was read: the client could send no more than the stream's window.
        sent = client.sent.get(sid, 0)
        assert sent <= 1 * MIB + 16384, sent
        assert sender.is_alive()
        # What waits unread counts in the process's body budget...
        budget = server.app.server.config.bodies
        assert 0 < budget.used <= 1 * MIB + 16384, budget.used
        app.seen["release"].set()
        sender.join(20)
        assert not sender.is_alive()
        result = client.wait(sid, timeout=20)
    assert result.status == 200 and b'"size":8388608' in result.body
    assert budget.used == 0  # ...and leaves it once read


def test_streaming_over_http11_chunked(serve_app, tmp_path) -> None:
    server = serve_app(streaming_app(tmp_path))
    pieces = [pattern(300_000)] * 10

    def chunks() -> Iterator[bytes]:
        yield from pieces

    with httpx.Client(http1=True, http2=False, verify=False, timeout=20) as client:
        answer = client.post(server.url + "/upload", content=chunks())
        assert answer.http_version == "HTTP/1.1"
        assert answer.json()["size"] == 3_000_000
        assert answer.json()["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
        # The connection goes on after a streamed body.
        assert client.put(server.url + "/put/a.bin", content=b"x" * 70_000).json() == \
            {"name": "a.bin", "size": 70_000}


def test_routes_decorator_form_and_http2(serve_app, tmp_path) -> None:
    server = serve_app(streaming_app(tmp_path))
    with httpx.Client(http2=True, verify=False, timeout=20) as client:
        answer = client.put(server.url + "/put/b.bin", content=pattern(2 * MIB))
        assert answer.http_version == "HTTP/2"
        assert answer.json() == {"name": "b.bin", "size": 2 * MIB}


def test_without_stream_the_body_is_collected_and_iterates_once(serve_app, tmp_path) -> None:
    server = serve_app(streaming_app(tmp_path))
    for http2 in (True, False):
        with httpx.Client(http1=not http2, http2=http2, verify=False, timeout=20) as client:
            answer = client.post(server.url + "/collected", content=pattern(100_000))
            assert answer.json() == {"pieces": 1, "size": 100_000}


def test_a_client_that_resets_mid_body_ends_the_handler_quietly(serve_app, tmp_path,
                                                                caplog) -> None:
    app = streaming_app(tmp_path)
    server = serve_app(app)
    with H2Client(server.port) as client:
        sid = client.request("/upload", method="POST", end_stream=False)
        client.send_body(sid, pattern(100_000), end_stream=False)
        assert app.seen["started"].wait(5)
        client.reset(sid)
        assert client.get("/upload", method="POST", body=b"abc").status == 200
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert server.app.server.config.bodies.used == 0  # what the reset left is let go


def test_the_upload_to_disk_example_of_the_reference(serve_app, tmp_path, monkeypatch) -> None:
    text = (Path(__file__).parents[2] / "docs" / "reference.md").read_text()
    section = text.split("Saving an upload to disk:", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "uploads").mkdir()
    namespace: dict[str, Any] = {}
    exec(compile(code, "reference.md", "exec"), namespace)
    app = namespace["app"]
    app.root = str(tmp_path)
    server = serve_app(app)
    body = pattern(3 * MIB)
    with httpx.Client(http2=True, verify=False, timeout=20) as client:
        answer = client.post(server.url + "/upload/..%2F..%2Fphoto.jpg", content=body)
    assert answer.json() == {"saved": "photo.jpg", "size": len(body)}
    assert (tmp_path / "uploads" / "photo.jpg").read_bytes() == body

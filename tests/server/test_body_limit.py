"""App(max_body_size=...): a larger request body gets 413 and RST_STREAM(NO_ERROR), which
stops the upload (RFC 9113 section 8.1), without the handler ever running."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import DataFrame

from tests.server.apps import Site, make_app
from tests.server.h2client import SETTINGS, H2Client

LIMIT = 1000


@pytest.fixture
def limited(serve_app: Callable[..., Any], big_site: Site) -> Any:
    return serve_app(make_app(big_site.root, max_body_size=LIMIT))


def _refused(client: H2Client, sid: int, *, still_uploading: bool = True) -> None:
    """413, complete; then RST_STREAM(NO_ERROR) when the client still had body to send."""
    stream = client.streams[sid]
    if still_uploading:
        client.read_until(lambda: stream.reset is not None, timeout=3)
        assert stream.reset == ErrorCodes.NO_ERROR
    else:
        client.read_until(lambda: stream.done, timeout=3)
        assert stream.reset is None
    assert stream.status == 413
    assert stream.ended, "the 413 response is complete before any reset"
    assert stream.body == b"request body too large\n"


def test_content_length_over_the_limit_is_refused_before_the_body(limited: Any) -> None:
    with H2Client(limited.port) as client:
        sid = client.request("/sha256", method="POST", end_stream=False,
                             headers=[("content-length", str(50 * 1024 * 1024))])
        _refused(client, sid)
        assert client.sent.get(sid, 0) == 0
        # The client's h2 knows the stream is gone: the upload cannot go on.
        client.send_body(sid, b"x" * 10_000)
        assert client.sent.get(sid, 0) == 0
        assert client.get("/fast").status == 200
    assert limited.app.calls["upload"] == 0


def test_body_over_the_limit_without_content_length_is_refused(limited: Any) -> None:
    with H2Client(limited.port) as client:
        # The whole body was sent: nothing to stop, the stream simply ends with the 413.
        sid = client.request("/sha256", method="POST", body=b"x" * (LIMIT + 1))
        _refused(client, sid, still_uploading=False)
        # Streamed in pieces, the refusal comes as soon as the limit is passed.
        sid = client.request("/sha256", method="POST", end_stream=False)
        for _ in range(3):
            client.send_body(sid, b"y" * 400, end_stream=False)
        _refused(client, sid)
        assert client.get("/fast").status == 200
    assert limited.app.calls["upload"] == 0


@pytest.mark.parametrize("declared", [True, False])
def test_body_at_the_limit_is_accepted(limited: Any, declared: bool) -> None:
    headers = [("content-length", str(LIMIT))] if declared else []
    with H2Client(limited.port) as client:
        result = client.get("/sha256", method="POST", body=b"z" * LIMIT, headers=headers)
        assert result.status == 200
        assert result.body.startswith(b'{"length":1000,')
    assert limited.app.calls["upload"] == 1


def test_refused_data_still_reopens_the_connection_window(limited: Any) -> None:
    """DATA the client had in flight for a refused stream is still credited back: after
    17 MiB of it (more than the server's 16 MiB connection window) requests still work."""
    with H2Client(limited.port, strict=False) as client:
        sid = client.request("/sha256", method="POST", end_stream=False,
                             headers=[("content-length", str(100 * 1024 * 1024))])
        _refused(client, sid)
        chunk = DataFrame(sid, b"d" * 16384).serialize()
        for _ in range(17 * 64):
            client.send_raw(chunk)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and client.frames_of(7) == []:
            try:
                client.read_until(lambda: False, timeout=0.2)
            except TimeoutError:
                break
        assert client.frames_of(7) == [], "the server closed the connection"
        client.strict = True
        result = client.get("/sha256", method="POST", body=b"ok" * 100)
        assert result.status == 200
        assert result.body.startswith(b'{"length":200,')


def test_refusal_with_a_closed_response_window(limited: Any) -> None:
    """The client allows no response DATA: the 413 still ends, with headers only."""
    with H2Client(limited.port, settings={SETTINGS.INITIAL_WINDOW_SIZE: 0}) as client:
        sid = client.request("/sha256", method="POST", end_stream=False,
                             headers=[("content-length", str(LIMIT + 1))])
        stream = client.streams[sid]
        client.read_until(lambda: stream.reset is not None, timeout=3)
        assert (stream.status, stream.ended, stream.body) == (413, True, b"")
        assert stream.header("content-length") == "0"
        assert stream.reset == ErrorCodes.NO_ERROR


def test_refused_streams_are_forgotten(limited: Any) -> None:
    with H2Client(limited.port) as client:
        for _ in range(20):
            sid = client.request("/sha256", method="POST", end_stream=False,
                                 headers=[("content-length", str(LIMIT + 1))])
            _refused(client, sid)
        assert client.get("/fast").status == 200
        connections = list(limited.app.server.connections)
        assert [len(conn.streams) for conn in connections] == [0]


def test_httpx_gets_413(limited: Any) -> None:
    with httpx.Client(http2=True, verify=False, timeout=5) as client:
        response = client.post(limited.url + "/sha256", content=b"x" * (LIMIT * 10))
        assert response.http_version == "HTTP/2"
        assert response.status_code == 413
        assert client.get(limited.url + "/fast").text == "fast"


def test_bodies_held_on_one_connection_are_bounded_together(limited: Any) -> None:
    """Each body under the limit, but together over twice the limit: the one that would
    pass the bound is refused, the others stay and complete."""
    with H2Client(limited.port) as client:
        first = client.request("/sha256", method="POST", end_stream=False)
        second = client.request("/sha256", method="POST", end_stream=False)
        third = client.request("/sha256", method="POST", end_stream=False)
        client.send_body(first, b"a" * 900, end_stream=False)
        client.send_body(second, b"b" * 900, end_stream=False)
        client.send_body(third, b"c" * 900, end_stream=False)
        _refused(client, third)
        client.send_body(first, b"", end_stream=True)
        client.send_body(second, b"", end_stream=True)
        client.read_until(lambda: client.streams[first].done and client.streams[second].done,
                          timeout=3)
        assert client.streams[first].status == 200
        assert client.streams[second].status == 200

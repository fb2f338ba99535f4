"""Ctrl+C and SIGTERM on ``hyper2web serve``: every client gets GOAWAY, responses in flight
get a short grace to finish, and the process exits with code 0 within a second, without a
traceback."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import HeadersFrame

from tests.server.h2client import H2Client, encode_headers
from tests.support import need_tool

ROUTES = '''
from pathlib import Path

from hyper2web._curio import curio


async def sleep(request, response):
    if "mark" in request.query:
        Path(request.query["mark"]).touch()  # tells the test the handler is running
    await curio.sleep(int(request.para["ms"]) / 1000)
    await response.send(b"slept " + request.para["ms"].encode())


def setup(app):
    app.get("sleep/{ms}", sleep)
'''


class Started:
    """A marker file that a request's handler creates when it starts running."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / name

    @property
    def query(self) -> str:
        return f"?mark={self.path}"

    def wait(self, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not self.path.exists():
            assert time.monotonic() < deadline, "the handler did not start"
            time.sleep(0.01)


@pytest.fixture
def started(tmp_path: Path) -> Callable[[str], Started]:
    return lambda name: Started(tmp_path, name)


@pytest.fixture
def serve(cli_server: Callable[..., Any], cert_pair: tuple[Path, Path],
          tmp_path: Path) -> Callable[[], Any]:
    root = tmp_path / "project" / "public"
    root.mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>home</title>home")
    routes = root.parent / "routes.py"
    routes.write_text(ROUTES)

    def start() -> Any:
        return cli_server(["serve", str(root), "--port", "0", "--cert", str(cert_pair[0]),
                           "--key", str(cert_pair[1]), "--routes", str(routes),
                           "--no-reload"],
                          cwd=root.parent)

    return start


def _stopped(server: Any, sig: int, client: H2Client) -> float:
    """Send ``sig``; the client must get GOAWAY(NO_ERROR); returns seconds until exit."""
    sent = time.monotonic()
    server.proc.send_signal(sig)
    client.read_until(lambda: client.goaway is not None, timeout=1)
    assert client.goaway.error_code == ErrorCodes.NO_ERROR
    code = server.proc.wait(timeout=5)
    took = time.monotonic() - sent
    assert code == 0, "".join(server.output)
    return took


def _output(server: Any) -> str:
    """The process's output once its last line (the shutdown line) has been read."""
    deadline = time.monotonic() + 2
    while "shutting down" not in "".join(server.output) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "".join(server.output)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_sends_goaway_and_exits_cleanly(serve: Callable[[], Any], sig: int) -> None:
    server = serve()
    with H2Client(server.port) as client, H2Client(server.port) as idle:
        home = client.get("/")
        assert (home.status, home.body) == (200, b"<!doctype html><title>home</title>home")
        idle.read_until(lambda: idle.frames_of(4) != [], timeout=2)
        took = _stopped(server, sig, client)
        assert took < 1.0, f"exit took {took:.2f} s"
        assert client.goaway.last_stream_id == 1
        idle.read_until(lambda: idle.goaway is not None, timeout=1)
        assert idle.goaway.last_stream_id == 0
        client.read_to_eof(timeout=1)
        idle.read_to_eof(timeout=1)
    output = _output(server)
    assert "Traceback" not in output, output
    assert "shutting down" in output


def test_signal_lets_a_short_response_in_flight_finish(
        serve: Callable[[], Any], started: Callable[[str], Started]) -> None:
    server = serve()
    # After GOAWAY the client's h2 accepts no frame: the response is read from the wire.
    with H2Client(server.port, strict=False) as client:
        assert client.get("/").status == 200
        running = started("short")
        sid = client.request("/sleep/300" + running.query)
        running.wait()
        took = _stopped(server, signal.SIGINT, client)
        assert client.goaway.last_stream_id == sid
        client.read_until(lambda: client.wire_done(sid), timeout=1)
        assert (":status", "200") in client.wire_headers[sid]
        assert client.wire_body(sid) == b"slept 300"
        assert client.wire_resets(sid) == []
        assert took < 1.0, f"exit took {took:.2f} s"
    assert "Traceback" not in _output(server)


def test_curl_gets_a_response_that_was_in_flight(
        serve: Callable[[], Any], started: Callable[[str], Started]) -> None:
    curl = need_tool("curl")
    server = serve()
    running = started("curl")
    proc = subprocess.Popen(
        [curl, "--http2", "--insecure", "--silent", "--show-error", "--max-time", "5",
         "--write-out", "\n%{http_code} %{http_version}",
         f"https://127.0.0.1:{server.port}/sleep/400{running.query}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running.wait()
        server.proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == "slept 400\n200 2", out
    assert server.proc.wait(timeout=2) == 0


def test_signal_cuts_a_long_response_in_flight(
        serve: Callable[[], Any], started: Callable[[str], Started]) -> None:
    server = serve()
    with H2Client(server.port, strict=False) as client:
        running = started("long")
        sid = client.request("/sleep/5000" + running.query)
        running.wait()
        took = _stopped(server, signal.SIGTERM, client)
        assert took < 1.0, f"exit took {took:.2f} s"
        client.read_to_eof(timeout=1)
        assert sid not in client.wire_headers
        assert not client.wire_done(sid) or client.wire_resets(sid)
    assert "Traceback" not in _output(server)


def test_requests_after_goaway_are_refused(
        serve: Callable[[], Any], started: Callable[[str], Started]) -> None:
    """A stream the client opens after the GOAWAY is refused (REFUSED_STREAM, safe to retry
    elsewhere) while the streams before it finish."""
    server = serve()
    with H2Client(server.port, strict=False) as client:
        running = started("first")
        first = client.request("/sleep/400" + running.query)
        running.wait()
        server.proc.send_signal(signal.SIGINT)
        client.read_until(lambda: client.goaway is not None, timeout=1)
        assert client.goaway.last_stream_id == first
        # The client's h2 opens no stream after a GOAWAY: write one past it.
        late = first + 2
        block = encode_headers([(":method", "GET"), (":scheme", "https"),
                                (":authority", "localhost"), (":path", "/")])
        client.send_frame(HeadersFrame(late, block, flags=["END_STREAM", "END_HEADERS"]))
        client.read_until(lambda: client.wire_done(first) and client.wire_done(late),
                          timeout=1)
        assert client.wire_resets(late) == [ErrorCodes.REFUSED_STREAM]
        assert client.wire_body(first) == b"slept 400"
        assert (":status", "200") in client.wire_headers[first]
        assert server.proc.wait(timeout=2) == 0

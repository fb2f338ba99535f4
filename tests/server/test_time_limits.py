"""Time limits: a client that sends no preface, never finishes a body, or stops reading
what it asked for is let go of, and the server keeps serving everyone else. The limits
are shortened here; their defaults are documented in docs/reference.md."""

from __future__ import annotations

import logging
import socket
import time

from h2.errors import ErrorCodes

from hyper2web.server.config import ConnectionConfig
from hyper2web.server.listener import raise_open_files_limit
from tests.server.apps import make_app
from tests.server.h2client import H2Client, h2_get, tls_connect


def shorten(server, **limits: float) -> None:
    for name, value in limits.items():
        setattr(server.app.server.config, name, value)


def test_the_defaults_are_bounded() -> None:
    config = ConnectionConfig()
    assert 0 < config.preface_timeout <= 10
    assert 0 < config.body_timeout <= 120
    assert 0 < config.send_timeout <= 120
    assert config.max_buffered_bodies == 256 * 1024 * 1024


def test_no_preface_is_closed(serve_app, big_site) -> None:
    server = serve_app(make_app(big_site.root))
    shorten(server, preface_timeout=0.3)
    silent = tls_connect(server.port)
    started = time.monotonic()
    silent.settimeout(5)
    data = b""
    while True:  # the server's SETTINGS, then (after the limit) its GOAWAY and the end
        chunk = silent.recv(65536)
        if not chunk:
            break
        data += chunk
    assert time.monotonic() - started < 3
    silent.close()
    assert h2_get(server.port, "/fast").status == 200


def test_a_body_that_stops_gets_408(serve_app, big_site, caplog) -> None:
    caplog.set_level(logging.INFO, logger="hyper2web")
    server = serve_app(make_app(big_site.root))
    shorten(server, body_timeout=0.4)
    with H2Client(server.port, strict=False) as client:
        sid = client.request("/sha256", method="POST", end_stream=False)
        client.send_body(sid, b"x" * 1000, end_stream=False)  # ...and nothing more
        result = client.wait(sid, timeout=5)
        assert result.status == 408
        assert client.get("/fast").status == 200  # the connection goes on
    assert any("made no progress" in r.getMessage() for r in caplog.records)


def test_a_body_stalled_beside_a_chatty_stream_gets_408(serve_app, big_site) -> None:
    server = serve_app(make_app(big_site.root))
    shorten(server, body_timeout=0.4)
    with H2Client(server.port, strict=False) as client:
        sid = client.request("/sha256", method="POST", end_stream=False)
        client.send_body(sid, b"x" * 10, end_stream=False)
        deadline = time.monotonic() + 5
        while not client.streams[sid].done and time.monotonic() < deadline:
            assert client.get("/fast").status == 200  # traffic on the same connection
            time.sleep(0.1)
        assert client.streams[sid].status == 408


def test_a_response_the_peer_never_reads_is_reset(serve_app, big_site) -> None:
    server = serve_app(make_app(big_site.root))
    shorten(server, send_timeout=0.5)
    # The client's window is 1 byte and it never opens it.
    with H2Client(server.port, auto_ack=False, strict=False,
                  settings={0x4: 1}) as client:
        sid = client.request("/big.bin")
        client.read_until(lambda: ErrorCodes.CANCEL in client.wire_resets(sid), timeout=5)
        assert client.get("/fast").status == 200


def test_a_client_that_stops_reading_the_socket_is_closed(serve_app, big_site,
                                                          caplog) -> None:
    caplog.set_level(logging.INFO, logger="hyper2web")
    server = serve_app(make_app(big_site.root))
    shorten(server, send_timeout=0.5)
    with H2Client(server.port, strict=False, settings={0x4: 2**31 - 1}) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.conn.increment_flow_control_window(2**31 - 1 - 65535)
        client.flush()
        client.request("/big.bin")  # 50 MiB, never read
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not any(
                "read nothing" in r.getMessage() for r in caplog.records):
            time.sleep(0.1)
        # Closed by the server while the client still holds it open: nothing hangs.
        listener = server.app.server
        deadline = time.monotonic() + 5
        while listener.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not listener.connections
    assert any("read nothing for 0.5 s" in r.getMessage() for r in caplog.records)
    assert h2_get(server.port, "/fast").status == 200


def test_the_open_files_limit_is_raised() -> None:
    import resource

    limit = raise_open_files_limit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limit == soft
    assert soft == hard or hard == resource.RLIM_INFINITY


def test_connections_past_the_limit_are_refused_with_one_line(serve_app, big_site,
                                                               caplog) -> None:
    caplog.set_level(logging.INFO, logger="hyper2web")
    server = serve_app(make_app(big_site.root))
    listener = server.app.server
    held = [H2Client(server.port) for _ in range(2)]
    for client in held:
        assert client.get("/fast").status == 200
    listener.max_sockets = 2
    refused = 0
    for _ in range(5):
        try:
            h2_get(server.port, "/fast", timeout=2)
        except (OSError, ConnectionError, TimeoutError):
            refused += 1
    assert refused == 5
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1, lines
    listener.max_sockets = None
    assert h2_get(server.port, "/fast").status == 200
    for client in held:
        client.close()


def _trickle(sock, data: bytes, gap: float, limit: float) -> float:
    """Send ``data`` a byte every ``gap`` seconds until the server closes; the time it took."""
    started = time.monotonic()
    sock.settimeout(gap)
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
            chunk = sock.recv(65536)
            if chunk == b"":
                break
        except TimeoutError:
            pass
        except OSError:
            break
        if time.monotonic() - started > limit:
            break
    return time.monotonic() - started


def test_a_preface_sent_a_byte_at_a_time_is_timed_as_a_whole(serve_app, big_site) -> None:
    server = serve_app(make_app(big_site.root))
    shorten(server, preface_timeout=0.6)
    with tls_connect(server.port) as sock:
        took = _trickle(sock, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" * 4, 0.15, 10)
    assert took < 3, took
    assert h2_get(server.port, "/fast").status == 200


def test_an_http11_head_sent_a_byte_at_a_time_is_timed_as_a_whole(serve_app,
                                                                 big_site) -> None:
    server = serve_app(make_app(big_site.root))
    shorten(server, preface_timeout=0.6)
    with tls_connect(server.port, alpn=["http/1.1"]) as sock:
        took = _trickle(sock, b"GET /fast HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200,
                        0.15, 10)
    assert took < 3, took

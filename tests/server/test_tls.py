"""TLS and broken clients: every failed connection is closed cleanly, logged in one line
that says why, and never stops the server."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import subprocess
import time
from typing import Any

import pytest

from tests.server.apps import make_app
from tests.server.h2client import H2Client, client_context, h2_get, tls_connect
from tests.support import need_tool

LOGGER = "hyper2web.server"


def _lines_about(caplog: pytest.LogCaptureFixture, port: int) -> list[logging.LogRecord]:
    tag = f":{port}"
    return [r for r in caplog.records
            if r.name.startswith("hyper2web") and r.name != "hyper2web.access"
            and tag in r.getMessage()]


def _one_line_about(caplog: pytest.LogCaptureFixture, port: int, *,
                    timeout: float = 3.0) -> logging.LogRecord:
    """Wait for the server's line about the client at ``port``; it must stay the only one."""
    deadline = time.monotonic() + timeout
    while not _lines_about(caplog, port) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # a second line would follow at once
    lines = _lines_about(caplog, port)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    record = lines[0]
    assert record.name == LOGGER
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    return record


def _no_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="hyper2web")
    return caplog


def test_alpn_h2_is_selected(server: Any) -> None:
    for offer in (["h2"], ["http/1.1", "h2"], ["h2", "http/1.1"]):
        with tls_connect(server.port, alpn=offer) as sock:
            assert sock.selected_alpn_protocol() == "h2"
            assert sock.version() in ("TLSv1.2", "TLSv1.3")


def test_tls12_client_is_served(server: Any) -> None:
    ctx = client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
        assert sock.version() == "TLSv1.2"
        assert sock.selected_alpn_protocol() == "h2"
        cipher = sock.cipher()[0]
        assert "GCM" in cipher or "CHACHA20" in cipher
        assert cipher.startswith("ECDHE")


def test_tcp_connect_then_close(server: Any, logs: pytest.LogCaptureFixture) -> None:
    """A port probe (connect, send nothing, close) is not worth a line."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        port = sock.getsockname()[1]
    time.sleep(0.3)
    assert _lines_about(logs, port) == []
    assert h2_get(server.port, "/fast").status == 200
    _no_errors(logs)


def test_plain_http_to_the_tls_port(server: Any, logs: pytest.LogCaptureFixture) -> None:
    """Plain HTTP gets a redirect to https (see test_http1.py), and one line."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        port = sock.getsockname()[1]
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        sock.settimeout(3)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        assert received.startswith(b"HTTP/1.1 308 ")
    record = _one_line_about(logs, port)
    # The Host named no port: the redirect keeps the server's.
    assert (f"plain HTTP on the HTTPS port: 308 to https://localhost:{server.port}/"
            in record.getMessage())
    assert h2_get(server.port, "/fast").status == 200
    _no_errors(logs)


@pytest.fixture
def h2_only(serve_app: Any, big_site: Any) -> Any:
    """``App(http1=False)``: clients without h2 are closed, as before HTTP/1.1 was served."""
    return serve_app(make_app(big_site.root, http1=False))


def test_client_offering_only_http11(h2_only: Any, logs: pytest.LogCaptureFixture) -> None:
    with tls_connect(h2_only.port, alpn=["http/1.1"]) as sock:
        port = sock.getsockname()[1]
        assert sock.selected_alpn_protocol() is None
        sock.settimeout(3)
        assert sock.recv(4096) == b""  # closed at once, without a byte of HTTP/2
    record = _one_line_about(logs, port)
    assert "does not speak HTTP/2" in record.getMessage()
    assert h2_get(h2_only.port, "/fast").status == 200
    _no_errors(logs)


def test_client_offering_no_alpn(h2_only: Any, logs: pytest.LogCaptureFixture) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", h2_only.port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
        port = sock.getsockname()[1]
        sock.settimeout(3)
        assert sock.recv(4096) == b""
    assert "does not speak HTTP/2" in _one_line_about(logs, port).getMessage()
    _no_errors(logs)


def test_client_offering_no_alpn_is_served_http11(server: Any) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
        assert sock.selected_alpn_protocol() is None
        sock.sendall(b"GET /fast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        sock.settimeout(3)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b"fast")


def test_failed_certificate_check_on_the_client(server: Any,
                                                logs: pytest.LogCaptureFixture) -> None:
    """A client that does not trust the certificate aborts the handshake: one line."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    port = raw.getsockname()[1]
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="localhost")
    raw.close()
    message = _one_line_about(logs, port).getMessage()
    assert "TLS handshake failed: the client does not trust the certificate" in message
    assert h2_get(server.port, "/fast").status == 200
    _no_errors(logs)


def test_connection_reset_in_the_middle_of_a_response(
        server: Any, logs: pytest.LogCaptureFixture) -> None:
    client = H2Client(server.port, keep_body=False, track_frames=False)
    port = client.sock.getsockname()[1]
    sid = client.request("/big.bin")
    client.read_until(lambda: client.streams[sid].received > 1 << 20, timeout=5)
    # SO_LINGER 0: close() sends a TCP RST instead of a FIN.
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    record = _one_line_about(logs, port)
    assert "connection lost with 1 unfinished response" in record.getMessage()
    assert h2_get(server.port, "/fast").status == 200
    _no_errors(logs)
    # The server holds nothing of the dead connection.
    deadline = time.monotonic() + 2
    while len(server.app.server.connections) > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.app.server.connections) == 0


def test_client_closing_mid_response_without_reset(server: Any,
                                                   logs: pytest.LogCaptureFixture) -> None:
    """A plain close while a large response is being sent: the same one line."""
    client = H2Client(server.port, keep_body=False, track_frames=False)
    port = client.sock.getsockname()[1]
    sid = client.request("/big.bin")
    client.read_until(lambda: client.streams[sid].received > 1 << 20, timeout=5)
    client.close()
    record = _one_line_about(logs, port)
    assert "connection lost with 1 unfinished response" in record.getMessage()
    assert h2_get(server.port, "/fast").status == 200
    _no_errors(logs)


def test_no_session_tickets_are_issued(server: Any) -> None:
    with H2Client(server.port) as client:
        assert client.get("/fast", timeout=5).status == 200
        session = client.sock.session
        assert client.sock.version() == "TLSv1.3"
        # Tickets arrive after the handshake; the response above came later still.
        assert session is None or not session.has_ticket


@pytest.mark.parametrize("first", ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"])
def test_the_clients_tls13_suite_order_wins(server: Any, first: str) -> None:
    """The client picks among the AEAD suites (OpenSSL's server order would force
    AES-256-GCM, the slowest of them on a machine with AES instructions)."""
    h2load = need_tool("h2load")
    others = [s for s in ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
                          "TLS_CHACHA20_POLY1305_SHA256") if s != first]
    done = subprocess.run([h2load, "-n", "1", "--tls13-ciphers", ":".join([first, *others]),
                           f"https://127.0.0.1:{server.port}/"],
                          capture_output=True, text=True, timeout=30)
    assert f"Cipher: {first}" in done.stdout, done.stdout + done.stderr

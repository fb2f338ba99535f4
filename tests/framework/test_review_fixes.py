"""Private files, redirects from doubled slashes, unreadable files, empty writes, idle close."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import httpx

from hyper2web import App
from hyper2web.server.config import ConnectionConfig


def _client() -> httpx.Client:
    return httpx.Client(http2=True, verify=False, follow_redirects=False)


def test_key_files_under_the_root_are_never_served(serve_app, tmp_path: Path) -> None:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("home")
    (root / "server.key").write_text("SECRET")
    (root / "other-key.pem").write_text("SECRET")
    routes = root / "routes.py"
    routes.write_text("SECRET = 1\n")
    app = App(root=root)
    app.private_files.append(str(routes))
    running = serve_app(app)
    with _client() as client:
        for name in ("server.key", "other-key.pem", "routes.py"):
            response = client.get(f"{running.url}/{name}")
            assert response.status_code == 404, name
            assert b"SECRET" not in response.content


def test_the_certificate_pair_under_the_root_is_not_served(serve_app, tmp_path: Path,
                                                            cert_pair) -> None:
    root = tmp_path / "site"
    root.mkdir()
    cert, key = root / "localhost.crt.pem", root / "my.pem"
    cert.write_bytes(Path(cert_pair[0]).read_bytes())
    key.write_bytes(Path(cert_pair[1]).read_bytes())
    running = serve_app(root=root, certfile=cert, keyfile=key)
    with _client() as client:
        for name in ("localhost.crt.pem", "my.pem"):
            response = client.get(f"{running.url}/{name}")
            assert response.status_code == 404, name
            assert b"PRIVATE KEY" not in response.content


def test_doubled_slash_redirect_stays_on_this_host(serve_app, site: Path) -> None:
    running = serve_app(root=site)
    with _client() as client:
        response = client.get(f"{running.url}//docs")
    assert response.status_code == 301
    assert response.headers["location"] == "/docs/"


def test_unreadable_file_is_403(serve_app, site: Path, monkeypatch) -> None:
    import hyper2web.files

    locked = site / "locked.txt"
    locked.write_text("x")
    real_open = open

    def guarded_open(path, *args, **kwargs):  # the permission check is the OS's boundary
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(hyper2web.files, "open", guarded_open, raising=False)
    running = serve_app(root=site)
    with _client() as client:
        response = client.get(f"{running.url}/locked.txt")
        assert response.status_code == 403
        assert client.get(f"{running.url}/").status_code == 200


def test_empty_write_does_not_end_a_streamed_response(serve_app, site: Path) -> None:
    app = App(root=site)

    @app.get("stream")
    async def stream(request, response):
        await response.start()
        await response.write(b"")
        await response.write(b"still open")
        await response.end()

    running = serve_app(app)
    with _client() as client:
        response = client.get(f"{running.url}/stream")
    assert response.status_code == 200
    assert response.content == b"still open"


def test_idle_connection_gets_goaway(serve_app, site: Path) -> None:
    app = App(root=site)
    running = serve_app(app)
    assert running.app.server is not None
    running.app.server.config.idle_timeout = 0.3
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        started = time.monotonic()
        received = b""
        while time.monotonic() - started < 5:
            chunk = tls.recv(65536)
            if not chunk:
                break
            received += chunk
        # a GOAWAY frame (type 7) arrived and the server closed the connection
        assert b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" in received
        assert time.monotonic() - started < 3


def test_config_has_an_idle_timeout() -> None:
    assert ConnectionConfig().idle_timeout > 0

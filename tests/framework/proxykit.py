"""What the proxy tests share: a real stdlib ``http.server`` backend in a thread (its
handler answers by path, as a developer's backend would), and the check that the server
logged no traceback.

The backend's server object carries what the tests watch from the backend's side:
``first`` is set once the first piece of a chunked upload has arrived, ``cut`` once an
upload broke off before its end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest


class BackendServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.first = threading.Event()
        self.cut = threading.Event()

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def serve_backend(handler: type[BaseHTTPRequestHandler],
                  context: ssl.SSLContext | None = None) -> Iterator[BackendServer]:
    """``handler`` served on a free loopback port (over TLS with ``context``)."""
    server = BackendServer(handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class Backend(BaseHTTPRequestHandler):
    """JSON echo, redirects, hop-by-hop fields, slow and dying answers, uploads."""

    protocol_version = "HTTP/1.1"
    server: BackendServer

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              cookies: tuple[str, ...] = ()) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for cookie in cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        if path.endswith("/moved"):
            # Location and Content-Location as the query gives them.
            fields = dict(parse_qsl(urlsplit(self.path).query))
            self._send(302 if "location" in fields else 200, b"moved", fields)
        elif "echo" in self.path:
            seen = {"path": self.path, "port": self.server.server_address[1],
                    "headers": {k.lower(): v for k, v in self.headers.items()}}
            self._send(200, json.dumps(seen).encode(), {"content-type": "application/json"},
                       cookies=("a=1; Path=/", "b=2; Path=/"))
        elif path == "/api/redirect":
            self._send(302, b"", {"location": f"{self.server.url}/api/echo?x=1"})
        elif path == "/api/hop":
            # Fields meant for one hop only, in a chunked answer with a trailer.
            self.send_response(200)
            for name, value in [("connection", "x-private"), ("x-private", "secret"),
                                ("keep-alive", "timeout=5"), ("proxy-connection", "keep-alive"),
                                ("upgrade", "h2c"), ("te", "trailers"), ("trailer", "x-sum"),
                                ("transfer-encoding", "chunked"), ("x-public", "kept")]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n")
        elif path == "/api/slow-events":
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"d\r\ndata: first\n\n\r\n")
            self.wfile.flush()
            time.sleep(1.5)
            self.wfile.write(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
        elif path == "/api/sleep":
            time.sleep(2)
            self._send(200, b"late")
        elif path == "/api/dies":  # a content-length it never reaches
            self.send_response(200)
            self.send_header("content-length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        elif path == "/api/dies-chunked":  # a chunked body without its last chunk
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"3e8\r\n" + b"y" * 1000 + b"\r\n")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(404, b"backend 404")

    def do_POST(self) -> None:  # noqa: N802
        """Answers the size and SHA-256 of the body; ``first`` is set as its first piece
        arrives, ``cut`` when it breaks off."""
        digest, size = hashlib.sha256(), 0
        try:
            for piece in self._body():
                if not size:
                    self.server.first.set()
                digest.update(piece)
                size += len(piece)
        except ConnectionError:
            self.server.cut.set()
            self.close_connection = True
            return
        self._send(200, json.dumps({"size": size, "sha256": digest.hexdigest(),
                                    "path": self.path}).encode(),
                   {"content-type": "application/json"})

    def _body(self) -> Iterator[bytes]:
        length = self.headers.get("content-length")
        if length is not None:
            left = int(length)
            while left:
                piece = self.rfile.read1(min(left, 65536))
                if not piece:
                    raise ConnectionError("closed mid-body")
                left -= len(piece)
                yield piece
            return
        while True:  # chunked
            line = self.rfile.readline()
            if not line.strip():
                raise ConnectionError("closed mid-body")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return
            data = self.rfile.read(size)
            if len(data) < size:
                raise ConnectionError("closed mid-body")
            self.rfile.readline()
            yield data


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """No logger of the process (the server's, curio's, anyone's) logged a traceback."""
    bad = [record for record in caplog.records
           if record.exc_info or "Traceback" in record.getMessage()]
    assert not bad, [record.getMessage() for record in bad]

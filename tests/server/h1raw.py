"""A raw HTTP/1.1 client over TLS for protocol tests: bytes exactly as written, responses
parsed by a small reader of its own (so pipelined answers, bad framing and early closes can
be seen as they are on the wire). Every wait is bounded by a timeout."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

from tests.server.h2client import client_context


@dataclass
class H1Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class H1Raw:
    """One TLS connection offering ALPN ``http/1.1`` (or ``alpn``), or plain TCP."""

    def __init__(self, port: int, *, alpn: tuple[str, ...] | None = ("http/1.1",),
                 tls: bool = True, timeout: float = 10.0) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = client_context(alpn or ())
            if alpn is None:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.sock: socket.socket = ctx.wrap_socket(raw, server_hostname="localhost")
        else:
            self.sock = raw
        self.buffer = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError("connection closed")
        self.buffer += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def response(self, head_only: bool = False) -> H1Response:
        """The next response; informational (1xx) ones are returned too."""
        status_line = self._line().decode("latin-1")
        _, status, *reason = status_line.split(" ", 2)
        result = H1Response(int(status), reason[0] if reason else "")
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            result.headers.append((name.strip().lower(), value.strip()))
        if head_only or result.status < 200 or result.status in (204, 304):
            return result
        length = result.header("content-length")
        if result.header("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exactly(size)
                self._line()
            result.body = body
        elif length is not None:
            result.body = self._exactly(int(length))
        else:
            while not self.eof:
                try:
                    self._fill()
                except EOFError:
                    break
            result.body, self.buffer = self.buffer, b""
        return result

    def closed(self) -> bool:
        """True once the server has closed the connection (and nothing is left unread)."""
        if self.buffer:
            return False
        try:
            self._fill()
        except (EOFError, OSError):
            return True
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> H1Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

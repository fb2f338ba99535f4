"""The connection driver with a socket of its own making: what it writes, and whether it
shuts its side and lingers before closing after an error report (so the kernel's reset for
unread bytes cannot destroy the report on its way)."""

from __future__ import annotations

from typing import Any

import pytest

from hyper2web._curio import curio
from hyper2web.server.config import ConnectionConfig
from hyper2web.server.connection import Connection
from hyper2web.server.protocol import H2Protocol, H11Protocol


class Sock:
    """Gives ``chunks`` to ``recv``, then stays quiet; records what is sent and shut."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent = b""
        self.shut = False

    async def recv(self, size: int) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        await curio.sleep(5)
        return b""

    async def sendall(self, data: bytes) -> None:
        self.sent += data

    async def shutdown(self, how: int) -> None:
        self.shut = True


async def _handler(request: Any, response: Any) -> None:
    await response.send(b"ok")


def _serve(protocol: type, chunks: list[bytes]) -> Sock:
    sock = Sock(chunks)
    conn = Connection(sock, ("127.0.0.1", 1), _handler, ConnectionConfig(), protocol)

    async def main() -> None:
        async with curio.timeout_after(3):
            await conn.run()

    curio.run(main)
    return sock


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nine\r\n\r\n",
], ids=["cl-and-te", "bad-length"])
def test_http11_400_is_sent_then_the_connection_lingers(head: bytes) -> None:
    sock = _serve(H11Protocol, [head + b"unread body"])
    assert sock.sent.startswith(b"HTTP/1.1 400 ")
    assert sock.shut


def test_http2_protocol_error_goaway_is_sent_then_the_connection_lingers() -> None:
    sock = _serve(H2Protocol, [b"GET / HTTP/1.1\r\n\r\n" + b"x" * 64])
    goaway = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"  # a GOAWAY frame's header, stream 0
    assert goaway in sock.sent
    assert sock.shut


def test_a_request_answered_in_keep_alive_needs_no_linger() -> None:
    sock = _serve(H11Protocol, [b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
    assert sock.sent.startswith(b"HTTP/1.1 200 ") and sock.sent.endswith(b"ok")
    assert not sock.shut

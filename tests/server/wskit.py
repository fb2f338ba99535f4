"""Raw WebSocket clients for the fault tests: ones that read nothing, answer no ping, or
vanish. The ``websockets`` package does all of that right, so these speak the frames
themselves with wsproto: over HTTP/2 on the raw h2 client, over HTTP/1.1 on a TLS socket
whose receive buffer can be made small."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import time
from typing import Any

import pytest
import websockets
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Event

from tests.server.h2client import H2Client, client_context


def ws_context() -> ssl.SSLContext:
    """For the ``websockets`` package, which speaks HTTP/1.1."""
    return client_context(["http/1.1"])


def ws_url(server: Any, path: str) -> str:
    return f"wss://127.0.0.1:{server.port}/{path}"


def h2_open(client: H2Client, path: str) -> int:
    """An RFC 8441 extended CONNECT for a WebSocket; the stream id, once answered."""
    sid = client.request(path, "CONNECT", end_stream=False,
                         headers=[(":protocol", "websocket"), ("sec-websocket-version", "13")])
    client.read_until(lambda: client.streams[sid].status is not None)
    return sid


class H2Frames:
    """The WebSocket events the server sent on one HTTP/2 stream, decoded as they come."""

    def __init__(self, client: H2Client, sid: int) -> None:
        self.client = client
        self.sid = sid
        self.framing = Connection(ConnectionType.CLIENT)
        self.events: list[Event] = []

    def update(self) -> list[Event]:
        stream = self.client.streams[self.sid]
        while stream.chunks:
            self.framing.receive_data(stream.chunks.pop(0))
            self.events.extend(self.framing.events())
        return self.events

    def closes(self) -> list[int]:
        return [e.code for e in self.update() if isinstance(e, CloseConnection)]


class H1WebSocket:
    """An HTTP/1.1 Upgrade done by hand; ``rcvbuf`` shrinks the socket's receive buffer
    (set before connecting, so the TCP window is small from the start)."""

    def __init__(self, port: int, path: str, rcvbuf: int | None = None,
                 timeout: float = 10.0) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        raw.connect(("127.0.0.1", port))
        self.sock = client_context(["http/1.1"]).wrap_socket(raw, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /{path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {head!r}")
            head += chunk
        head, _, self.leftover = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101 "):
            raise ConnectionError(f"not upgraded: {head!r}")
        self.framing = Connection(ConnectionType.CLIENT)
        self.framing.receive_data(self.leftover)
        self.events: list[Event] = list(self.framing.events())

    def send(self, event: Event) -> None:
        self.sock.sendall(self.framing.send(event))

    def read_until(self, condition: Any, timeout: float = 5.0) -> list[Event]:
        """Read until ``condition(events)`` holds; ``TimeoutError`` past ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"condition not met within {timeout} s: {self.events}")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            self.framing.receive_data(data or None)
            self.events.extend(self.framing.events())
            if not data:
                break
        return self.events

    def vanish(self) -> None:
        """Close the TCP connection: no close frame, no TLS close_notify."""
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


def limit_seen(server: Any, limit: int) -> tuple[str, int]:
    """A message of ``limit`` bytes is taken; one byte more closes the socket: its code."""
    async def talk() -> tuple[str, int]:
        async with websockets.connect(ws_url(server, "size"), ssl=ws_context(),
                                      max_size=None) as ws:
            await ws.send(b"x" * limit)
            taken = await asyncio.wait_for(ws.recv(), 10)
            await ws.send(b"x" * (limit + 1))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return taken, closed.value.rcvd.code

    return asyncio.run(asyncio.wait_for(talk(), 30))

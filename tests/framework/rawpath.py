"""A tiny HTTP/2 client that sends a ``:path`` exactly as given.

httpx (like browsers) normalizes ``..`` and ``.`` segments before sending, so a traversal
attempt never reaches the server through it. This client writes the header block with the
``h2`` library directly, with outbound header normalization and validation turned off.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events

TIMEOUT = 10.0


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(port: int, path: str, method: str = "GET", *, host: str = "127.0.0.1",
                headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> RawResponse:
    """One request on a fresh connection; returns once the response stream has ended."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
        assert sock.selected_alpn_protocol() == "h2"
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_outbound_headers=False,
                                           normalize_outbound_headers=False)
        conn = h2.connection.H2Connection(config=config)
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        block = [(":method", method), (":scheme", "https"), (":authority", "localhost"),
                 (":path", path), *headers]
        conn.send_headers(sid, block, end_stream=not body)
        if body:
            conn.send_data(sid, body, end_stream=True)
        sock.sendall(conn.data_to_send())

        status = 0
        got: dict[str, str] = {}
        chunks: list[bytes] = []
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"connection closed before the response to {path!r}")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    for name, value in event.headers:
                        if name == ":status":
                            status = int(value)
                        else:
                            got[name] = value
                elif isinstance(event, h2.events.DataReceived):
                    chunks.append(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == sid:
                    raise ConnectionError(f"stream reset ({event.error_code}) for {path!r}")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise ConnectionError(f"GOAWAY ({event.error_code}) for {path!r}")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
                    return RawResponse(status, got, b"".join(chunks))
            pending = conn.data_to_send()
            if pending:
                sock.sendall(pending)

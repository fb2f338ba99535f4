"""A small blocking HTTPS + HTTP/2 client: one GET, or one connection left open and idle.

Used by ``run.py`` (readiness, content checks, start-up time) and ``idle_connections.py``.
Certificates are not verified: every server in the benchmark uses the same self-signed one.
"""

from __future__ import annotations

import socket
import ssl

import h2.config
import h2.connection
import h2.events

HOST = "127.0.0.1"


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    return context


class Connection:
    """One TLS + HTTP/2 connection: preface and SETTINGS sent, the server's SETTINGS read."""

    def __init__(self, port: int, context: ssl.SSLContext | None = None,
                 timeout: float = 10.0, sock: socket.socket | None = None) -> None:
        if sock is None:
            sock = socket.create_connection((HOST, port), timeout=timeout)
        sock.settimeout(timeout)
        self.sock = (context or tls_context()).wrap_socket(sock, server_hostname="localhost")
        if self.sock.selected_alpn_protocol() != "h2":
            self.sock.close()
            raise ConnectionError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2")
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())
        self._wait_for(lambda event: isinstance(event, h2.events.RemoteSettingsChanged))

    def _wait_for(self, done) -> list[h2.events.Event]:
        seen: list[h2.events.Event] = []
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            events = self.h2.receive_data(data)
            outgoing = self.h2.data_to_send()
            if outgoing:
                self.sock.sendall(outgoing)
            for event in events:
                seen.append(event)
                if isinstance(event, h2.events.ConnectionTerminated):
                    raise ConnectionError(f"GOAWAY {event.error_code!r}")
                if done(event):
                    return seen

    def get(self, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
        """GET ``path``: (status, response headers, body)."""
        stream_id = self.h2.get_next_available_stream_id()
        request = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
                   (":path", path), *(headers or {}).items()]
        self.h2.send_headers(stream_id, request, end_stream=True)
        self.sock.sendall(self.h2.data_to_send())
        status, response_headers, body = 0, {}, bytearray()

        def ended(event: h2.events.Event) -> bool:
            nonlocal status
            if getattr(event, "stream_id", None) != stream_id:
                return False
            if isinstance(event, h2.events.ResponseReceived):
                for name, value in event.headers:
                    name = name.decode() if isinstance(name, bytes) else name
                    value = value.decode() if isinstance(value, bytes) else value
                    if name == ":status":
                        status = int(value)
                    else:
                        response_headers[name] = value
            elif isinstance(event, h2.events.DataReceived):
                body.extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.StreamReset):
                raise ConnectionError(f"stream reset: {event.error_code!r}")
            return isinstance(event, h2.events.StreamEnded)

        self._wait_for(ended)
        return status, response_headers, bytes(body)

    def ping(self) -> None:
        """Send PING and wait for its acknowledgement."""
        self.h2.ping(b"h2wbench")
        self.sock.sendall(self.h2.data_to_send())
        self._wait_for(lambda event: isinstance(event, h2.events.PingAckReceived))

    def close(self) -> None:
        try:
            self.h2.close_connection()
            self.sock.sendall(self.h2.data_to_send())
        except OSError:
            pass
        self.sock.close()


def get(port: int, path: str, headers: dict[str, str] | None = None,
        timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection."""
    connection = Connection(port, timeout=timeout)
    try:
        return connection.get(path, headers)
    finally:
        connection.close()

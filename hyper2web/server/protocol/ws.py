"""WebSocket sessions, sans-IO, on wsproto: bytes of a tunnel in, messages out.

A WebSocket rides on a tunnel stream: over HTTP/1.1 the connection itself after ``101
Switching Protocols`` (RFC 6455), over HTTP/2 one extended CONNECT stream (RFC 8441). The
handshake is the HTTP exchange (``handshake_error`` checks the request, ``accept_headers``
builds the answer); after it, ``WSSession`` turns the tunnel's bytes into whole messages
and messages into frames. wsproto does the framing, masking rules, UTF-8 checks, ping and
close handshakes; this class adds the message size limit (1009) and message assembly.
"""

from __future__ import annotations

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError, generate_accept_token

MAX_MESSAGE = 1024 * 1024  # bytes of one received message; more closes with 1009
NORMAL, GOING_AWAY, PROTOCOL_ERROR, TOO_BIG, INTERNAL = 1000, 1001, 1002, 1009, 1011


class Closed:
    """The session ended: the peer closed (``code``, ``reason``) or broke the protocol."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def handshake_error(headers: dict[str, str]) -> str | None:
    """Why a tunnel request cannot become a WebSocket, or None (RFC 6455 4.2.1, 8441 5)."""
    if headers.get(":protocol") != "websocket":
        return f"unknown protocol {headers.get(':protocol')!r}"
    if headers.get("sec-websocket-version") != "13":
        return "sec-websocket-version must be 13"
    if headers.get("sec-websocket-key") is None and headers.get("upgrade") is not None:
        return "no sec-websocket-key"
    return None


def offered_subprotocols(headers: dict[str, str]) -> list[str]:
    value = headers.get("sec-websocket-protocol", "")
    return [item.strip() for item in value.split(",") if item.strip()]


def accept_headers(headers: dict[str, str], subprotocol: str | None) -> list[tuple[str, str]]:
    """The fields of the answer that opens the session (101 over HTTP/1.1, 200 over h2)."""
    fields: list[tuple[str, str]] = []
    key = headers.get("sec-websocket-key")
    if headers.get("upgrade") is not None and key is not None:  # HTTP/1.1 Upgrade
        fields += [("upgrade", "websocket"), ("connection", "Upgrade"),
                   ("sec-websocket-accept", generate_accept_token(key.encode()).decode())]
    if subprotocol is not None:
        fields.append(("sec-websocket-protocol", subprotocol))
    return fields


class WSSession:
    """The frames of one WebSocket, server side; the handshake is done already."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._ws = Connection(ConnectionType.SERVER)
        self.max_message = max_message
        self._parts: list[bytes | str] = []
        self._size = 0
        self._out: list[bytes] = []
        self.awaiting_pong = False  # a ping went out and no pong has come back yet

    @property
    def open(self) -> bool:
        return self._ws.state is ConnectionState.OPEN

    def receive(self, data: bytes | None) -> list[str | bytes | Closed]:
        """Whole messages in ``data`` (None: the tunnel ended), and ``Closed`` last."""
        out: list[str | bytes | Closed] = []
        try:
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, Message):
                    message = self._assemble(event)
                    if isinstance(message, Closed):
                        out.append(message)
                        break
                    if message is not None:
                        out.append(message)
                elif isinstance(event, Ping):
                    self._send(event.response())
                elif isinstance(event, Pong):
                    self.awaiting_pong = False
                elif isinstance(event, CloseConnection):
                    if self._ws.state is ConnectionState.REMOTE_CLOSING:
                        self._send(event.response())
                    out.append(Closed(event.code, event.reason or ""))
                    break
        except RemoteProtocolError as exc:
            code = int(exc.event_hint.code) if isinstance(exc.event_hint, CloseConnection) \
                else PROTOCOL_ERROR
            out.append(self._fail(code, str(exc)))
        return out

    def _assemble(self, event: Message) -> str | bytes | Closed | None:
        self._size += len(event.data)
        if self._size > self.max_message:
            return self._fail(TOO_BIG, f"message over {self.max_message} bytes")
        self._parts.append(event.data)
        if not event.message_finished:
            return None
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(event, TextMessage):
            return "".join(parts)  # type: ignore[arg-type]
        return b"".join(parts)  # type: ignore[arg-type]

    def _fail(self, code: int, why: str) -> Closed:
        """Close with ``code`` because of the peer, and report it."""
        self.close(code, why[:120])
        return Closed(code, why)

    def _send(self, event: object) -> None:
        try:
            self._out.append(self._ws.send(event))  # type: ignore[arg-type]
        except LocalProtocolError:
            pass  # the session is closing: nothing more may be sent

    def message(self, data: str | bytes) -> None:
        """Queue one message: text for ``str``, binary for ``bytes``."""
        if isinstance(data, str):
            self._send(TextMessage(data=data))
        else:
            self._send(BytesMessage(data=bytes(data)))

    def ping(self, payload: bytes = b"") -> None:
        self._send(Ping(payload=payload))
        self.awaiting_pong = True

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start (or answer) the closing handshake, once."""
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._send(CloseConnection(code=code, reason=reason or None))

    @property
    def closed(self) -> bool:
        """Both close frames have been exchanged, or ours went after the peer's."""
        return self._ws.state in (ConnectionState.CLOSED, ConnectionState.LOCAL_CLOSING)

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data


__all__ = ["Closed", "WSSession", "accept_headers", "handshake_error",
           "offered_subprotocols"]

"""A small blocking HTTP/2 client: TLS + ALPN h2 + ``h2`` (client side). The one client of
the protocol tests and of the benchmark scripts (bench/ imports it as
``tests.server.h2client``; see bench/repo_path.py).

It records what the server sends at two levels: the ``h2`` events (per-stream responses,
GOAWAY, PING ACKs) and, independently of ``h2``'s state machine, every frame seen on the
wire (``frames``, with decoded header blocks in ``wire_headers``), so a test can check
frames that ``h2`` would hide or refuse: DATA that arrives on a stream the client has
already reset, or responses that finish after a GOAWAY (the client's ``h2`` accepts no
frame once it has seen one).

Raw frames built with ``hyperframe`` can be written with ``send_frame`` to provoke protocol
errors that ``h2`` would refuse to produce. Every wait is bounded by a timeout.

For the benchmarks: ``H2Client(..., handshake=True)`` is a connection whose greeting is
done (ALPN h2 checked, the server's SETTINGS read), ``ping(wait=True)`` a liveness check,
``close(goaway=True)`` a polite close; ``sock=`` takes a TCP connection made beforehand.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
from h2.frame_buffer import FrameBuffer
from hyperframe.frame import Frame, HeadersFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_TIMEOUT = 10.0
HOST = "127.0.0.1"  # every server under test or benchmark listens on loopback


def client_context(alpn: Iterable[str] = ("h2",)) -> ssl.SSLContext:
    """A client TLS context that trusts any certificate (the test certificate is self-signed)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def tls_connect(port: int, host: str = HOST, alpn: Iterable[str] = ("h2",),
                timeout: float = DEFAULT_TIMEOUT, *, context: ssl.SSLContext | None = None,
                sock: socket.socket | None = None) -> ssl.SSLSocket:
    """TLS to ``host:port``, or over ``sock`` (connected already); ``context`` (one made
    once, as a benchmark reuses it) replaces ``client_context(alpn)``."""
    raw = sock if sock is not None else socket.create_connection((host, port), timeout=timeout)
    try:
        raw.settimeout(timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return (context or client_context(alpn)).wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


@dataclass
class StreamResult:
    """What arrived on one stream."""

    stream_id: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    received: int = 0
    ended: bool = False
    reset: int | None = None  # error code of a RST_STREAM from the server
    first_byte_at: float | None = None
    ended_at: float | None = None
    informational: list[list[tuple[str, str]]] = field(default_factory=list)  # 1xx heads
    order: list[str] = field(default_factory=list)  # "informational", "response", "data"

    @property
    def status(self) -> int | None:
        for name, value in self.headers:
            if name == ":status":
                return int(value)
        return None

    def header(self, name: str) -> str | None:
        """The field's value; repeated fields joined with ``, ``."""
        values = [value for key, value in self.headers if key == name]
        return ", ".join(values) if values else None

    def header_names(self) -> list[str]:
        return [key for key, _ in self.headers]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


@dataclass
class WireFrame:
    type: int
    stream_id: int
    length: int
    flags: frozenset[str]
    frame: Frame


class H2Client:
    """One HTTP/2 connection over TLS to ``host:port``.

    ``auto_ack`` acknowledges received DATA at once (the peer's window reopens as a normal
    client's would); with ``auto_ack=False`` the test decides when to call ``ack``.
    ``keep_body=False`` keeps no DATA (``on_data`` can hash it): for very large downloads.
    With ``strict`` (the default) a frame the client's ``h2`` rejects raises at once: the
    server broke the protocol. Tests that send raw frames may turn it off.
    ``context`` and ``sock`` go to ``tls_connect``; ``handshake`` runs ``handshake()``.
    """

    def __init__(self, port: int, host: str = HOST, *,
                 settings: dict[int, int] | None = None, auto_ack: bool = True,
                 keep_body: bool = True, track_frames: bool = True,
                 timeout: float = DEFAULT_TIMEOUT, preface: bool = True,
                 strict: bool = True, normalize: bool = True,
                 context: ssl.SSLContext | None = None, sock: socket.socket | None = None,
                 handshake: bool = False) -> None:
        self.sock = tls_connect(port, host, timeout=timeout, context=context, sock=sock)
        self.timeout = timeout
        self.auto_ack = auto_ack
        self.keep_body = keep_body
        self.track_frames = track_frames
        # ``normalize=False`` sends a ``:path`` exactly as given (``..`` segments included),
        # as httpx and browsers never do.
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                             validate_outbound_headers=normalize,
                                             normalize_outbound_headers=normalize)
        )
        self.streams: dict[int, StreamResult] = {}
        self.sent: dict[int, int] = {}  # body bytes sent per stream
        self.events: list[h2.events.Event] = []
        self.frames: list[WireFrame] = []
        self._wire = FrameBuffer(server=False)
        self._wire.max_frame_size = 2**24 - 1
        self._wire_decoder = hpack.Decoder()
        self.wire_headers: dict[int, list[tuple[str, str]]] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.ping_acks: list[bytes] = []
        self.eof = False
        self.reads = 0
        self.strict = strict
        self.protocol_errors: list[h2.exceptions.ProtocolError] = []
        self.on_data: Callable[[h2.events.DataReceived], None] | None = None
        if preface:
            self.conn.initiate_connection()
            if settings:
                self.conn.update_settings(settings)
            self.flush()
        if handshake:
            try:
                self.handshake()
            except BaseException:
                self.close()
                raise

    def handshake(self, timeout: float | None = None) -> None:
        """Check that ALPN chose h2 and read until the server's SETTINGS arrived;
        ``ConnectionError`` otherwise (another protocol, GOAWAY, or the connection closed)."""
        chosen = self.sock.selected_alpn_protocol()
        if chosen != "h2":
            raise ConnectionError(f"ALPN chose {chosen!r}, not h2")

        def greeted() -> bool:
            if self.goaway is not None:
                raise ConnectionError(f"GOAWAY {self.goaway.error_code!r}")
            return any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.events)

        self.read_until(greeted, timeout)

    # -- sending -------------------------------------------------------------------------

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, frame: Frame) -> None:
        """Write a hand-built frame, bypassing the client's ``h2`` state machine."""
        self.flush()
        self.sock.sendall(frame.serialize())

    def request(self, path: str, method: str = "GET", *,
                headers: Iterable[tuple[str, str]] = (), body: bytes | None = None,
                end_stream: bool = True, flush: bool = True) -> int:
        """Open a stream; ``body`` is sent at once as far as the windows allow."""
        sid = self.conn.get_next_available_stream_id()
        block = [(":method", method), (":scheme", "https"), (":authority", "localhost"),
                 (":path", path), *headers]
        self.streams[sid] = StreamResult(sid)
        no_body = body is None or body == b""
        self.conn.send_headers(sid, block, end_stream=end_stream and no_body)
        if flush:
            self.flush()
        if body:
            self.send_body(sid, body, end_stream=end_stream)
        return sid

    def send_body(self, sid: int, body: bytes, end_stream: bool = True) -> None:
        """Send ``body`` on ``sid`` respecting the server's windows, reading while blocked."""
        view = memoryview(body)
        deadline = time.monotonic() + self.timeout
        while view:
            window = self.conn.local_flow_control_window(sid)
            if window < 1:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"stream {sid}: send window stayed closed")
                self.flush()
                if self.streams[sid].done or self.goaway is not None or self.eof:
                    return
                self._read_once()
                continue
            size = min(window, self.conn.max_outbound_frame_size, len(view))
            try:
                self.conn.send_data(sid, bytes(view[:size]),
                                    end_stream=end_stream and size == len(view))
            except h2.exceptions.StreamClosedError:
                return  # the server reset the stream: the rest of the body is not wanted
            self.sent[sid] = self.sent.get(sid, 0) + size
            view = view[size:]
            self.flush()
        if end_stream and not body:
            self.conn.end_stream(sid)
            self.flush()

    def ping(self, opaque: bytes = b"12345678", *, wait: bool = False,
             timeout: float | None = None) -> None:
        """Send a PING; with ``wait``, read until its ACK arrives (``ConnectionError`` on a
        GOAWAY or a closed connection, ``TimeoutError`` after ``timeout``)."""
        acks = len(self.ping_acks)
        self.conn.ping(opaque)
        self.flush()
        if not wait:
            return

        def answered() -> bool:
            if self.goaway is not None:
                raise ConnectionError(f"GOAWAY {self.goaway.error_code!r}")
            return opaque in self.ping_acks[acks:]

        self.read_until(answered, timeout)

    def reset(self, sid: int, code: int = 8) -> None:
        self.conn.reset_stream(sid, code)
        self.flush()

    def ack(self, sid: int, size: int) -> None:
        try:
            self.conn.acknowledge_received_data(size, sid)
        except h2.exceptions.StreamClosedError:
            pass
        self.flush()

    def close(self, goaway: bool = False) -> None:
        """Close the socket; with ``goaway``, say GOAWAY (NO_ERROR) first, as a client
        leaving politely does."""
        if goaway:
            try:
                self.conn.close_connection()
                self.flush()
            except (OSError, h2.exceptions.ProtocolError):
                pass
        try:
            self.sock.close()
        except OSError:
            pass

    # -- receiving -----------------------------------------------------------------------

    def _read_once(self, timeout: float | None = None) -> None:
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            data = b""
        if not data:
            self.eof = True
            return
        self.reads += 1
        if self.track_frames:
            self._wire.add_data(data)
            for frame in self._wire:
                self.frames.append(WireFrame(frame.type, frame.stream_id,
                                             getattr(frame, "body_len", 0),
                                             frozenset(frame.flags), frame))
                if isinstance(frame, HeadersFrame):
                    # Every block must pass the decoder, in order, to keep its table right.
                    self.wire_headers.setdefault(frame.stream_id, []).extend(
                        self._wire_decoder.decode(frame.data))
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # The server broke the protocol, or this client did on purpose with raw frames.
            self.protocol_errors.append(exc)
            if self.strict:
                raise
            return
        for event in events:
            self._on_event(event)
        self.flush()

    def _on_event(self, event: h2.events.Event) -> None:
        self.events.append(event)
        now = time.monotonic()
        if isinstance(event, h2.events.InformationalResponseReceived):
            stream = self.streams.setdefault(event.stream_id, StreamResult(event.stream_id))
            stream.informational.append(list(event.headers))
            stream.order.append("informational")
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.setdefault(event.stream_id, StreamResult(event.stream_id))
            stream.headers.extend(event.headers)
            stream.first_byte_at = stream.first_byte_at or now
            stream.order.append("response")
        elif isinstance(event, h2.events.TrailersReceived):
            self.streams[event.stream_id].headers.extend(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.setdefault(event.stream_id, StreamResult(event.stream_id))
            stream.received += len(event.data)
            if not stream.order or stream.order[-1] != "data":
                stream.order.append("data")
            if self.keep_body:
                stream.chunks.append(event.data)
            if self.on_data is not None:
                self.on_data(event)
            if self.auto_ack and event.flow_controlled_length:
                try:
                    self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                        event.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.setdefault(event.stream_id, StreamResult(event.stream_id))
            stream.ended = True
            stream.ended_at = now
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.setdefault(event.stream_id, StreamResult(event.stream_id))
            stream.reset = int(event.error_code)
            stream.ended_at = stream.ended_at or now
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.PingAckReceived):
            self.ping_acks.append(event.ping_data)

    def read_until(self, condition: Callable[[], bool], timeout: float | None = None) -> None:
        """Read until ``condition()`` holds; ``TimeoutError`` after ``timeout`` seconds."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"condition not met within {limit} s")
            if self.eof:
                raise ConnectionError("server closed the connection before the condition held")
            try:
                self._read_once(timeout=left)
            except TimeoutError:
                raise TimeoutError(f"condition not met within {limit} s") from None

    def read_to_eof(self, timeout: float | None = None) -> None:
        """Read until the server closes the connection."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"server kept the connection open for {limit} s")
            try:
                self._read_once(timeout=left)
            except TimeoutError:
                raise TimeoutError(f"server kept the connection open for {limit} s") from None

    def wait(self, sid: int, timeout: float | None = None) -> StreamResult:
        """Read until stream ``sid`` ends or is reset."""
        stream = self.streams[sid]
        self.read_until(lambda: stream.done, timeout)
        return stream

    def get(self, path: str, timeout: float | None = None, **kwargs: object) -> StreamResult:
        return self.wait(self.request(path, **kwargs), timeout)  # type: ignore[arg-type]

    def fetch(self, path: str, method: str = "GET",
              headers: Iterable[tuple[str, str]] = (), body: bytes | None = None
              ) -> StreamResult:
        """One request, read until its response ended."""
        return self.wait(self.request(path, method, headers=headers, body=body))

    def batch(self, paths: list[str]) -> list[StreamResult]:
        """GET every path, all requests in one write, so the server reads them together."""
        ids = [self.request(path, flush=False) for path in paths]
        self.flush()
        return [self.wait(sid) for sid in ids]

    def frames_of(self, frame_type: int) -> list[WireFrame]:
        return [f for f in self.frames if f.type == frame_type]

    def wire_done(self, sid: int) -> bool:
        """Stream ``sid`` ended (END_STREAM) or was reset, judged from the wire alone."""
        return any(f.stream_id == sid and (f.type == 3 or "END_STREAM" in f.flags)
                   for f in self.frames)

    def wire_body(self, sid: int) -> bytes:
        return b"".join(f.frame.data for f in self.frames if f.type == 0 and f.stream_id == sid)

    def wire_resets(self, sid: int) -> list[int]:
        return [f.frame.error_code for f in self.frames if f.type == 3 and f.stream_id == sid]

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    """A header block from a fresh encoder: for raw HEADERS frames that bypass ``h2``."""
    return hpack.Encoder().encode(list(headers))


def h2_get(port: int, path: str = "/", host: str = HOST,
           timeout: float = DEFAULT_TIMEOUT,
           headers: Iterable[tuple[str, str]] = ()) -> StreamResult:
    """One GET on a fresh connection: the 'server still serves' probe."""
    with H2Client(port, host, timeout=timeout) as client:
        return client.get(path, timeout=timeout, headers=headers)


def h2_request(port: int, path: str, method: str = "GET",
               headers: Iterable[tuple[str, str]] = (), *, host: str = HOST,
               body: bytes | None = None, normalize: bool = True) -> StreamResult:
    """One request on a fresh connection (``normalize=False``: the path exactly as given)."""
    with H2Client(port, host, normalize=normalize) as client:
        return client.fetch(path, method, headers, body)


SETTINGS = h2.settings.SettingCodes

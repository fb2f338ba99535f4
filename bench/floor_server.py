"""A floor server for bench/floors.py: the least a server on curio and Python's ssl does
to answer a scenario, so the figure it reaches is a ceiling for any server built on them.

    python bench/floor_server.py PORT CERT KEY BODY [--libs]

TLS is set up as hyper2web sets it up (``make_ssl_context``). Every request, whatever its
path, gets 200 with the bytes of BODY (one fixed answer, as nginx's ``return 200``), over
HTTP/1.1 or HTTP/2 as ALPN chose. One curio task a connection, accepted by
``curio.network.tcp_server``; reads wait and large writes are corked as hyper2web's are.

- HTTP/1.1 without ``--libs``: a request is its head up to the blank line; no parsing.
- HTTP/1.1 with ``--libs``: the h11 library as its documentation uses it (one
  ``h11.Connection``, ``next_event``, ``send``, ``start_next_cycle``).
- HTTP/2 without ``--libs``: frames are cut by their 9-byte headers and nothing else is
  read. A HEADERS frame gets a header block made once (``:status 200`` and the length,
  from HPACK's static table, so the client's table never changes) and the body in DATA
  frames of 16 KiB, framed once (only the stream id is written per answer); SETTINGS and
  PING get their ACKs. No HPACK decoding, no stream states, no flow control (h2load's
  windows are 1 GiB).
- HTTP/2 with ``--libs``: the h2 library as its documentation uses it (one
  ``H2Connection``, ``receive_data``, ``send_headers``, ``send_data`` within the windows).

With ``--libs`` the figure is the floor of a server that leaves each protocol to its
library.
"""

from __future__ import annotations

import socket
import ssl
import struct
import sys
from typing import Any

import curio
import repo_path  # noqa: F401 - the repository root on sys.path
from curio import network, traps

from hyper2web.server.tls import make_ssl_context

FRAME = 16_384
CORK_ABOVE = 64 * 1024
HEADER = struct.Struct(">HBBBL")  # a frame header: length (3 bytes as H + B), type, flags, id
STREAM_ID = struct.Struct(">L")
DATA, HEADERS, SETTINGS, PING = 0x0, 0x1, 0x4, 0x6
ACK, END_STREAM, END_HEADERS = 0x1, 0x1, 0x4


async def receive(sock: curio.io.Socket, size: int) -> bytes:
    """``sock.recv``, waiting after the ``except`` clause rather than inside it (as
    hyper2web's ``ServerSocket`` does): a connection asleep in curio's own ``recv`` keeps
    the would-block error and its traceback, about 1 KB, which would lift the S7 floor."""
    raw = sock._socket
    while True:
        try:
            return raw.recv(size)
        except (BlockingIOError, ssl.SSLWantReadError):
            wait = traps._read_wait
        except ssl.SSLWantWriteError:
            wait = traps._write_wait
        await wait(raw)


async def send(sock: curio.io.Socket, data: bytes | bytearray) -> None:
    """``sock.sendall``, corked (``TCP_CORK``) while a large write lasts, as hyper2web's
    writes are: OpenSSL's 16 KB records then leave as full segments."""
    if len(data) <= CORK_ABOVE:
        await sock.sendall(data)
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    try:
        await sock.sendall(data)
    finally:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    size = len(payload)
    return HEADER.pack(size >> 8, size & 0xFF, kind, flags, stream) + payload


class RawAnswer:
    """The canned HTTP/2 answer, framed once for stream 0: each request has its stream id
    written into the frame headers in place, so a large body is never copied again."""

    def __init__(self, body: bytes) -> None:
        length = str(len(body)).encode()
        # 0x88 = indexed :status 200; 0x0f 0x0d = content-length (static 28), not indexed
        block = b"\x88\x0f\x0d" + bytes([len(length)]) + length
        pieces = [body[i:i + FRAME] for i in range(0, len(body), FRAME)] or [b""]
        parts = [frame(HEADERS, END_HEADERS, 0, block)]
        parts += [frame(DATA, END_STREAM if number == len(pieces) - 1 else 0, 0, piece)
                  for number, piece in enumerate(pieces)]
        self.offsets = [sum(map(len, parts[:n])) + 5 for n in range(len(parts))]
        self.framed = bytearray(b"".join(parts))
        self.large = len(self.framed) > 65_536

    def copy(self) -> RawAnswer:
        """The same answer in a buffer of its own: a connection writes its stream ids into
        it while another connection's write of its own copy may still be waiting."""
        twin = object.__new__(RawAnswer)
        twin.offsets, twin.framed, twin.large = self.offsets, bytearray(self.framed), self.large
        return twin

    def for_stream(self, stream: int) -> bytearray:
        """The framed answer, now for ``stream``: valid until the next call."""
        for offset in self.offsets:
            STREAM_ID.pack_into(self.framed, offset, stream)
        return self.framed


async def serve_raw_h2(sock: curio.io.Socket, answer: RawAnswer) -> None:
    await send(sock, frame(SETTINGS, 0, 0, b""))
    buffer = b""
    preface = 24
    while True:
        data = await receive(sock, 65_536)
        if not data:
            return
        buffer += data
        if preface:
            taken = min(preface, len(buffer))
            buffer, preface = buffer[taken:], preface - taken
        out = []
        while len(buffer) >= 9:
            high, low, kind, flags, stream = HEADER.unpack_from(buffer)
            size = (high << 8) | low
            if len(buffer) < 9 + size:
                break
            payload, buffer = buffer[9:9 + size], buffer[9 + size:]
            if kind == HEADERS and answer.large:
                if out:
                    await send(sock, b"".join(out))
                    out = []
                await send(sock, answer.for_stream(stream & 0x7FFF_FFFF))
            elif kind == HEADERS:
                out.append(bytes(answer.for_stream(stream & 0x7FFF_FFFF)))
            elif kind == SETTINGS and not flags & ACK:
                out.append(frame(SETTINGS, ACK, 0, b""))
            elif kind == PING and not flags & ACK:
                out.append(frame(PING, ACK, 0, payload))
        if out:
            await send(sock, b"".join(out))


async def serve_h2lib(sock: curio.io.Socket, body: bytes) -> None:
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    await send(sock, conn.data_to_send())
    fields = [(":status", "200"), ("content-length", str(len(body)))]
    left: dict[int, memoryview] = {}  # stream -> what its window has not let out yet
    while True:
        data = await receive(sock, 65_536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                conn.send_headers(event.stream_id, fields)
                left[event.stream_id] = memoryview(body)
            elif isinstance(event, h2.events.StreamReset):
                left.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                await send(sock, conn.data_to_send())
                return
        for stream in list(left):
            send_within_window(conn, stream, left)
        out = conn.data_to_send()
        if out:
            await send(sock, out)


def send_within_window(conn: Any, stream: int, left: dict[int, memoryview]) -> None:
    """As much of the stream's body as the windows allow, in frames h2 sizes; the end of
    the stream once all of it is out."""
    rest = left[stream]
    while rest:
        size = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size,
                   len(rest))
        if size <= 0:
            left[stream] = rest
            return
        conn.send_data(stream, rest[:size].tobytes())
        rest = rest[size:]
    conn.end_stream(stream)
    del left[stream]


async def serve_h1(sock: curio.io.Socket, body: bytes) -> None:
    answer = (b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)) + body
    buffer = b""
    while True:
        data = await receive(sock, 65_536)
        if not data:
            return
        buffer += data
        count = buffer.count(b"\r\n\r\n")
        if count:
            buffer = buffer[buffer.rindex(b"\r\n\r\n") + 4:]
            await send(sock, answer * count)


async def serve_h11(sock: curio.io.Socket, body: bytes) -> None:
    import h11

    conn = h11.Connection(h11.SERVER)
    head = h11.Response(status_code=200, reason=b"OK",  # h2load fails a status line without one
                        headers=[("content-length", str(len(body)))])
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await receive(sock, 65_536))
        elif isinstance(event, h11.Request):
            await send(sock, conn.send(head) + conn.send(h11.Data(data=body))
                               + conn.send(h11.EndOfMessage()))
        elif isinstance(event, h11.EndOfMessage):
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return


def main() -> None:
    port, cert, key, body_path = sys.argv[1:5]
    libs = "--libs" in sys.argv[5:]
    body = open(body_path, "rb").read()
    raw = RawAnswer(body)
    # hyper2web's own TLS set-up (the client's cipher choice, AES-128-GCM; no session
    # tickets), so the floor and hyper2web do the same cryptography.
    context = make_ssl_context(cert, key)

    async def client(sock: curio.io.Socket, _address: object) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await sock.do_handshake()
            if sock.selected_alpn_protocol() == "h2":
                await (serve_h2lib(sock, body) if libs else serve_raw_h2(sock, raw.copy()))
            else:
                await (serve_h11(sock, body) if libs else serve_h1(sock, body))
        except (OSError, ssl.SSLError, curio.TaskCancelled):
            pass

    async def serve() -> None:
        await network.tcp_server("127.0.0.1", int(port), client, backlog=2048, ssl=context)

    curio.run(serve)


if __name__ == "__main__":
    main()

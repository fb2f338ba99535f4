"""The sans-IO protocols driven with bytes alone: no sockets, no curio, no server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h11
import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import Frame, GoAwayFrame, RstStreamFrame

from hyper2web.server.config import ConnectionConfig
from hyper2web.server.protocol import (
    BodyEnded,
    BodyReceived,
    ConnectionEnded,
    H2Protocol,
    H11Protocol,
    RequestStarted,
    StreamAborted,
    WindowOpened,
)
from hyper2web.server.protocol.events import INTERNAL_ERROR

REQUEST = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
           (":path", "/index.html")]
POST = [(":method", "POST"), (":scheme", "https"), (":authority", "localhost"),
        (":path", "/upload")]


def new_client(lax: bool = False) -> h2.connection.H2Connection:
    """An h2 client; ``lax`` sends header fields as given, however malformed."""
    options: dict[str, Any] = {"client_side": True}
    if lax:
        options.update(validate_outbound_headers=False, normalize_outbound_headers=False)
    return h2.connection.H2Connection(h2.config.H2Configuration(**options))


def pump(proto: H2Protocol, client: h2.connection.H2Connection,
         now: float = 0.0) -> tuple[list[Any], list[Any]]:
    """Client bytes to the protocol, then the protocol's answer to the client."""
    events = proto.receive(client.data_to_send(), now)
    return events, client.receive_data(proto.data_to_send())


def h2_pair(config: ConnectionConfig | None = None,
            lax: bool = False) -> tuple[H2Protocol, h2.connection.H2Connection]:
    """A protocol and a client past both prefaces and SETTINGS ACKs."""
    proto = H2Protocol("test", config or ConnectionConfig())
    proto.start()
    client = new_client(lax)
    client.initiate_connection()
    pump(proto, client)
    pump(proto, client)  # the client's ACK of our SETTINGS
    return proto, client


def h2_request(fields: list[tuple[str, str]] = REQUEST, end: bool = True,
               config: ConnectionConfig | None = None,
               lax: bool = False) -> tuple[H2Protocol, h2.connection.H2Connection, list[Any],
                                           list[Any]]:
    """A connection, its stream 1 opened with ``fields``; the events both sides saw."""
    proto, client = h2_pair(config, lax)
    client.send_headers(1, fields, end_stream=end)
    return (proto, client, *pump(proto, client))


def frames(data: bytes) -> list[Any]:
    """The frames a server wrote (no preface to skip)."""
    out, view = [], memoryview(data)
    while view:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9:9 + length])
        out.append(frame)
        view = view[9 + length:]
    return out


def of(kind: type, items: list[Any]) -> list[Any]:
    return [item for item in items if isinstance(item, kind)]


def test_h2_get_is_started_and_ended() -> None:
    _, _, events, _ = h2_request()
    assert [type(e) for e in events] == [RequestStarted, BodyEnded]
    started = events[0]
    assert (started.stream_id, started.ended, started.http_version) == (1, True, "2")
    assert {k: started.headers[k] for k in (":method", ":path", ":authority")} == {
        ":method": "GET", ":path": "/index.html", ":authority": "localhost"}
    assert events[1].stream_id == 1


def test_h2_response_reaches_the_client() -> None:
    proto, client, _, _ = h2_request()
    proto.send_head(1, 200, [("content-type", "text/plain")], end=False)
    assert proto.sendable(1, 5) == 5
    proto.send_data(1, b"hello", end=True)
    proto.done(1)
    got = client.receive_data(proto.data_to_send())
    assert [type(e) for e in got] == [h2.events.ResponseReceived, h2.events.DataReceived,
                                      h2.events.StreamEnded]
    assert got[0].headers == [(b":status", b"200"), (b"content-type", b"text/plain")]
    assert got[1].data == b"hello"


def test_h2_body_is_received_and_ack_opens_the_window() -> None:
    proto, client = h2_pair(ConnectionConfig(initial_window_size=2000))
    client.send_headers(1, POST, end_stream=False)
    client.send_data(1, b"x" * 1000, end_stream=True)
    events, _ = pump(proto, client)
    assert [type(e) for e in events] == [RequestStarted, BodyReceived, BodyEnded]
    assert events[0].ended is False
    body = events[1]
    assert (body.stream_id, body.data, body.flow) == (1, b"x" * 1000, 1000)
    proto.ack(body.flow, 1)
    updates = of(h2.events.WindowUpdated, client.receive_data(proto.data_to_send()))
    assert [(u.stream_id, u.delta) for u in updates] == [(1, 1000)]


def test_h2_sendable_follows_the_client_window() -> None:
    proto, client = h2_pair()
    client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 10})
    events, _ = pump(proto, client)
    assert of(WindowOpened, events)[0].stream_id == 0
    client.send_headers(1, REQUEST, end_stream=True)
    pump(proto, client)
    proto.send_head(1, 200, [], end=False)
    assert proto.sendable(1, 1000) == 10
    proto.send_data(1, b"a" * 10, end=False)
    assert proto.sendable(1, 1000) == 0
    got = client.receive_data(proto.data_to_send())
    assert of(h2.events.DataReceived, got)[0].data == b"a" * 10
    client.increment_flow_control_window(5, stream_id=1)
    events = proto.receive(client.data_to_send(), 0.0)
    assert [(type(e), e.stream_id) for e in events] == [(WindowOpened, 1)]
    assert proto.sendable(1, 1000) == 5


def test_h2_client_reset_aborts_the_stream() -> None:
    proto, client, _, _ = h2_request(POST, end=False)
    client.reset_stream(1, ErrorCodes.CANCEL)
    events, _ = pump(proto, client)
    assert [(type(e), e.stream_id) for e in events] == [(StreamAborted, 1)]


@pytest.mark.parametrize("fields", [
    [*REQUEST, ("X-Upper", "1")],
    [(name, value) for name, value in REQUEST if name != ":path"],
    [*REQUEST, ("content-length", "5")],  # END_STREAM with the headers: no body follows
], ids=["uppercase-name", "no-path", "content-length-with-end-stream"])
def test_h2_malformed_request_is_reset(fields: list[tuple[str, str]]) -> None:
    proto, _, events, got = h2_request(fields, lax=True)
    assert of(RequestStarted, events) == of(BodyEnded, events) == []
    resets = of(h2.events.StreamReset, got)
    assert [(r.stream_id, r.error_code) for r in resets] == [(1, ErrorCodes.PROTOCOL_ERROR)]
    assert not proto.closing  # a stream error, not a connection error


def test_h2_refuse_answers_and_stops_the_upload() -> None:
    proto, client, _, _ = h2_request(POST, end=False)
    proto.refuse(1, 413, b"too large\n")
    got = client.receive_data(proto.data_to_send())
    assert [type(e) for e in got] == [h2.events.ResponseReceived, h2.events.DataReceived,
                                      h2.events.StreamEnded, h2.events.StreamReset]
    assert {(b":status", b"413"), (b"content-length", b"10")} <= set(got[0].headers)
    assert (got[1].data, got[3].error_code) == (b"too large\n", ErrorCodes.NO_ERROR)


def test_h2_goaway_refuses_later_streams() -> None:
    proto, client, _, _ = h2_request()
    assert (proto.goaway(), proto.goaway()) == (False, False)  # one GOAWAY, streams go on
    sent = frames(proto.data_to_send())
    assert [type(f) for f in sent] == [GoAwayFrame]
    assert (sent[0].last_stream_id, sent[0].error_code) == (1, 0)
    client.send_headers(3, REQUEST, end_stream=True)  # crossed our GOAWAY
    events = proto.receive(client.data_to_send(), 0.0)
    assert of(RequestStarted, events) == []
    resets = of(RstStreamFrame, frames(proto.data_to_send()))
    assert [(f.stream_id, f.error_code) for f in resets] == [(3, ErrorCodes.REFUSED_STREAM)]
    proto.send_head(1, 204, [], end=True)  # stream 1 may still finish
    assert client.receive_data(proto.data_to_send())[0].stream_id == 1


def test_h2_garbage_preface_ends_with_goaway() -> None:
    proto = H2Protocol("test", ConnectionConfig())
    proto.start()
    events = proto.receive(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 0.0)
    assert [type(e) for e in events] == [ConnectionEnded]
    assert events[0].linger and proto.closing and proto.linger and not proto.wants_data
    goaways = of(GoAwayFrame, frames(proto.data_to_send()))
    assert [f.error_code for f in goaways] == [ErrorCodes.PROTOCOL_ERROR]


@pytest.mark.parametrize("streams", [5, 6], ids=["within-budget", "over-budget"])
def test_h2_reset_flood_gets_enhance_your_calm(streams: int) -> None:
    proto, client = h2_pair(ConnectionConfig(max_resets_per_second=5))
    for sid in range(1, 2 * streams, 2):  # each stream reset at once by the client
        client.send_headers(sid, REQUEST, end_stream=False)
        client.reset_stream(sid, ErrorCodes.CANCEL)
    events, got = pump(proto, client)
    codes = [e.error_code for e in of(h2.events.ConnectionTerminated, got)]
    if streams == 5:
        assert len(of(StreamAborted, events)) == 5
        assert (of(ConnectionEnded, events), codes, proto.closing) == ([], [], False)
    else:
        assert isinstance(events[-1], ConnectionEnded) and events[-1].linger is True
        assert proto.closing
        assert codes == [ErrorCodes.ENHANCE_YOUR_CALM]


def test_h2_oversized_frame_header_closes_with_frame_size_error() -> None:
    proto, client = h2_pair()
    size = 1 << 20  # above the default SETTINGS_MAX_FRAME_SIZE of 16384
    header = size.to_bytes(3, "big") + b"\x00\x00" + (1).to_bytes(4, "big")  # DATA, stream 1
    events = proto.receive(header, 0.0)
    assert [(type(e), e.linger) for e in events] == [(ConnectionEnded, False)]
    goaways = of(GoAwayFrame, frames(proto.data_to_send()))
    assert [f.error_code for f in goaways] == [ErrorCodes.FRAME_SIZE_ERROR]


def test_h2_quiet_limit_before_and_after_settings() -> None:
    proto = H2Protocol("test", ConnectionConfig(preface_timeout=10.0, idle_timeout=300.0))
    proto.start()
    assert proto.quiet_limit(3.0, 0.0) == (7.0, "no preface")
    assert proto.quiet_limit(30.0, 0.0) == (0.0, "no preface")
    client = new_client()
    client.initiate_connection()
    preface = client.data_to_send()
    proto.receive(preface[:10], 1.0)  # part of the preface: still timed as a whole
    assert proto.quiet_limit(4.0, 0.0) == (6.0, "no preface")
    events = proto.receive(preface[10:], 4.0)
    assert [(type(e), e.stream_id) for e in events] == [(WindowOpened, 0)]
    assert proto.quiet_limit(50.0, 0.0) == (300.0, "idle")


GET = b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"


def h11_proto(request: bytes = b"") -> H11Protocol:
    """A connection; given ``request``, it has been received."""
    proto = H11Protocol("test", ConnectionConfig())
    proto.start()
    if request:
        assert proto.receive(request, 0.0)
    return proto


def test_h11_get_is_started_and_ended() -> None:
    proto = h11_proto()
    events = proto.receive(GET, 0.0)
    assert [type(e) for e in events] == [RequestStarted, BodyEnded]
    started = events[0]
    assert (started.stream_id, started.ended, started.http_version) == (1, True, "1.1")
    assert {k: started.headers[k] for k in (":method", ":path", ":authority", "accept")} == {
        ":method": "GET", ":path": "/a?b=1", ":authority": "example.com", "accept": "*/*"}


def test_h11_keep_alive_reads_again_after_the_response() -> None:
    proto = h11_proto()
    assert proto.wants_data is True
    proto.receive(GET, 0.0)
    assert proto.wants_data is False  # the request is being answered
    proto.send_head(1, 200, [("content-length", "0")], end=True)
    proto.done(1)
    assert proto.wants_data is True and not proto.closing
    assert proto.data_to_send().startswith(b"HTTP/1.1 200 OK\r\n")


def test_h11_pipelined_requests_wait_their_turn() -> None:
    proto = h11_proto()
    second = GET.replace(b"/a?b=1", b"/second")
    events = proto.receive(GET + second, 0.0)
    assert [type(e) for e in events] == [RequestStarted, BodyEnded]
    assert events[0].headers[":path"] == "/a?b=1"
    assert proto.next_events(0.0) == []  # still answering the first
    proto.send_head(1, 200, [("content-length", "0")], end=True)
    proto.done(1)
    events = proto.next_events(0.0)
    assert [type(e) for e in events] == [RequestStarted, BodyEnded]
    assert events[0].headers[":path"] == "/second"


def test_h11_chunked_body() -> None:
    proto = h11_proto()
    events = proto.receive(b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0.0)
    assert [type(e) for e in events] == [RequestStarted, BodyReceived, BodyReceived, BodyEnded]
    assert events[0].ended is False
    assert [(e.data, e.flow) for e in events[1:3]] == [(b"hello", 5), (b" world", 6)]


def test_h11_expect_100_continue() -> None:
    proto = h11_proto()
    events = proto.receive(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                           b"Expect: 100-continue\r\n\r\n", 0.0)
    assert [type(e) for e in events] == [RequestStarted]
    assert proto.data_to_send() == b""
    assert proto.before_read() is True
    assert proto.data_to_send().startswith(b"HTTP/1.1 100 ")
    assert proto.before_read() is False  # only once
    events = proto.receive(b"hello", 0.0)
    assert [type(e) for e in events] == [BodyReceived, BodyEnded]
    assert events[0].data == b"hello"


def response_of(data: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Status, headers and body of one response, parsed by an h11 client."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
    client.receive_data(data)
    head = client.next_event()
    assert isinstance(head, h11.Response)
    body = b""
    while type(event := client.next_event()) is h11.Data:
        body += event.data
    return head.status_code, dict(head.headers), body


def test_h11_content_length_with_transfer_encoding_is_400() -> None:
    proto = h11_proto()
    events = proto.receive(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 0.0)
    assert of(RequestStarted, events) == []
    assert type(events[-1]) is ConnectionEnded
    assert proto.closing and not proto.wants_data
    data = proto.data_to_send()
    assert b"\r\nconnection: close\r\n" in data.lower()
    assert response_of(data)[0] == 400


@pytest.mark.parametrize("complete", [True, False], ids=["whole-head", "unfinished-head"])
def test_h11_oversized_head_is_431(complete: bool) -> None:
    proto = h11_proto()
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 * 1024)
    events = proto.receive(head + (b"\r\n\r\n" if complete else b""), 0.0)
    assert of(RequestStarted, events) == []
    assert type(events[-1]) is ConnectionEnded and proto.closing
    status, headers, _ = response_of(proto.data_to_send())
    assert (status, headers[b"connection"]) == (431, b"close")


def test_h11_malformed_request_line_is_400() -> None:
    proto = h11_proto()
    events = proto.receive(b"NOT A REQUEST LINE AT ALL\r\n\r\n", 0.0)
    assert [type(e) for e in events] == [ConnectionEnded] and proto.closing
    assert proto.data_to_send().startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_h11_goaway_closes_now_or_after_the_request() -> None:
    idle = h11_proto()
    assert idle.goaway() is True and idle.closing
    proto = h11_proto(GET)
    assert proto.goaway() is False and not proto.closing
    proto.send_head(1, 200, [("content-length", "0")], end=True)
    proto.done(1)
    assert proto.closing
    status, headers, _ = response_of(proto.data_to_send())
    assert (status, headers[b"connection"]) == (200, b"close")


def test_h11_reset_before_the_head_is_500() -> None:
    proto = h11_proto(GET)
    proto.reset(1, INTERNAL_ERROR)
    assert proto.closing
    status, headers, body = response_of(proto.data_to_send())
    assert (status, headers[b"connection"], body) == (500, b"close", b"internal server error\n")


def test_h11_informational_only_for_http_1_1() -> None:
    old = h11_proto()
    events = old.receive(b"GET / HTTP/1.0\r\n\r\n", 0.0)
    assert events[0].http_version == "1.0"
    old.send_informational(1, 103, [("link", "</a.css>; rel=preload")])
    assert old.data_to_send() == b""
    new = h11_proto(GET)
    new.send_informational(1, 103, [("link", "</a.css>; rel=preload")])
    assert new.data_to_send().startswith(b"HTTP/1.1 103 ")


@pytest.mark.parametrize("status, line", [
    (200, b"HTTP/1.1 200 OK\r\n"), (404, b"HTTP/1.1 404 Not Found\r\n"),
    (503, b"HTTP/1.1 503 Service Unavailable\r\n"),
])
def test_h11_status_lines_carry_reason_phrases(status: int, line: bytes) -> None:
    proto = h11_proto(GET)
    proto.send_head(1, status, [("content-length", "0")], end=True)
    assert proto.data_to_send().startswith(line)


PROTOCOL_DIR = Path(__file__).resolve().parents[2] / "hyper2web" / "server" / "protocol"


def test_protocol_package_does_not_import_curio() -> None:
    code = ("import sys, hyper2web.server.protocol; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'curio'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_protocol_sources_import_neither_curio_nor_sockets() -> None:
    sources = sorted(PROTOCOL_DIR.glob("*.py"))
    assert len(sources) >= 4
    import_line = re.compile(r"^\s*(import|from)\s")
    bad = [f"{path.name}: {line.strip()}" for path in sources
           for line in path.read_text().splitlines()
           if import_line.match(line) and ("curio" in line or "socket" in line)]
    assert bad == []

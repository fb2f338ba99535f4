"""HTTP/1.1 answers with prepared header fields (a cached file's tuple): h11's event is made
and checked once per tuple, and what goes on the wire is what a fresh event would send,
whatever the connection's state (HTTP/1.0, HEAD, draining)."""

from __future__ import annotations

import h11
import pytest

from hyper2web.server.config import ConnectionConfig
from hyper2web.server.prepared import PerTuple
from hyper2web.server.protocol import h1head
from hyper2web.server.protocol.events import RequestStarted
from hyper2web.server.protocol.h11proto import H11Protocol, prepared_response

FIELDS = (("content-type", "text/html; charset=utf-8"), ("content-length", "5"),
          ("etag", '"1-5"'), ("cache-control", "no-cache"))


def answered(request: bytes, fields: tuple[tuple[str, str], ...] | list[tuple[str, str]],
             status: int = 200, *, drain: bool = False, times: int = 3) -> list[bytes]:
    """What one connection sends for ``times`` requests answered with ``fields``."""
    proto = H11Protocol("test", ConnectionConfig())
    out = []
    for _ in range(times):
        events = proto.receive(request, 0.0)
        assert type(events[0]) is RequestStarted
        if drain:
            proto.goaway()
        proto.send_head(1, status, fields, end=False)
        proto.send_data(1, b"hello", True)
        proto.done(1)
        out.append(proto.data_to_send())
        if proto.closing:
            break
    return out


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
], ids=["keep-alive", "http-1.0", "client-closes"])
@pytest.mark.parametrize("status", [200, 404])
def test_prepared_fields_send_what_a_list_sends(request_bytes: bytes, status: int) -> None:
    assert answered(request_bytes, FIELDS, status) == answered(request_bytes, list(FIELDS),
                                                              status)


def test_head_request_with_prepared_fields() -> None:
    request = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
    proto = H11Protocol("test", ConnectionConfig())
    proto.receive(request, 0.0)
    proto.send_head(1, 200, FIELDS, end=True)
    proto.done(1)
    data = proto.data_to_send()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\n")
    assert b"content-length: 5\r\n" in data and not proto.closing


def test_a_draining_connection_still_says_close() -> None:
    sent = answered(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", FIELDS, drain=True)
    assert len(sent) == 1 and b"\r\nconnection: close\r\n" in sent[0]
    assert sent == answered(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", list(FIELDS), drain=True)


def test_one_event_per_tuple_and_status() -> None:
    first = prepared_response(200, FIELDS)
    assert prepared_response(200, FIELDS) is first
    assert prepared_response(304, FIELDS) is not first
    assert prepared_response(200, tuple(FIELDS)) is first  # tuple() of a tuple: the same one
    other = (*FIELDS, ("vary", "accept-encoding"))
    assert prepared_response(200, other) is not first
    assert first.headers == h11.Response(status_code=200, headers=list(FIELDS)).headers


def test_an_entry_for_another_tuple_with_the_same_id_is_not_reused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A freed tuple's id may come back for a new one: the kept tuple tells them apart."""
    monkeypatch.setattr(h1head, "_prepared", PerTuple())
    fields = (("content-length", "0"),)
    stale = h11.Response(status_code=200, headers=[("content-length", "99")])
    h1head._prepared.kept[(id(fields), 200)] = ((("content-length", "99"),), stale)
    event = prepared_response(200, fields)
    assert event is not stale and dict(event.headers)[b"content-length"] == b"0"


def test_the_kept_events_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h1head, "_prepared", PerTuple(8))
    kept = [(("content-length", str(n)),) for n in range(50)]  # alive: distinct ids
    for fields in kept:
        prepared_response(200, fields)
        assert len(h1head._prepared) <= 8
    assert prepared_response(200, kept[-1]) is prepared_response(200, kept[-1])


def test_bad_prepared_fields_are_still_refused() -> None:
    """h11 checks the fields when it makes the event: a bad value never goes out."""
    proto = H11Protocol("test", ConnectionConfig())
    proto.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    with pytest.raises(h11.LocalProtocolError):
        proto.send_head(1, 200, (("x-bad", "a\r\nb"),), end=True)
    assert proto.data_to_send() == b""


def test_request_fields_in_one_pass() -> None:
    proto = H11Protocol("test", ConnectionConfig())
    events = proto.receive(b"GET http://example.com:8443/p?q=1 HTTP/1.1\r\nHost: example.com\r\n"
                           b"Cookie: a=1\r\nAccept: text/html\r\nCookie: b=2\r\n"
                           b"Accept: */*\r\n\r\n", 0.0)
    started = events[0]
    assert type(started) is RequestStarted and started.ended
    headers = started.headers
    assert (headers[":path"], headers[":authority"]) == ("/p?q=1", "example.com:8443")
    assert headers["cookie"] == "a=1; b=2" and headers["accept"] == "text/html, */*"
    assert headers["host"] == "example.com"


@pytest.mark.parametrize("framing, ended", [
    (b"Content-Length: 0\r\n", False), (b"Transfer-Encoding: chunked\r\n", False), (b"", True),
])
def test_a_body_is_expected_only_when_framed(framing: bytes, ended: bool) -> None:
    proto = H11Protocol("test", ConnectionConfig())
    events = proto.receive(b"POST /u HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n", 0.0)
    assert events[0].ended is ended


def test_many_repeats_of_a_field_are_joined_in_order() -> None:
    """Thousands of repeats of a field make one value, in order; a head past MAX_HEAD is
    still refused (the reading stops at the limit)."""
    proto = H11Protocol("test", ConnectionConfig())
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"Cookie: a=1\r\n" * 4000 + b"\r\n"
    started = proto.receive(head, 0.0)[0]
    assert type(started) is RequestStarted
    assert started.headers["cookie"] == "; ".join(["a=1"] * 4000)
    big = H11Protocol("test", ConnectionConfig())
    events = big.receive(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"b" * 60000 + b"\r\n"
                         + b"X-A: " + b"c" * 6000 + b"\r\n\r\n", 0.0)
    assert not [e for e in events if type(e) is RequestStarted]
    assert big.data_to_send().startswith(b"HTTP/1.1 431 ")

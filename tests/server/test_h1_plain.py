"""Plain HTTP/1.1 requests answered without h11 (``h1plain``) behave exactly as h11 does.

Each case drives two ``H11Protocol``s with the same bytes and the same calls, one with
plain requests on and one with every request through h11, and compares everything they
do: the events, the bytes queued, what they refuse and the connection's flags after
every step. A seeded fuzzer mutates requests byte by byte, so the plain parser must take
only what h11 reads the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import h11
import pytest

from hyper2web.exceptions import StreamClosed
from hyper2web.server.config import ConnectionConfig
from hyper2web.server.protocol.events import (
    INTERNAL_ERROR,
    BodyEnded,
    BodyReceived,
    ConnectionEnded,
    RequestStarted,
)
from hyper2web.server.protocol.h1head import plain_request, response_head
from hyper2web.server.protocol.h1plain import PlainAnswer
from hyper2web.server.protocol.h11proto import H11Protocol

FILE = (("content-type", "text/plain"), ("content-length", "5"), ("etag", '"1-5"'))
NOT_MODIFIED = (("etag", '"1-5"'), ("cache-control", "no-cache"))
NO_LENGTH = (("content-type", "text/plain"),)  # h11 picks chunked framing
CLOSING = (("content-length", "5"), ("connection", "close"))
HOST_FIRST = (("content-length", "5"), ("host", "h"))  # h11 writes a host field first

# An answer: the calls a handler makes, in order.
Answer = list[tuple[Any, ...]]
WHOLE: Answer = [("head", 200, FILE, False), ("data", b"hello", True)]


def describe(event: Any) -> tuple[Any, ...]:
    kind = type(event)
    if kind is RequestStarted:
        return ("start", event.stream_id, event.headers, event.ended, event.http_version)
    if kind is BodyReceived:
        return ("body", event.data, event.flow)
    if kind is BodyEnded:
        return ("end", event.stream_id)
    assert kind is ConnectionEnded
    return ("gone", event.linger)


def call(proto: H11Protocol, step: tuple[Any, ...]) -> Any:
    """One handler call; what it raised, by type, is part of the record."""
    kind, *args = step
    try:
        if kind == "head":
            proto.send_head(1, args[0], args[1], args[2])
        elif kind == "data":
            proto.send_whole(1, args[0], args[1])
        elif kind == "info":
            proto.send_informational(1, args[0], args[1])
        elif kind == "reset":
            proto.reset(1, args[0])
        elif kind == "refuse":
            proto.refuse(1, args[0], args[1])
        elif kind == "goaway":
            return proto.goaway()
        return None
    except (StreamClosed, h11.LocalProtocolError) as exc:
        return type(exc).__name__


def flags(proto: H11Protocol) -> tuple[Any, ...]:
    return (proto.closing, proto.linger, proto.draining, proto.wants_data, proto.requests,
            proto.quiet_limit(1.0, 0.0))


def drive(chunks: list[bytes], answer: Answer | Callable[[int], Answer],
          plain: bool) -> list[Any]:
    """Everything one connection does with ``chunks`` when each request gets ``answer``."""
    proto = H11Protocol("test", ConnectionConfig())
    proto.plain_requests = plain
    record: list[Any] = []
    answered = 0

    def take(events: list[Any]) -> None:
        nonlocal answered
        while events:
            record.extend(describe(event) for event in events)
            if not any(type(event) is BodyEnded for event in events):
                return
            steps = answer(answered) if callable(answer) else answer
            answered += 1
            record.append([call(proto, step) for step in steps])
            proto.done(1)
            record.append(proto.data_to_send())
            record.append(flags(proto))
            events = proto.next_events(0.0)

    for chunk in chunks:
        if not chunk:
            continue  # the driver never passes b"": it handles the peer's close itself
        if proto.closing or not proto.wants_data:
            break
        take(proto.receive(chunk, 0.0))
        record.append(flags(proto))
    record.append(proto.data_to_send())
    return record


def same(chunks: list[bytes], answer: Answer | Callable[[int], Answer] = WHOLE) -> list[Any]:
    plain = drive(chunks, answer, True)
    assert plain == drive(chunks, answer, False)
    return plain


GET = b"GET /app.js?v=1 HTTP/1.1\r\nHost: localhost:5000\r\nAccept: */*\r\n\r\n"

REQUESTS = {
    "get": GET,
    "head": b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
    "browser": (b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0 (X11)\r\n"
                b"Accept: text/html,*/*;q=0.8\r\nAccept-Encoding: gzip, br\r\n"
                b"Cookie: a=1\r\nCookie: b=2\r\nAccept: image/*\r\n"
                b"If-None-Match: \"1-5\"\r\nSec-Fetch-Mode: navigate\r\n\r\n"),
    "ows": b"GET / HTTP/1.1\r\nHost:x\r\nX-A: \t spaced  out \t\r\nX-B:\r\nX-C:  \r\n\r\n",
    "obs-text": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9\r\n\r\n",
    "odd-target": b"GET /a/../%2e/b;c?d=e&f=%ZZ#frag HTTP/1.1\r\nHost: x\r\n\r\n",
    "close": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "keep-alive-field": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    "http-1.0": b"GET / HTTP/1.0\r\n\r\n",
    "http-1.0-host": b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "absolute": b"GET https://example.com:8443/p?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "post-empty": b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "post-body": b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    "get-body": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    "chunked": b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "expect": b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    "upgrade": (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"),
    "lf-only": b"GET / HTTP/1.1\nHost: x\n\n",
    "mixed-ends": b"GET / HTTP/1.1\r\nHost: x\nAccept: */*\r\n\r\n",
    "leading-crlf": b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "bad-name": b"GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n",
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "cr-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "lowercase-method": b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-version": b"GET / HTTP/1.x\r\nHost: x\r\n\r\n",
    "http-2.0": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    "control-in-target": b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls-bytes": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "long-head": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
    "huge-head": b"GET / HTTP/1.1\r\nHost: x\r\n" + (b"X-A: " + b"b" * 8000 + b"\r\n") * 9
    + b"\r\n",
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_every_request_is_read_and_answered_as_h11_does(name: str) -> None:
    same([REQUESTS[name]])
    same([REQUESTS[name] * 3])  # pipelined
    same([REQUESTS[name], REQUESTS[name]])  # one after the other


@pytest.mark.parametrize("name", ["get", "browser", "obs-text", "ows", "odd-target"])
def test_plain_requests_take_the_plain_path(name: str) -> None:
    found = plain_request(REQUESTS[name] + b"GET /next")
    assert found is not None and found[1] == len(REQUESTS[name])


@pytest.mark.parametrize("name", [name for name in REQUESTS if name not in (
    "get", "head", "browser", "obs-text", "ows", "odd-target")])
def test_other_requests_are_left_to_h11(name: str) -> None:
    assert plain_request(REQUESTS[name]) is None


def plain_on() -> H11Protocol:
    """A connection with plain requests on, whatever HYPER2WEB_TUNED says."""
    proto = H11Protocol("test", ConnectionConfig())
    proto.plain_requests = True
    return proto


def test_a_plain_request_answered_plainly_leaves_h11_idle() -> None:
    proto = plain_on()
    events = proto.receive(GET, 0.0)
    assert [type(e) for e in events] == [RequestStarted, BodyEnded]
    assert type(proto._plain) is PlainAnswer and not proto.wants_data
    proto.send_head(1, 200, FILE, False)
    proto.send_data(1, b"hello", True)
    proto.done(1)
    assert proto.h11.our_state is h11.IDLE and proto.h11.their_state is h11.IDLE
    assert proto._plain is None and proto.wants_data and not proto.closing
    assert proto.data_to_send() == response_head(200, FILE)[0] + b"hello"


ANSWERS: dict[str, Answer] = {
    "whole": WHOLE,
    "head-and-end": [("head", 200, FILE, True)],
    "in-pieces": [("head", 200, FILE, False), ("data", b"he", False), ("data", b"llo", False),
                  ("data", b"", True)],
    "memoryview": [("head", 200, FILE, False), ("data", memoryview(b"hello"), True)],
    "304": [("head", 304, NOT_MODIFIED, True)],
    "304-with-body": [("head", 304, NOT_MODIFIED, False), ("data", b"x", True)],
    "204": [("head", 204, (("content-length", "0"),), True)],
    "404": [("head", 404, FILE, False), ("data", b"hello", True)],
    "no-length": [("head", 200, NO_LENGTH, False), ("data", b"hello", True)],
    "closing": [("head", 200, CLOSING, False), ("data", b"hello", True)],
    "host-field": [("head", 200, HOST_FIRST, False), ("data", b"hello", True)],
    "list-fields": [("head", 200, list(FILE), False), ("data", b"hello", True)],
    "too-much": [("head", 200, FILE, False), ("data", b"hello!", True)],
    "too-little": [("head", 200, FILE, False), ("data", b"hell", True)],
    "unended": [("head", 200, FILE, False), ("data", b"hell", False)],
    "no-answer": [],
    "data-first": [("data", b"hello", True)],
    "two-heads": [("head", 200, FILE, False), ("head", 200, FILE, False)],
    "after-the-end": [("head", 200, FILE, True), ("data", b"x", True)],
    "early-hints": [("info", 103, [("link", "</a.js>; rel=preload")]), *WHOLE],
    "hints-too-late": [("head", 200, FILE, False), ("info", 103, []), ("data", b"hello", True)],
    "failed-before": [("reset", INTERNAL_ERROR)],
    "failed-after": [("head", 200, FILE, False), ("reset", INTERNAL_ERROR)],
    "cancelled": [("reset", 0x8)],
    "refused": [("refuse", 403, b"no\n")],
    "refused-late": [("head", 200, FILE, False), ("refuse", 403, b"no\n")],
    "shutdown-first": [("goaway",), *WHOLE],
    "shutdown-during": [("head", 200, FILE, False), ("goaway",), ("data", b"hello", True)],
    "bad-field": [("head", 200, (("x-bad", "a\r\nb"),), True)],
}


@pytest.mark.parametrize("answer", list(ANSWERS))
@pytest.mark.parametrize("name", ["get", "head", "browser", "close", "http-1.0-host"])
def test_every_answer_is_sent_as_h11_sends_it(answer: str, name: str) -> None:
    same([REQUESTS[name] * 2], ANSWERS[answer])


def test_an_answer_not_prepared_hands_the_request_to_h11() -> None:
    proto = plain_on()
    proto.receive(GET, 0.0)
    proto.send_head(1, 200, NO_LENGTH, False)  # chunked framing: h11 decides it
    assert proto._plain is None and proto.h11.our_state is h11.SEND_BODY
    assert proto.h11.their_state is h11.DONE


def test_pipelined_bytes_after_a_plain_request_wait_their_turn() -> None:
    """Bytes after a plain head stay out of h11 until the request is answered, whole or
    in pieces, and a head that arrives in pieces is h11's."""
    second = GET.replace(b"/app.js", b"/second")
    same([GET + second[:10], second[10:]])
    same([GET, second[:5], second[5:30], second[30:] + GET])
    same([GET + second + b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + GET])
    record = same([GET + second])
    assert [entry[2][":path"] for entry in record if type(entry) is tuple
            and entry[0] == "start"] == ["/app.js?v=1", "/second?v=1"]


def test_a_head_begun_keeps_its_timer() -> None:
    """Part of the next head read with a plain request is timed as h11's buffer is."""
    proto = plain_on()
    proto.receive(GET + b"GET /n", 5.0)
    proto.send_head(1, 200, FILE, False)
    proto.send_data(1, b"hello", True)
    proto.done(1)
    assert proto.quiet_limit(7.0, 0.0)[1] == "head not complete"


ALPHABET = b"\r\n \t:/\x00\x80aA-;,H1.?%\x7f"


def mutate(data: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(buffer) + 1)
        kind = rng.random()
        if kind < 0.4 and at < len(buffer):
            buffer[at] = rng.choice(ALPHABET)
        elif kind < 0.7:
            buffer[at:at] = bytes([rng.choice(ALPHABET)])
        else:
            del buffer[at:at + rng.randint(1, 3)]
    return bytes(buffer)


@pytest.mark.parametrize("seed", range(8))
def test_mutated_requests_are_read_as_h11_reads_them(seed: int) -> None:
    rng = random.Random(seed)
    bases = [REQUESTS[name] for name in ("get", "head", "browser", "ows", "obs-text")]
    plain_taken = 0
    for _ in range(400):
        data = mutate(rng.choice(bases), rng) + rng.choice([b"", GET, GET[:20]])
        cut = rng.randrange(len(data) + 1)
        chunks = [data] if rng.random() < 0.7 else [data[:cut], data[cut:]]
        same(chunks)
        plain_taken += plain_request(data) is not None
    assert plain_taken > 40  # the mutations left many requests plain, so both paths ran

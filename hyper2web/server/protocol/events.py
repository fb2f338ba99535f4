"""What a protocol tells the connection driver, the same for HTTP/2 and HTTP/1.1.

A request is a stream: ``RequestStarted`` with its header dict (HTTP/2 pseudo-fields
included, also over HTTP/1.1), then its body as ``BodyReceived`` pieces and
``BodyEnded``. ``StreamAborted`` ends a stream early (the client reset it, or it broke a
rule); ``WindowOpened`` means a sender blocked by flow control may go on;
``ConnectionEnded`` means nothing more will be read.
"""

from __future__ import annotations

# How the driver asks a protocol to end one stream early: RST_STREAM codes (RFC 9113
# section 7). HTTP/1.1, which cannot end one request alone, closes the connection instead.
NO_ERROR, INTERNAL_ERROR, CANCEL = 0x0, 0x2, 0x8


class Event:
    """Base of the protocol events."""

    __slots__ = ()


class RequestStarted(Event):
    """A request head arrived; ``ended``: it has no body (END_STREAM with the headers)."""

    __slots__ = ("stream_id", "headers", "ended", "http_version")

    def __init__(self, stream_id: int, headers: dict[str, str], ended: bool,
                 http_version: str = "2") -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.ended = ended
        self.http_version = http_version


class BodyReceived(Event):
    """A piece of a request body; ``flow`` is what it counted against flow control
    (padding included), to be acknowledged once it has been taken."""

    __slots__ = ("stream_id", "data", "flow")

    def __init__(self, stream_id: int, data: bytes, flow: int) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flow = flow


class BodyEnded(Event):
    """The request body of ``stream_id`` is complete."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class StreamAborted(Event):
    """The stream is gone: reset by the client, or by the protocol for a broken rule."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class WindowOpened(Event):
    """The peer opened a send window: of ``stream_id``, or of every stream when 0."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class ConnectionEnded(Event):
    """Nothing more will be read: the peer said goodbye or broke the protocol.

    ``linger``: what was queued last is an error report (a GOAWAY, a 400) that must reach
    the peer before the socket closes, so the driver lingers briefly (see ``linger``).
    """

    __slots__ = ("linger",)

    def __init__(self, linger: bool = False) -> None:
        self.linger = linger

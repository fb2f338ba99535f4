"""A plain HTTP/1.1 request answered without h11 (``h1head.plain_request``).

Most requests a browser or a load tool sends over HTTP/1.1 are a GET or HEAD with a
handful of ordinary fields, answered with a cached file's prepared fields. For those,
h11's parsing, events and state machines were most of what a request cost. h11 stays in
its idle state while such a request is answered here, and the next request starts from
there, as it would after h11's own cycle. The moment anything needs h11 (an answer that
is not prepared, an informational response, a refusal, shutdown's ``connection:
close``) the request's head is handed to h11 after all (``H11Protocol._catch_up``), and
h11 goes on from the same state it would have reached.

What this sends is what h11 sends for the same calls, byte for byte, and it refuses what
h11 refuses (too much or too little body for the content-length, a second head); the
tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...exceptions import StreamClosed
from .h1head import response_head

DUE, BODY, ENDED, BROKEN = range(4)  # the answer's head is due; its body; done; refused


class PlainAnswer:
    """The answer to one plain request, while h11 has not seen the request."""

    __slots__ = ("head", "bodiless", "left", "state")

    def __init__(self, head: bytes, bodiless: bool) -> None:
        self.head = head  # the request's head, for h11 if it must take over
        self.bodiless = bodiless  # a HEAD request: the answer has no body
        self.left = 0  # body bytes the content-length still owes
        self.state = DUE

    def send_head(self, status: int, fields: Sequence[tuple[str, str]], end: bool,
                  out: list[bytes]) -> bool:
        """Queue the head if it needs none of h11's decisions; False: h11 must take over.

        ``fields`` must be a prepared tuple (see ``h1head.response_head``).
        """
        if self.state != DUE:
            self._refuse("a response has been sent already")
        made = response_head(status, fields)  # type: ignore[arg-type]
        if made is None:
            return False
        head, length = made
        out.append(head)
        self.left = 0 if self.bodiless else length
        self.state = BODY
        if end:
            self.end()
        return True

    def send_data(self, data: bytes | memoryview, end: bool, out: list[bytes]) -> None:
        if self.state != BODY:
            self._refuse("no response body can be sent now")
        if data:
            if len(data) > self.left:
                self._refuse("Too much data for declared Content-Length")
            self.left -= len(data)
            out.append(data if type(data) is bytes else bytes(data))
        if end:
            self.end()

    def end(self) -> None:
        if self.left:
            self._refuse("Too little data for declared Content-Length")
        self.state = ENDED

    def before_informational(self) -> None:
        """A 1xx may only come before the head: h11 must take over, or it is refused."""
        if self.state != DUE:
            self._refuse("an informational response cannot follow the response")

    def sendable(self) -> None:
        """Raises once the answer has ended or broken, as h11 does past its body."""
        if self.state not in (DUE, BODY):
            raise StreamClosed("the response has ended or cannot be sent")

    def _refuse(self, why: str) -> None:
        """h11's LocalProtocolError, as ``H11Protocol._send`` reports it; the answer is
        broken for good, like h11's ERROR state."""
        self.state = BROKEN
        raise StreamClosed(f"cannot send on this connection: {why}")

"""One HTTP/2 stream as the connection tracks it, and the ``Channel`` its response uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import h2.exceptions

from ..exceptions import StreamClosed
from .bodies import H2BodySource

if TYPE_CHECKING:
    from .h2 import H2Connection


class _StreamState:
    __slots__ = ("stream_id", "headers", "body", "size", "task", "closed", "window_event",
                 "refused", "progress", "source", "ended")

    def __init__(self, stream_id: int, headers: dict[str, str]) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.body: list[bytes] = []
        self.size = 0
        self.task: Any = None
        self.closed = False
        self.window_event: Any = None
        self.refused = False
        self.progress = 0.0  # when the request or its body last moved forward
        self.source: H2BodySource | None = None  # set for a streamed body
        self.ended = False  # the client's END_STREAM came


class StreamChannel:
    """The ``Channel`` of one stream: sends its headers and data with flow control."""

    __slots__ = ("_conn", "_state")

    def __init__(self, conn: H2Connection, state: _StreamState) -> None:
        self._conn = conn
        self._state = state

    async def send_head(self, status: int, headers: Sequence[tuple[str, str]],
                        end_stream: bool) -> None:
        conn = self._conn
        self._check_open()
        block = [(":status", str(status))]
        block.extend(headers)
        try:
            conn.h2.send_headers(self._state.stream_id, block, end_stream=end_stream)
        except h2.exceptions.ProtocolError:
            # Reset by the peer, perhaps already forgotten by h2 (then its id is "too
            # low"), or the connection closed on an error: either way nobody listens.
            raise StreamClosed(f"stream {self._state.stream_id} closed") from None
        if not conn.inline:
            await conn.wake_writer()

    async def send_informational(self, status: int,
                                 headers: Sequence[tuple[str, str]]) -> None:
        """A 1xx HEADERS frame (e.g. 103 Early Hints); the final response follows."""
        await self.send_head(status, headers, False)

    async def send_data(self, data: bytes, end_stream: bool) -> None:
        conn = self._conn
        state = self._state
        sid = state.stream_id
        h2conn = conn.h2
        size = len(data)
        if 0 < size <= h2conn.max_outbound_frame_size and not state.closed \
                and not conn.closed:
            # The common case, a body that fits one frame and the window: no slicing.
            try:
                fits = size <= h2conn.local_flow_control_window(sid)
                if fits:
                    h2conn.send_data(sid, data, end_stream=end_stream)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                raise StreamClosed(f"stream {sid} closed") from None
            if fits:
                await conn.queued(size)
                return
        view = memoryview(data)
        try:
            if not view:
                if end_stream:  # an empty chunk alone sends nothing
                    self._check_open()
                    h2conn.end_stream(sid)
                    await conn.wake_writer()
                return
            while view:
                self._check_open()
                window = h2conn.local_flow_control_window(sid)
                if window < 1:
                    await conn.wait_for_window(state)
                    continue
                size = min(window, h2conn.max_outbound_frame_size, len(view))
                last = end_stream and size == len(view)
                h2conn.send_data(sid, bytes(view[:size]), end_stream=last)
                view = view[size:]
                await conn.queued(size)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            raise StreamClosed(f"stream {sid} closed") from None

    async def own_task(self) -> None:
        await self._conn.leave_read_loop()

    def _check_open(self) -> None:
        if self._state.closed or self._conn.closed:
            raise StreamClosed(f"stream {self._state.stream_id} closed by the peer")

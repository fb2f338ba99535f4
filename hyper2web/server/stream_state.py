"""What the connection driver keeps of one request while it is served."""

from __future__ import annotations

from typing import Any

from .bodies import StreamedBody


class StreamState:
    """One request as the driver tracks it, from its head to the end of its response."""

    __slots__ = ("stream_id", "headers", "version", "body", "size", "task", "closed",
                 "window_event", "progress", "source", "ended")

    def __init__(self, stream_id: int, headers: dict[str, str], version: str) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.version = version
        self.body: list[bytes] = []
        self.size = 0
        self.task: Any = None  # the task it runs in once it has waited (see ``eager``)
        self.closed = False
        self.window_event: Any = None
        self.progress = 0.0  # when the request or its body last moved forward
        self.source: StreamedBody | None = None  # set for a streamed body
        self.ended = False  # the whole request has arrived

"""What every connection of a server shares: its limits and the callables it is handed.

One ``ConnectionConfig`` serves all connections of a server (HTTP/2 and HTTP/1.1 alike),
so a budget kept in it, such as the bytes of request bodies buffered across connections,
is the whole process's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .limits import BodyBudget

if TYPE_CHECKING:  # the protocol classes use this module and must not load the framework
    from ..http import Request, Response

Handler = Callable[["Request", "Response"], Awaitable[None]]
# ``(method, path) -> (status, headers)`` for a request with a body that nothing could take
# whatever the body (a POST to a static file): answered at headers time, body unread.
EarlyAnswer = Callable[[str, str], "tuple[int, tuple[tuple[str, str], ...]] | None"]
# ``(method, path) -> True`` when the route reads the body as it arrives (``stream=True``).
StreamsBody = Callable[[str, str], bool]

READ_SIZE = 65536  # bytes asked of the socket per read


@dataclass
class ConnectionConfig:
    """Limits of one connection; one object shared by all connections of a server."""

    max_concurrent_streams: int = 128
    max_body_size: int = 64 * 1024 * 1024
    idle_timeout: float = 300.0
    initial_window_size: int = 1024 * 1024
    connection_window_size: int = 16 * 1024 * 1024
    max_header_list_size: int = 64 * 1024
    # Seconds a new connection has to send its first frame (the preface and SETTINGS).
    preface_timeout: float = 10.0
    # Request body bytes buffered across all connections of the process; past it, new
    # bodies get 503. A laptop survives the default.
    max_buffered_bodies: int = 256 * 1024 * 1024
    # Streams the client may reset per second (None: as many as may be open at once);
    # more is "rapid reset" (CVE-2023-44487) and gets GOAWAY ENHANCE_YOUR_CALM.
    max_resets_per_second: int | None = None
    # Frames per second that carry no request forward (PING, SETTINGS, PRIORITY, empty
    # DATA, WINDOW_UPDATE with nothing to send) before ENHANCE_YOUR_CALM.
    max_idle_frames_per_second: int = 1000
    # Seconds a request body may make no progress before 408 and a reset of its stream.
    body_timeout: float = 60.0
    # Seconds a response may wait for the peer (its window closed, or the socket not
    # draining) before it is reset and lets go of its file and buffers.
    send_timeout: float = 60.0
    bodies: BodyBudget = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.bodies = BodyBudget(self.max_buffered_bodies)

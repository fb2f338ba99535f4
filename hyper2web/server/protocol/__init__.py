"""The wire formats, sans-IO: bytes in, events out; calls in, bytes to send out.

``H2Protocol`` (on h2) and ``H11Protocol`` (on h11) each turn received bytes into the
events of ``events`` and the driver's calls (a response head, body data, a refusal, a
reset) into bytes to send. Neither imports curio nor touches a socket: the one connection
driver (``server.connection``) reads, writes, times and runs tasks for both.
"""

from typing import TYPE_CHECKING, Any

from .events import (
    BodyEnded,
    BodyReceived,
    ConnectionEnded,
    Event,
    RequestStarted,
    StreamAborted,
    WindowOpened,
)
from .h2proto import H2Protocol

if TYPE_CHECKING:
    from .h11proto import H11Protocol


def __getattr__(name: str) -> Any:
    """``H11Protocol`` loads h11 on first use: most starts never see an HTTP/1.1 client."""
    if name == "H11Protocol":
        from .h11proto import H11Protocol

        return H11Protocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["BodyEnded", "BodyReceived", "ConnectionEnded", "Event", "H11Protocol",
           "H2Protocol", "RequestStarted", "StreamAborted", "WindowOpened"]

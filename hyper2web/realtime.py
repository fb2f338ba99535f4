"""What handlers share beyond one request: ``app.state``, ``app.run_sync``, ``app.broadcast``.

A part of ``App``, as ``Serving`` is: app.py stays about routes and answers. Realtime pages
need three things a single handler cannot give them: a place for what outlives a request
(the open sockets of a live list), a way to run blocking work (sqlite3) without stalling
every connection, and a way to tell many sockets at once without the slowest page holding
everyone up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from ._curio import curio
from .exceptions import StreamClosed

if TYPE_CHECKING:  # websocket.py loads wsproto: only when a socket opens
    from .websocket import WebSocket

T = TypeVar("T")
BROADCAST_TIMEOUT = 1.0  # seconds a socket may take to accept a broadcast message


class Realtime:
    """``state``, ``run_sync`` and ``broadcast``: App's tools for pages that stay open."""

    # A plain dict for what open sockets and new handlers must share (the set of live
    # sockets, say). App makes it; ``replace_routes`` (a routes.py reload) keeps it, so
    # handlers registered after a reload still reach the sockets opened before it.
    state: dict[str, Any]

    @staticmethod
    async def run_sync(fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` in a worker thread and return its result.

        Every connection shares one event loop: sqlite3, file work and CPU work called
        straight from a handler would stall them all. ``await app.run_sync(fn, *args)``
        runs it in a thread (curio's pool) while the loop serves everyone else;
        exceptions come back to the handler as raised.
        """
        result: T = await curio.run_in_thread(fn, *args)
        return result

    @staticmethod
    async def broadcast(sockets: Iterable[WebSocket], message: str | bytes,
                        timeout: float = BROADCAST_TIMEOUT) -> int:
        """Send ``message`` to every socket in ``sockets`` at once; how many took it.

        One page on a slow network, or one that stopped reading, must not delay the
        others: the sends run side by side, and a socket that cannot take the message
        within ``timeout`` seconds, or is closed, is ended (its page sees the socket
        close and reconnects, or falls back to polling) and removed from ``sockets``
        when that is a set. The seconds count from the message's turn on its socket: a
        handler's own long send to a page that reads it ahead of the broadcast is waited
        for as long as it makes progress. A broadcast cut off (its task cancelled) ends
        the sockets it had not finished with: part of the message may be on its way.
        """
        return await broadcast(sockets, message, timeout)


async def broadcast(sockets: Iterable[WebSocket], message: str | bytes,
                    timeout: float = BROADCAST_TIMEOUT) -> int:
    """``App.broadcast``; see there."""
    if not isinstance(message, (str, bytes)):
        raise TypeError(f"a WebSocket message is str or bytes, not {type(message).__name__}")
    targets = list(sockets)  # a copy: handlers leave the set while we send
    drop = getattr(sockets, "discard", None)
    delivered = 0

    async def send(ws: WebSocket) -> None:
        nonlocal delivered
        took = False
        try:
            took = await ws._deliver(message, timeout)
        except StreamClosed:
            pass  # closed already: ended below, which costs nothing
        finally:
            # Not taken in time, closed, or cut off (the broadcasting task was cancelled):
            # part of the message may be on its way, so the socket's framing cannot go on.
            if not took:
                await ws.abort()
                if drop is not None:
                    drop(ws)
        if took:
            delivered += 1

    if len(targets) == 1:
        await send(targets[0])  # no task to start for one page
    elif targets:
        async with curio.TaskGroup() as group:
            for ws in targets:
                await group.spawn(send, ws)
    return delivered

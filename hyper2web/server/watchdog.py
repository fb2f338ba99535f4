"""What the listener's watchdog asks of every connection, HTTP/2 and HTTP/1.1 alike.

A write waits while the socket's buffers are full; a client that never reads would hold
its connection, tasks and files for ever. Each connection notes when its current write
began (``sending_since``, one clock read per write, no timer); once a second the listener
asks ``stalled`` and, past ``send_timeout``, ``abort``s the connection.
"""

from __future__ import annotations

import logging
from typing import Any

from .config import ConnectionConfig

log = logging.getLogger("hyper2web.server")


class Watched:
    """The watchdog's view of a connection; the connection sets the attributes."""

    config: ConnectionConfig
    client: tuple[str, int]
    sending_since: float  # when the write in progress began; 0: none
    lost: bool
    closed: bool
    _task: Any  # the task serving the connection, cancelled by ``abort``

    @property
    def peer(self) -> str:
        host, port = self.client[0], self.client[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def stalled(self, now: float) -> bool:
        """True when a write has waited longer than ``send_timeout`` for the peer to read."""
        return bool(self.sending_since) and now - self.sending_since > self.config.send_timeout

    async def abort(self, why: str) -> None:
        """Stop this connection from outside: one log line, then its task is cancelled."""
        if self.lost or self._task is None:
            return
        log.info("%s: %s; closing", self.peer, why)
        self.lost = True
        self.closed = True
        await self._task.cancel(blocking=False)

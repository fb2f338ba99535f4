"""Listening sockets, TLS handshakes, one task per connection, and a clean shutdown.

``Server.bind`` (``binding``) runs before the event loop, so a port in use or an unknown
host is reported as one clear ``ServerError`` before anything starts.
``Server.request_shutdown`` may be called from a signal handler or another thread: it only
writes a byte to a socket pair that the event loop watches.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .._curio import curio
from ..exceptions import ServerError
from . import protocol as protocols
from .binding import Bindings
from .config import ConnectionConfig, EarlyAnswer, Handler, StreamsBody
from .connection import Connection
from .limits import FD_RESERVE, raise_open_files_limit
from .plain import TLS_HANDSHAKE, first_byte, redirect_to_https
from .sockets import ServerSocket

log = logging.getLogger("hyper2web.server")

WATCH_EVERY = 1.0  # seconds between the watchdog's looks at stalled writes
STOP_CHECK_EVERY = 0.05  # seconds between looks at writes still waiting once stopping
# OpenSSL's reasons for the handshake failures a developer meets most, in plain words.
_HANDSHAKE_HINTS = {
    "HTTP_REQUEST": "plain HTTP sent to the HTTPS port (use an https:// URL)",
    "UNEXPECTED_EOF_WHILE_READING": "the client closed the connection during the handshake",
    "TLSV1_ALERT_UNKNOWN_CA":
        "the client does not trust the certificate (TLSV1_ALERT_UNKNOWN_CA)",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN":
        "the client does not trust the certificate (SSLV3_ALERT_CERTIFICATE_UNKNOWN)",
    "SSLV3_ALERT_BAD_CERTIFICATE":
        "the client rejected the certificate (SSLV3_ALERT_BAD_CERTIFICATE)",
}


class Server(Bindings):
    """An HTTPS + HTTP/2 server: binds ``host:port`` and serves ``handler`` on each stream."""

    def __init__(
        self,
        handler: Handler,
        ssl_context: ssl.SSLContext,
        host: str = "localhost",
        port: int = 5000,
        *,
        config: ConnectionConfig | None = None,
        handshake_timeout: float = 10.0,
        shutdown_grace: float = 0.5,
        background: Iterable[Callable[[], Awaitable[None]]] = (),
        reuse_port: bool = False,
        early: EarlyAnswer | None = None,
        http1: bool = True,
        streams: StreamsBody | None = None,
    ) -> None:
        self.handler = handler
        self.early = early
        self.streams = streams
        # HTTP/1.1 for clients that do not offer h2 (ALPN http/1.1 or none); off: closed.
        self.http1 = http1
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.config = config or ConnectionConfig()
        self.handshake_timeout = handshake_timeout
        self.shutdown_grace = shutdown_grace
        # Tasks that live as long as the server (e.g. the live-reload event pump).
        self.background = list(background)
        # Workers (``hyper2web.workers``) each listen on the port with a socket of their own.
        self.reuse_port = reuse_port
        self._listen = True
        self.sockets: list[socket.socket] = []
        self.connections: set[Connection] = set()
        # Accepted sockets (handshakes included) and how many may be open at once; past
        # that, new ones are closed at once with one log line a second.
        self.open_sockets = 0
        self.max_sockets: int | None = None
        self._refused = 0
        self._refused_said = 0.0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)

    # -- binding ---------------------------------------------------------------------------

    def rebind(self) -> None:
        """In a worker: listening sockets of its own on the addresses and port reserved.

        The reserved sockets (inherited from the parent) are closed here, not listened on:
        the kernel spreads connections over listening sockets only, one per worker.
        """
        addresses = [(sock.family, sock.getsockname()[0]) for sock in self.sockets]
        self.close_sockets()
        # The shutdown socket pair too is the parent's: a signal to this worker must wake
        # this worker's loop only.
        self._wake_r.close()
        self._wake_w.close()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._listen = True
        try:
            for family, address in addresses:
                self.sockets.append(self._bind_one(family, address, self.port))
        except OSError as exc:
            self.close_sockets()
            raise ServerError(self._bind_error(exc, address, self.port)) from None

    # -- running ---------------------------------------------------------------------------

    def run(self, ready: Callable[[Server], None] | None = None) -> None:
        """Bind if needed, serve until SIGINT/SIGTERM or ``request_shutdown``, then return."""
        if not self.sockets:
            self.bind()
        if self.max_sockets is None:
            limit = raise_open_files_limit()
            if limit:
                self.max_sockets = max(16, limit - max(FD_RESERVE, limit // 8))
        restore = self._install_signal_handlers()
        try:
            curio.run(self.serve, ready)
        finally:
            for signum, previous in restore.items():
                signal.signal(signum, previous)

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: self.request_shutdown())
        return previous

    def request_shutdown(self) -> None:
        """Ask the server to stop; safe from signal handlers and other threads."""
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    async def serve(self, ready: Callable[[Server], None] | None = None) -> None:
        """Accept connections until shutdown is requested; then GOAWAY, drain, close."""
        if not self.sockets:
            self.bind()
        listeners = [curio.io.Socket(s) for s in self.sockets]
        wake = curio.io.Socket(self._wake_r)
        async with curio.TaskGroup() as connections:
            accepting = [await curio.spawn(self._accept_loop, ls, connections, daemon=True)
                         for ls in listeners]
            for job in self.background:
                accepting.append(await curio.spawn(job, daemon=True))
            accepting.append(await curio.spawn(self._watchdog, daemon=True))
            if ready is not None:
                ready(self)
            await wake.recv(1)
            log.info("shutting down")
            for task in accepting:
                await task.cancel()
            self.close_sockets()
            await self._drain()
            # Past the grace period, a write to a peer that reads nothing (a download, a
            # WebSocket send, the last flush of a closing connection) would hold the stop
            # for ever, and the watchdog that ends such writes has stopped: until every
            # connection is gone, any write still waiting is aborted.
            enforcer = await curio.spawn(self._abort_writers, daemon=True)
        await enforcer.cancel()
        self._wake_r.close()
        self._wake_w.close()

    async def _watchdog(self) -> None:
        """Once a second, close connections whose peer stopped reading what we send.

        A write waits while the socket's buffers are full; a client that never reads
        would hold its connection, tasks and files for ever. Checking here costs the
        write itself nothing.
        """
        while True:
            await curio.sleep(WATCH_EVERY)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.stalled(now):
                    await conn.abort(f"the client read nothing for "
                                     f"{conn.config.send_timeout:g} s")

    async def _abort_writers(self) -> None:
        while True:
            for conn in list(self.connections):
                if conn.sending_since:
                    await conn.abort("still sending when the server stopped")
            await curio.sleep(STOP_CHECK_EVERY)

    async def _drain(self) -> None:
        """GOAWAY to every client, then give running responses a moment to finish.

        All within ``shutdown_grace``: a client that reads nothing must not hold the stop.
        """
        async with curio.ignore_after(self.shutdown_grace):
            for conn in list(self.connections):
                await conn.send_goaway()
            while any(conn.busy() for conn in self.connections):
                await curio.sleep(0.02)

    async def _accept_loop(self, listener: Any, group: Any) -> None:
        while True:
            try:
                client, addr = await listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self._refuse("out of file descriptors")
                    await curio.sleep(0.1)
                    continue
                raise
            if self.max_sockets is not None and self.open_sockets >= self.max_sockets:
                await client.close()
                self._refuse(f"{self.open_sockets} connections open, the most the "
                             "open-files limit allows")
                continue
            await group.spawn(self._serve_client, client, addr, daemon=True)

    def _refuse(self, why: str) -> None:
        """Count a refused connection; say so at most once a second."""
        self._refused += 1
        now = time.monotonic()
        if now - self._refused_said >= 1.0:
            log.warning("refused %d new connection%s: %s", self._refused,
                        "" if self._refused == 1 else "s", why)
            self._refused = 0
            self._refused_said = now

    async def _serve_client(self, client: Any, addr: tuple[Any, ...]) -> None:
        # One coroutine from here to the connection's read loop: an idle connection keeps
        # every frame on the way alive.
        self.open_sockets += 1
        try:
            peer = (str(addr[0]), int(addr[1]))
            where = f"{peer[0]}:{peer[1]}"
            ssl_sock = await self._start_tls(client, where)
            if ssl_sock is None:
                return
            try:
                tls = ServerSocket(ssl_sock)
                protocol = await self._handshake(tls, ssl_sock, where)
                if protocol is None:
                    return
                conn = Connection(tls, peer, self.handler, self.config,
                                  protocol_class(protocol),
                                  early=self.early, streams=self.streams)
                self.connections.add(conn)
                try:
                    await conn.run()
                finally:
                    self.connections.discard(conn)
            finally:
                ssl_sock.close()
        finally:
            self.open_sockets -= 1

    async def _start_tls(self, client: Any, where: str) -> ssl.SSLSocket | None:
        """The client's socket wrapped for TLS; None when it sent plain HTTP (redirected
        to https), nothing, or cannot be wrapped (then it is closed)."""
        raw = client._socket
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        try:
            first = await first_byte(client, self.handshake_timeout)
        except OSError:
            first = None
        if first is None:
            await client.close()
            return None
        if first != TLS_HANDSHAKE:
            try:
                await redirect_to_https(client, where, self._authority(), self.port,
                                        self.handshake_timeout)
            finally:
                await client.close()
            return None
        try:
            # Wrapping detaches ``raw``: from here on the SSL socket owns the descriptor.
            return self.ssl_context.wrap_socket(raw, server_side=True,
                                                do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            log.info("%s: cannot start TLS: %s", where, exc)
            raw.close()
            return None

    def _authority(self) -> str:
        """``host:port`` of this server as a URL names it (for requests without Host)."""
        host = "localhost" if self.host in ("", "0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    async def _handshake(self, tls: Any, ssl_sock: ssl.SSLSocket, where: str) -> str | None:
        """TLS handshake and ALPN: ``"h2"`` or ``"http/1.1"``; None (logged) on failure."""
        try:
            async with curio.timeout_after(self.handshake_timeout):
                await tls.do_handshake()
        except curio.TaskTimeout:
            log.info("%s: TLS handshake timed out after %g s", where, self.handshake_timeout)
            return None
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            log.info("%s: TLS handshake failed: %s", where,
                     _HANDSHAKE_HINTS.get(reason, reason))
            return None
        except OSError as exc:
            log.info("%s: TLS handshake failed: %s", where, exc.strerror or exc)
            return None
        protocol = ssl_sock.selected_alpn_protocol()
        if protocol == "h2":
            return "h2"
        if self.http1:
            return "http/1.1"  # offered http/1.1, or no ALPN at all (HTTP/1.1 is the default)
        # HTTP/2 only: the server learns only what both sides agreed on, not the client's
        # offer: None means the client offered no ALPN at all, or no "h2".
        why = "no 'h2' in its ALPN offer" if protocol is None else f"ALPN chose {protocol!r}"
        log.info("%s: client does not speak HTTP/2 (%s); closing (HTTP/1.1 is off)", where,
                 why)
        return None


def protocol_class(name: str) -> Any:
    """The protocol class for an ALPN name; HTTP/1.1's loads h11 on its first connection."""
    return protocols.H2Protocol if name == "h2" else protocols.H11Protocol

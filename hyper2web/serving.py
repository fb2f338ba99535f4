"""How an ``App`` serves: certificates, binding, ``up()`` with or without workers.

``App.up()`` is the one start path: ``hyper2web serve`` binds through ``make_server`` (to
try the next port and to word certificate problems) and then calls ``up()`` with hooks of
its own, so servers and workers are built here only. ``Serving`` is a part of ``App``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from .certs import notice_later, self_signed_notice, write_certificates
from .exceptions import ServerError
from .http import Request, Response
from .reload import LiveReload
from .server.config import ConnectionConfig
from .server.listener import Server
from .server.tls import make_ssl_context
from .static import StaticFiles
from .workers import WorkerPool

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger("hyper2web")


class Serving:
    """The serving half of ``App`` (see the module docstring)."""

    address: str
    port: int
    root: str
    auto_serve_static_file: bool
    certfile: str
    keyfile: str
    http1: bool
    max_body_size: int
    max_buffered_bodies: int
    live_reload: LiveReload | None
    static: StaticFiles | None
    server: Server | None

    if TYPE_CHECKING:  # provided by App
        handle: Callable[[Request, Response], Awaitable[None]]

        def early_answer(self, method: str, raw_path: str
                         ) -> tuple[int, tuple[tuple[str, str], ...]] | None: ...

        def streams_body(self, method: str, raw_path: str) -> bool: ...

        def _static_files(self) -> StaticFiles: ...

    def make_server(self, workers: int = 1) -> Server:
        """Check the folder and certificates, bind the port; raises ``ServerError``.

        With ``workers`` > 1 the port is only reserved here: each worker process listens
        with a socket of its own (``Server.rebind``).
        """
        if self.auto_serve_static_file and not os.path.isdir(self.root):
            raise ServerError(f"folder not found: {self.root}")
        self.static = self._static_files() if self.auto_serve_static_file else None
        ssl_context = make_ssl_context(self.certfile, self.keyfile, http1=self.http1)
        config = ConnectionConfig(max_body_size=self.max_body_size,
                                  max_buffered_bodies=self.max_buffered_bodies)
        background = [self.live_reload.pump] if self.live_reload is not None else []
        self.server = Server(self.handle, ssl_context, self.address, self.port, config=config,
                             background=background, reuse_port=workers > 1,
                             early=self.early_answer, http1=self.http1,
                             streams=self.streams_body)
        self.server.bind(listen=workers == 1)
        self.port = self.server.port
        return self.server

    def ensure_certificates(self) -> bool:
        """Create the certificate pair when neither file exists; True when created."""
        if os.path.exists(self.certfile) or os.path.exists(self.keyfile):
            return False
        folder = os.path.dirname(os.path.abspath(self.certfile))
        cert, key = write_certificates(folder, [self.address])
        if os.fspath(cert) != os.path.abspath(self.certfile):
            os.replace(cert, self.certfile)
        if os.fspath(key) != os.path.abspath(self.keyfile):
            os.replace(key, self.keyfile)
        return True

    @property
    def url(self) -> str:
        """The https URL a browser on this machine opens."""
        host = self.address
        if host in ("0.0.0.0", "::", ""):
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}/"

    def up(self, ready: Callable[[App], None] | None = None, workers: int = 1, *,
           on_start: Callable[[], None] | None = None,
           on_stop: Callable[[], None] | None = None, announce: bool = True) -> None:
        """Start serving and block until Ctrl+C or SIGTERM. Call it after registering routes.

        ``workers`` > 1 serves from that many processes sharing the port (one per core is
        the most that helps); a worker that dies is replaced. ``ready(app)`` runs once,
        when every process listens. ``on_start``/``on_stop`` run in each serving process
        (each worker, or this one) around its server: a file watcher, a log writer.
        ``announce=False`` leaves out the "serving ..." line and the certificate notice
        (``hyper2web serve`` prints a banner of its own). When ``make_server`` already
        bound the port, that server is used.
        """
        if not logging.getLogger().handlers and not log.handlers:
            logging.basicConfig(level=logging.INFO, format="%(message)s")
        try:
            server = self.server
            if server is None or not server.sockets:
                if self.ensure_certificates():
                    log.info("created a self-signed certificate: %s and %s",
                             self.certfile, self.keyfile)
                server = self.make_server(workers)
        except ServerError as exc:
            log.error("hyper2web: %s", exc)
            raise SystemExit(1) from None

        def on_ready(_: Server | None = None) -> None:
            if announce:
                extra = f", {workers} workers" if workers > 1 else ""
                log.info("serving %s at %s (Ctrl+C to stop%s)", self.root, self.url, extra)
                notice_later(lambda: self_signed_notice(self.certfile), log.warning)
            if ready is not None:
                ready(cast("App", self))

        def serve(ready_here: Callable[[Server], None]) -> None:
            if on_start is not None:
                on_start()
            try:
                server.run(ready_here)
            finally:
                if on_stop is not None:
                    on_stop()

        if workers == 1:
            serve(on_ready)
            return

        def worker(index: int, listening: Callable[[], None]) -> None:
            try:
                server.rebind()
            except ServerError as exc:
                log.error("hyper2web: worker %d: %s", index, exc)
                raise SystemExit(1) from None
            serve(lambda _: listening())

        code = WorkerPool(workers, worker).run(on_ready)
        if code:
            raise SystemExit(code)

    def shutdown(self) -> None:
        """Stop a running ``up()``; safe from another thread or a signal handler."""
        if self.server is not None:
            self.server.request_shutdown()

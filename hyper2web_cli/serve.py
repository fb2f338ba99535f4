"""``hyper2web serve``: its options, the App they configure, the port it binds, the banner.

The biggest command, so it has a module of its own; ``cli.py`` adds it to the group. Which
certificate it serves with is decided in ``serve_certs.py``. As everywhere in the command
line, every error a user can cause ends as a ``click.ClickException``, never a traceback.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import click

import hyper2web
from hyper2web import App
from hyper2web.app import MAX_WS_MESSAGE
from hyper2web.certs import pair_problem
from hyper2web.exceptions import CertificateError, PortInUse, ServerError
from hyper2web.reload import LiveReload

from .config import ConfigCommand, config_used
from .context import CONTEXT
from .notices import check_trust
from .routes import RoutesError, find_routes, load_routes
from .serve_certs import certificates_for
from .terminal import AccessLog, network_addresses, qr_lines
from .watch import SiteWatcher


def _configure_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    # The access log goes through App.access_logger (see serve), not this logger.
    logging.getLogger("hyper2web.access").setLevel(logging.WARNING)


# HTTP/2 forbids connection-specific header fields (RFC 9113 section 8.2.2).
_FORBIDDEN_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                      "upgrade", "te", "content-length"}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _parse_headers(ctx: click.Context, param: click.Parameter,
                   values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``"Name: value"`` strings -> pairs, refusing what no HTTP/2 response may carry."""
    result = []
    for text in values:
        name, sep, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise click.BadParameter(f"{text!r} is not \"Name: value\"", ctx, param)
        if not _TOKEN.match(name):
            raise click.BadParameter(f"{name!r} is not a valid header name", ctx, param)
        if name.lower() in _FORBIDDEN_HEADERS:
            raise click.BadParameter(f"{name} cannot be set on every response", ctx, param)
        if "\r" in value or "\n" in value:
            raise click.BadParameter(f"the value of {name} has a line break", ctx, param)
        result.append((name.lower(), value))
    return result


def _parse_proxies(ctx: click.Context, param: click.Parameter,
                   values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``"/api=http://localhost:8000"`` strings -> ``(prefix, url)`` pairs."""
    result = []
    for text in values:
        prefix, sep, url = text.partition("=")
        prefix, url = prefix.strip(), url.strip()
        if not sep or not prefix.startswith("/"):
            raise click.BadParameter(f"{text!r} is not PREFIX=URL (e.g. /api=http://"
                                     "localhost:8000)", ctx, param)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(f"{url!r} is not an http:// or https:// URL", ctx, param)
        result.append((prefix, url))
    return result


@click.command(cls=ConfigCommand, context_settings=CONTEXT,
              short_help="Serve a folder over HTTPS, with live reload.")
@click.argument("root", default="./public", type=click.Path(path_type=Path))
@click.option("--host", default="localhost", show_default=True,
              help="Address to listen on; 0.0.0.0 makes the site reachable from your network.")
@click.option("--port", "-p", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--cert", type=click.Path(dir_okay=False, readable=False, path_type=Path),
              help="TLS certificate (PEM). Default: localhost.crt.pem here, or a generated one.")
@click.option("--key", type=click.Path(dir_okay=False, readable=False, path_type=Path),
              help="Private key of --cert (PEM).")
@click.option("--routes", "routes_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Python file whose setup(app) registers API handlers. "
                   "Default: routes.py beside ROOT.")
@click.option("--no-routes", is_flag=True, help="Do not load routes.py.")
@click.option("--spa", is_flag=True,
              help="Answer unknown page URLs (no extension, browser navigation) with "
                   "index.html, for client-side routing.")
@click.option("--no-list", is_flag=True,
              help="Answer 404 for folders without index.html instead of listing them.")
@click.option("--header", "-H", "headers", multiple=True, callback=_parse_headers,
              metavar='"NAME: VALUE"', help="Add a header to every response (repeatable).")
@click.option("--cors", is_flag=True,
              help="Allow cross-origin requests: answer preflights and add "
                   "access-control-allow-origin: * to every response.")
@click.option("--sw-allowed", metavar="PATH",
              help="Send service-worker-allowed: PATH with service worker scripts, so a "
                   "worker under /js/ may control a wider scope.")
@click.option("--early-hints", is_flag=True,
              help="Send 103 Early Hints with the preload links of HTML pages.")
@click.option("--no-reload", is_flag=True,
              help="Turn live reload off: no file watching, no script injected into pages.")
@click.option("--ignore", "ignores", multiple=True, metavar="GLOB",
              help="Do not reload for files matching GLOB (repeatable); .git, node_modules, "
                   "__pycache__, .venv and editor swap files are always ignored.")
@click.option("--watch", "watches", multiple=True, metavar="PATH",
              type=click.Path(exists=True, path_type=Path),
              help="Also reload the pages when PATH changes (repeatable): e.g. your "
                   "backend's templates, with --proxy.")
@click.option("--poll", is_flag=True,
              help="Watch files by polling (for network drives and WSL's /mnt; chosen "
                   "automatically where change events do not arrive).")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the site in the default browser once it is served.")
@click.option("--strict-port", is_flag=True,
              help="Fail when the port is in use instead of trying the next ones.")
@click.option("--http2-only", is_flag=True,
              help="Refuse clients that do not speak HTTP/2 instead of serving them "
                   "HTTP/1.1.")
@click.option("--proxy", "proxies", multiple=True, metavar="PREFIX=URL",
              callback=_parse_proxies,
              help="Forward PREFIX to your backend, e.g. /api=http://localhost:8000 "
                   "(repeatable). A URL with a path replaces the prefix.")
@click.option("--proxy-change-origin", is_flag=True,
              help="Send the backend its own Host instead of the browser's.")
@click.option("--proxy-no-inject", is_flag=True,
              help="Leave the backend's HTML pages without the live reload script.")
@click.option("--proxy-insecure", is_flag=True,
              help="Accept a self-signed certificate from an https:// backend.")
@click.option("--proxy-timeout", default=60.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(0, min_open=True),
              help="Seconds the backend may take to begin its answer (504 past them).")
@click.option("--ws-max-message", default=MAX_WS_MESSAGE, show_default=True, metavar="BYTES",
              type=click.IntRange(1),
              help="Largest WebSocket message a client may send; a larger one closes its "
                   "socket (1009).")
@click.option("--quiet", "-q", is_flag=True, help="Do not log each request.")
@click.option("--workers", "-w", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Serve from this many processes sharing the port (up to one per core).")
@click.pass_context
def serve(ctx: click.Context, **values: Any) -> None:
    """Serve ROOT (default ./public) over HTTPS and HTTP/2, with live reload.

    Every option can also be set in hyper2web.toml beside ROOT; options typed here win.
    """
    config_file = config_used(ctx)
    opt = SimpleNamespace(**values)
    root: Path = opt.root
    if not root.exists():
        raise click.ClickException(f"folder not found: {root}")
    if not root.is_dir():
        raise click.ClickException(f"not a folder: {root}")
    _configure_logging(opt.quiet)
    certfile, keyfile = certificates_for(root, opt.host, opt.cert, opt.key)
    app = App(address=opt.host, port=opt.port, root=root, certfile=certfile, keyfile=keyfile,
              spa=opt.spa, listing=not opt.no_list, early_hints=opt.early_hints,
              sw_allowed=opt.sw_allowed, cors=opt.cors, headers=opt.headers,
              http1=not opt.http2_only, max_ws_message=opt.ws_max_message,
              live_reload=None if opt.no_reload else LiveReload())
    for prefix, url in opt.proxies:
        app.proxy(prefix, url, change_origin=opt.proxy_change_origin,
                  verify=not opt.proxy_insecure, inject=not opt.proxy_no_inject,
                  timeout=opt.proxy_timeout)
    access_log = None if opt.quiet else AccessLog()
    app.access_logger = access_log
    routes_path = None if opt.no_routes else (opt.routes_file or find_routes(root))
    if routes_path is not None:
        if not routes_path.is_file():
            raise click.ClickException(f"routes file not found: {routes_path}")
        app.private_files.append(str(routes_path))
        try:
            load_routes(routes_path, app)
        except RoutesError as exc:
            raise click.ClickException(f"cannot load routes: {exc}") from None
    _bind(app, certfile, keyfile, strict=opt.strict_port, workers=opt.workers)

    def banner(_: object = None) -> None:
        _print_banner(app, root, routes_path, certfile, config_file, opt.workers)
        check_trust(certfile, click.echo)
        if opt.open_browser:
            import webbrowser  # only for --open: it costs start-up time

            threading.Thread(target=webbrowser.open, args=(app.url,), daemon=True).start()

    watchers: list[SiteWatcher] = []

    def start() -> None:
        """In each serving process: its own watcher (so every tab reloads, whichever
        worker holds its connection)."""
        if app.live_reload is not None:
            watcher = SiteWatcher(app, root, routes_path, ignore=opt.ignores, poll=opt.poll,
                                  extra=opt.watches)
            watcher.start()
            watchers.append(watcher)

    def stop() -> None:
        for watcher in watchers:
            watcher.stop()
        if access_log is not None:
            access_log.flush()

    try:
        app.up(banner, workers=opt.workers, on_start=start, on_stop=stop, announce=False)
    except SystemExit as exc:
        if exc.code:
            what = "the workers stopped" if opt.workers > 1 else "the server stopped"
            raise click.ClickException(f"{what} (see above)") from None


PORT_TRIES = 20


def _bind(app: App, certfile: Path, keyfile: Path, *, strict: bool, workers: int = 1) -> None:
    """Bind the app's port (``App.up`` then serves on it); when it is taken, the next free
    one (unless ``strict``)."""
    wanted = app.port
    for attempt in range(1 if strict or wanted == 0 else PORT_TRIES):
        try:
            app.make_server(workers)
        except PortInUse as exc:
            if strict or wanted == 0 or attempt == PORT_TRIES - 1 or app.port >= 65535:
                raise click.ClickException(
                    f"{exc} (pick another with --port, or stop the server that holds it)"
                ) from None
            app.port += 1
            continue
        except CertificateError as exc:
            raise click.ClickException(pair_problem(certfile, keyfile) or str(exc)) from None
        except ServerError as exc:
            raise click.ClickException(str(exc)) from None
        if app.port != wanted and wanted != 0:
            click.echo(f"  port {wanted} is in use, using {app.port} instead", err=True)
        return
    raise AssertionError("unreachable")  # pragma: no cover


def _print_banner(app: App, root: Path, routes_path: Path | None, certfile: Path,
                  config_file: Path | None, workers: int = 1) -> None:
    click.echo(f"\n  {click.style('hyper2web', bold=True)} {hyper2web.__version__}  "
               f"serving {root}\n")
    click.echo(f"  Local:   {click.style(app.url, fg='cyan')}")
    if app.address in ("0.0.0.0", "::", ""):
        for address in network_addresses():
            url = f"https://{address}:{app.port}/"
            click.echo(f"  Network: {click.style(url, fg='cyan')}")
            for line in qr_lines(url):
                click.echo(f"    {line}")
    if routes_path is not None:
        count = len(app.router.routes)
        click.echo(f"  Routes:  {routes_path} ({count} handler{'' if count == 1 else 's'})")
    for entry in app.proxies:
        click.echo(f"  Proxy:   {entry.prefix} -> {entry.upstream.url}")
    click.echo(f"  TLS:     {certfile}")
    if config_file is not None:
        click.echo(f"  Config:  {config_file}")
    if app.live_reload is not None:
        click.echo(f"  Reload:  watching {root}" + (" and routes" if routes_path else ""))
    if workers > 1:
        click.echo(f"  Workers: {workers} processes sharing port {app.port}")
    click.echo("\n  Ctrl+C to stop\n")

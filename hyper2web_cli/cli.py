"""The click commands. Thin on purpose: parse, call the framework, print one clear line.

Every error a user can cause ends as a ``click.ClickException`` (``Error: ...`` and exit
code 1), never a traceback.
"""

from __future__ import annotations

import logging
import re
import threading
import webbrowser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click

import hyper2web
from hyper2web import App
from hyper2web.certs import (
    CERT_NAME,
    KEY_NAME,
    certificate_hosts,
    hosts_with_defaults,
    pair_problem,
    write_certificates,
)
from hyper2web.exceptions import CertificateError, PortInUse, ServerError
from hyper2web.reload import LiveReload
from hyper2web.server.listener import Server

from .config import apply_config
from .routes import RoutesError, find_routes, load_routes
from .scaffold import ScaffoldError, create_project
from .terminal import AccessLogHandler, network_addresses, qr_lines
from .watch import SiteWatcher

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(hyper2web.__version__, "-V", "--version", prog_name="hyper2web")
def main() -> None:
    """A fast HTTPS + HTTP/2 development server for static sites and PWAs."""


def _app_cert_dir() -> Path:
    return Path(click.get_app_dir("hyper2web")) / "certs"


def _find_certificates(root: Path) -> tuple[Path, Path] | None:
    """The original names in the working folder, else beside the served folder."""
    for folder in (Path.cwd(), root.resolve().parent):
        cert, key = folder / CERT_NAME, folder / KEY_NAME
        if cert.is_file() and key.is_file():
            return cert, key
    return None


def _certificates_for(root: Path, host: str, cert: Path | None,
                      key: Path | None) -> tuple[Path, Path]:
    if (cert is None) != (key is None):
        raise click.ClickException("--cert and --key go together: give both or neither")
    if cert is not None and key is not None:
        return cert, key
    found = _find_certificates(root)
    if found is not None:
        return found
    folder = _app_cert_dir()
    cert, key = folder / CERT_NAME, folder / KEY_NAME
    known = _hosts_or_empty(cert) if key.is_file() else []
    if not known or host not in (*known, "0.0.0.0", "::"):
        # Keep the hosts of the previous certificate, so that switching --host back and forth
        # does not replace a certificate the browser has already been told to accept.
        names = hosts_with_defaults([*known, host])
        write_certificates(folder, names)
        click.echo(f"  created a certificate for {', '.join(names)} in {folder}", err=True)
    return cert, key


def _hosts_or_empty(cert: Path) -> list[str]:
    try:
        return certificate_hosts(cert)
    except (OSError, ValueError):
        return []


def _configure_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    access = logging.getLogger("hyper2web.access")
    access.propagate = False
    if not any(isinstance(h, AccessLogHandler) for h in access.handlers):
        access.addHandler(AccessLogHandler())
    access.setLevel(logging.WARNING if quiet else logging.INFO)


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


@main.command(context_settings=CONTEXT)
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
@click.option("--poll", is_flag=True,
              help="Watch files by polling (for network drives and WSL's /mnt; chosen "
                   "automatically where change events do not arrive).")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the site in the default browser once it is served.")
@click.option("--strict-port", is_flag=True,
              help="Fail when the port is in use instead of trying the next ones.")
@click.option("--quiet", "-q", is_flag=True, help="Do not log each request.")
@click.pass_context
def serve(ctx: click.Context, **values: Any) -> None:
    """Serve ROOT (default ./public) over HTTPS and HTTP/2, with live reload.

    Every option can also be set in hyper2web.toml beside ROOT; options typed here win.
    """
    config_file = apply_config(ctx, values)
    opt = SimpleNamespace(**values)
    root: Path = opt.root
    if not root.exists():
        raise click.ClickException(f"folder not found: {root}")
    if not root.is_dir():
        raise click.ClickException(f"not a folder: {root}")
    _configure_logging(opt.quiet)
    certfile, keyfile = _certificates_for(root, opt.host, opt.cert, opt.key)
    app = App(address=opt.host, port=opt.port, root=root, certfile=certfile, keyfile=keyfile,
              spa=opt.spa, listing=not opt.no_list, early_hints=opt.early_hints,
              sw_allowed=opt.sw_allowed, cors=opt.cors, headers=opt.headers,
              live_reload=None if opt.no_reload else LiveReload())
    routes_path = None if opt.no_routes else (opt.routes_file or find_routes(root))
    if routes_path is not None:
        if not routes_path.is_file():
            raise click.ClickException(f"routes file not found: {routes_path}")
        try:
            load_routes(routes_path, app)
        except RoutesError as exc:
            raise click.ClickException(f"cannot load routes: {exc}") from None
    server = _bind(app, certfile, keyfile, strict=opt.strict_port)

    def banner(_: object) -> None:
        _print_banner(app, root, routes_path, certfile, config_file)
        if opt.open_browser:
            threading.Thread(target=webbrowser.open, args=(app.url,), daemon=True).start()

    watcher = None
    if app.live_reload is not None:
        watcher = SiteWatcher(app, root, routes_path, ignore=opt.ignores, poll=opt.poll)
        watcher.start()
    try:
        server.run(banner)
    finally:
        if watcher is not None:
            watcher.stop()


PORT_TRIES = 20


def _bind(app: App, certfile: Path, keyfile: Path, *, strict: bool) -> Server:
    """Bind the app's port; when it is taken, the next free one (unless ``strict``)."""
    wanted = app.port
    for attempt in range(1 if strict or wanted == 0 else PORT_TRIES):
        try:
            server = app.make_server()
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
        return server
    raise AssertionError("unreachable")  # pragma: no cover


def _print_banner(app: App, root: Path, routes_path: Path | None, certfile: Path,
                  config_file: Path | None) -> None:
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
        click.echo(f"  Routes:  {routes_path} ({len(app.router.routes)} handlers)")
    click.echo(f"  TLS:     {certfile}")
    if config_file is not None:
        click.echo(f"  Config:  {config_file}")
    if app.live_reload is not None:
        click.echo(f"  Reload:  watching {root}" + (" and routes" if routes_path else ""))
    click.echo("\n  Ctrl+C to stop\n")


@main.command(context_settings=CONTEXT)
@click.option("--out", "out_dir", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write localhost.crt.pem and localhost.key into.")
@click.option("--host", "hosts", multiple=True,
              help="Extra host name or IP address the certificate is valid for (repeatable).")
def certs(out_dir: Path, hosts: tuple[str, ...]) -> None:
    """Create a certificate for localhost, 127.0.0.1 and ::1 (plus each --host)."""
    try:
        cert, key = write_certificates(out_dir, hosts)
    except OSError as exc:
        raise click.ClickException(f"cannot write certificates to {out_dir}: "
                                   f"{exc.strerror or exc}") from None
    click.echo(f"certificate: {cert}")
    click.echo(f"key:         {key} (readable by you only)")
    click.echo(f"valid for:   {', '.join(certificate_hosts(cert))}")


@main.command(context_settings=CONTEXT)
@click.argument("name", type=click.Path(path_type=Path))
def init(name: Path) -> None:
    """Create a new project NAME with public/, routes.py and certificates."""
    try:
        create_project(name)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot create {name}: {exc.strerror or exc}") from None
    click.echo(f"Created {name}/ with public/, routes.py and a certificate.\n")
    click.echo("Next:")
    click.echo(f"  cd {name}")
    click.echo("  hyper2web serve")

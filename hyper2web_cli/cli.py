"""The click commands. Thin on purpose: parse, call the framework, print one clear line.

Every error a user can cause ends as a ``click.ClickException`` (``Error: ...`` and exit
code 1), never a traceback.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

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
from hyper2web.exceptions import CertificateError, ServerError
from hyper2web.reload import LiveReload

from .routes import RoutesError, find_routes, load_routes
from .scaffold import ScaffoldError, create_project
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
    if quiet:
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
@click.option("--quiet", "-q", is_flag=True, help="Do not log each request.")
def serve(root: Path, host: str, port: int, cert: Path | None, key: Path | None,
          routes_file: Path | None, no_routes: bool, spa: bool, no_list: bool,
          headers: list[tuple[str, str]], cors: bool, sw_allowed: str | None,
          early_hints: bool, no_reload: bool, ignores: tuple[str, ...], poll: bool,
          quiet: bool) -> None:
    """Serve ROOT (default ./public) over HTTPS and HTTP/2."""
    if not root.exists():
        raise click.ClickException(f"folder not found: {root}")
    if not root.is_dir():
        raise click.ClickException(f"not a folder: {root}")
    _configure_logging(quiet)
    certfile, keyfile = _certificates_for(root, host, cert, key)
    app = App(address=host, port=port, root=root, certfile=certfile, keyfile=keyfile,
              spa=spa, listing=not no_list, early_hints=early_hints, sw_allowed=sw_allowed,
              cors=cors, headers=headers,
              live_reload=None if no_reload else LiveReload())
    routes_path = None if no_routes else (routes_file or find_routes(root))
    if routes_path is not None:
        if not routes_path.is_file():
            raise click.ClickException(f"routes file not found: {routes_path}")
        try:
            load_routes(routes_path, app)
        except RoutesError as exc:
            raise click.ClickException(f"cannot load routes: {exc}") from None
    try:
        server = app.make_server()
    except CertificateError as exc:
        raise click.ClickException(pair_problem(certfile, keyfile) or str(exc)) from None
    except ServerError as exc:
        hint = "" if "in use" not in str(exc) else " (pick another with --port, or stop the " \
                                                   "server that holds it)"
        raise click.ClickException(f"{exc}{hint}") from None

    def banner(_: object) -> None:
        click.echo(f"\n  hyper2web {hyper2web.__version__}  serving {root}\n")
        click.echo(f"  Local:   {app.url}")
        if routes_path is not None:
            click.echo(f"  Routes:  {routes_path} ({len(app.router.routes)} handlers)")
        click.echo(f"  TLS:     {certfile}")
        if app.live_reload is not None:
            click.echo(f"  Reload:  watching {root}" + (" and routes" if routes_path else ""))
        click.echo("\n  Ctrl+C to stop\n", err=False)

    watcher = None
    if app.live_reload is not None:
        watcher = SiteWatcher(app, root, routes_path, ignore=ignores, poll=poll)
        watcher.start()
    try:
        server.run(banner)
    finally:
        if watcher is not None:
            watcher.stop()


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

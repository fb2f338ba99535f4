"""The click commands. Thin on purpose: parse, call the framework, print one clear line.

Every error a user can cause ends as a ``click.ClickException`` (``Error: ...`` and exit
code 1), never a traceback.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click

import hyper2web
from hyper2web import App
from hyper2web.certs import (
    CERT_NAME,
    KEY_NAME,
    pair_problem,
)
from hyper2web.exceptions import CertificateError, PortInUse, ServerError
from hyper2web.reload import LiveReload

from . import certs as local_ca
from . import trust
from .config import ConfigCommand, config_used
from .notices import check_trust
from .routes import RoutesError, find_routes, load_routes
from .scaffold import TEMPLATE_NAMES, ScaffoldError, create_project
from .terminal import AccessLog, network_addresses, qr_lines
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
    """The pair to serve with: given, found (renewed when stale), or made by the local CA."""
    if (cert is None) != (key is None):
        raise click.ClickException("--cert and --key go together: give both or neither")
    if cert is not None and key is not None:
        return cert, key
    found = _find_certificates(root)
    if found is not None:
        reason = local_ca.renewal_reason(*found, host)
        if reason is not None:
            _issue(found[0].parent, host, f"renewed the certificate in {found[0].parent}: "
                                          f"{reason}")
        return found
    folder = _app_cert_dir()
    cert, key = folder / CERT_NAME, folder / KEY_NAME
    reason = local_ca.renewal_reason(cert, key, host)
    if reason is None:
        info = local_ca.inspect_leaf(cert, local_ca.load_authority())
        if info is None or not info.by_our_ca:
            reason = "the local certificate authority changed"
    if reason is not None:
        _issue(folder, host, f"created a certificate for {{hosts}} in {folder}")
    return cert, key


def _issue(folder: Path, host: str, message: str) -> None:
    """Issue a leaf for ``host`` in ``folder``, keeping the hosts the old one had."""
    old = local_ca.inspect_leaf(folder / CERT_NAME)
    hosts = local_ca.default_hosts([*(old.hosts if old else []), host])
    try:
        ca, fresh_ca = local_ca.authority()
        local_ca.issue(folder, hosts)
    except OSError as exc:
        raise click.ClickException(f"cannot write a certificate to {exc.filename or folder}: "
                                   f"{exc.strerror or exc}") from None
    if fresh_ca:
        _say_ca_created(ca, err=True)
    click.echo("  " + message.replace("{hosts}", ", ".join(hosts)), err=True)


def _say_ca_created(ca: local_ca.Authority, err: bool = False) -> None:
    click.echo(f"  created a local certificate authority: {ca.path}\n"
               "  run 'hyper2web certs --install' once so browsers trust it", err=err)


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


@main.command(cls=ConfigCommand, context_settings=CONTEXT,
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
    certfile, keyfile = _certificates_for(root, opt.host, opt.cert, opt.key)
    app = App(address=opt.host, port=opt.port, root=root, certfile=certfile, keyfile=keyfile,
              spa=opt.spa, listing=not opt.no_list, early_hints=opt.early_hints,
              sw_allowed=opt.sw_allowed, cors=opt.cors, headers=opt.headers,
              http1=not opt.http2_only,
              live_reload=None if opt.no_reload else LiveReload())
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
            watcher = SiteWatcher(app, root, routes_path, ignore=opt.ignores, poll=opt.poll)
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
        click.echo(f"  Routes:  {routes_path} ({len(app.router.routes)} handlers)")
    click.echo(f"  TLS:     {certfile}")
    if config_file is not None:
        click.echo(f"  Config:  {config_file}")
    if app.live_reload is not None:
        click.echo(f"  Reload:  watching {root}" + (" and routes" if routes_path else ""))
    if workers > 1:
        click.echo(f"  Workers: {workers} processes sharing port {app.port}")
    click.echo("\n  Ctrl+C to stop\n")


@main.command(context_settings=CONTEXT, short_help="Make and trust local HTTPS certificates.")
@click.option("--out", "out_dir", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write localhost.crt.pem and localhost.key into.")
@click.option("--host", "hosts", multiple=True,
              help="Extra host name or IP address the certificate is valid for (repeatable).")
@click.option("--install", is_flag=True,
              help="Trust the local certificate authority in this machine's trust stores.")
@click.option("--uninstall", is_flag=True, help="Remove the local CA from the trust stores.")
@click.option("--status", is_flag=True,
              help="Show the local CA, where it is trusted, and each certificate's hosts "
                   "and expiry.")
@click.option("--ca-path", is_flag=True,
              help="Print the path of the CA certificate (to copy to a phone).")
def certs(out_dir: Path, hosts: tuple[str, ...], install: bool, uninstall: bool,
          status: bool, ca_path: bool) -> None:
    """Create a certificate for local HTTPS, signed by your local certificate authority.

    Valid for localhost, *.localhost, 127.0.0.1, ::1, this machine's name and network
    addresses, and each --host. Trust the authority once with --install.
    """
    if sum((install, uninstall, status, ca_path)) > 1:
        raise click.ClickException("use one of --install, --uninstall, --status, --ca-path")
    if ca_path:
        ca, created = _authority()
        if created:
            _say_ca_created(ca, err=True)
        click.echo(ca.path)
        return
    if status:
        _certs_status(out_dir)
        return
    if install or uninstall:
        _certs_trust(install)
        return
    ca, created = _authority()
    existing = [path for path in (out_dir / CERT_NAME, out_dir / KEY_NAME) if path.exists()]
    try:
        cert, key, ca = local_ca.issue(out_dir, local_ca.default_hosts(list(hosts)))
    except OSError as exc:
        raise click.ClickException(f"cannot write certificates to {out_dir}: "
                                   f"{exc.strerror or exc}") from None
    info = local_ca.inspect_leaf(cert)
    assert info is not None
    if created:
        click.echo(f"created a local certificate authority: {ca.path}")
    if existing:
        click.echo(f"replaced the existing pair: {cert.absolute()} and {key.absolute()}")
    click.echo(f"certificate: {cert}")
    click.echo(f"key:         {key} (readable by you only)")
    click.echo(f"valid for:   {', '.join(info.hosts)}")
    click.echo(f"expires:     {info.not_after:%Y-%m-%d}")
    click.echo(f"signed by:   {ca.name} ({ca.path})")
    if not any(store.has(trust.nickname(ca)) for store in trust.stores()):
        click.echo("\nBrowsers do not trust it yet: run 'hyper2web certs --install' once.")


def _authority() -> tuple[local_ca.Authority, bool]:
    """The user's CA (made on first use), or a clear error when its folder is not writable."""
    try:
        return local_ca.authority()
    except OSError as exc:
        raise click.ClickException(
            f"cannot create the local certificate authority in {local_ca.data_dir()}: "
            f"{exc.strerror or exc}") from None


def _certs_trust(install: bool) -> None:
    ca, created = _authority() if install else (local_ca.load_authority(), False)
    if ca is None:
        click.echo("There is no local certificate authority: nothing to remove.")
        return
    if created:
        click.echo(f"created a local certificate authority: {ca.path}")
    nickname = trust.nickname(ca)
    done = 0
    for store in trust.stores():
        result = store.install(ca.path, nickname) if install else store.uninstall(nickname)
        if result.ok:
            done += 1
            click.echo(f"  {'trusted in' if install else 'removed from'} {result.store}")
        elif install or result.message:
            click.echo(f"  not {'trusted in' if install else 'removed from'} {result.store}: "
                       f"{result.message or 'failed'}")
    if install and not done:
        raise click.ClickException("the CA could not be added to any trust store")
    if install:
        click.echo(f"\n{ca.name} is trusted; restart the browser if it was open.")
    elif not done:
        click.echo(f"{ca.name} was not in any trust store.")


def _certs_status(out_dir: Path) -> None:
    ca = local_ca.load_authority()
    if ca is None:
        click.echo("Local CA: none yet (created by 'hyper2web certs' or 'hyper2web serve')")
    else:
        click.echo(f"Local CA: {ca.name}")
        click.echo(f"  file:     {ca.path}")
        click.echo(f"  expires:  {ca.cert.not_valid_after_utc:%Y-%m-%d}")
        nickname = trust.nickname(ca)
        for store in trust.stores():
            if isinstance(store, trust.NSSStore) and shutil.which("certutil") is None:
                click.echo(f"  {'unknown':<12} {store.name}: certutil not found, "
                           f"{trust.NSS_HINT}")
                continue
            mark = "trusted" if store.has(nickname) else "not trusted"
            click.echo(f"  {mark:<12} {store.name}")
    seen: set[Path] = set()
    for folder in (out_dir, _app_cert_dir()):
        path = (folder / CERT_NAME).resolve()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        info = local_ca.inspect_leaf(path, ca)
        if info is None:
            click.echo(f"Certificate {path}: unreadable")
            continue
        issuer = "signed by the local CA" if info.by_our_ca else "not signed by the local CA"
        click.echo(f"Certificate {path}")
        click.echo(f"  hosts:    {', '.join(info.hosts)}")
        click.echo(f"  expires:  {info.not_after:%Y-%m-%d} ({issuer})")


@main.command(context_settings=CONTEXT, short_help="Create a new project: a PWA and routes.py.")
@click.argument("name", type=click.Path(path_type=Path))
@click.option("--template", "-t", type=click.Choice(TEMPLATE_NAMES), default="default",
              show_default=True,
              help="default: an installable PWA that works offline (manifest, icons, "
                   "service worker, offline page); minimal: public/index.html and routes.py.")
def init(name: Path, template: str) -> None:
    """Create a new project NAME with public/, routes.py and certificates."""
    try:
        create_project(name, template)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot create {name}: {exc.strerror or exc}") from None
    click.echo(f"Created {name}/ with public/, routes.py and a certificate.\n")
    click.echo("Next:")
    click.echo(f"  cd {name}")
    from . import check as pwa_check

    ca = local_ca.load_authority()
    if ca is None or not pwa_check.trusted_in(ca):
        click.echo("  hyper2web certs --install   # once: browsers trust it (service workers "
                   "need that)")
    click.echo("  hyper2web serve")
    if template == "default":
        click.echo("  hyper2web check             # is it an installable PWA?")


@main.command(context_settings=CONTEXT,
              short_help="Check that a folder is an installable PWA.")
@click.argument("root", default="./public", type=click.Path(path_type=Path))
@click.option("--no-certs", is_flag=True,
              help="Skip the certificate checks (e.g. in CI, where no CA is installed).")
@click.pass_context
def check(ctx: click.Context, root: Path, no_certs: bool) -> None:
    """Check that ROOT (default ./public) is an installable PWA that works offline.

    Manifest, icons, service worker and certificates; each problem is printed with a
    one-line fix. The exit code is 0 only when every check passes.
    """
    if not root.exists():
        raise click.ClickException(f"folder not found: {root}")
    if not root.is_dir():
        raise click.ClickException(f"not a folder: {root}")
    from . import check as pwa_check  # only this command needs it

    report = pwa_check.check_site(root, certificates=not no_certs)
    pwa_check.print_report(report, certificates=not no_certs)
    ctx.exit(0 if report.passed else 1)

"""The ``hyper2web`` command group and its small commands: certs, init, check.

Thin on purpose: parse, call the framework, print one clear line. ``serve``, much the
biggest, lives in ``serve.py`` and is added to the group here; the certificate it uses is
chosen in ``serve_certs.py``.

Every error a user can cause ends as a ``click.ClickException`` (``Error: ...`` and exit
code 1), never a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

import hyper2web
from hyper2web.certs import CERT_NAME, KEY_NAME

from . import certs as local_ca
from . import trust
from .context import CONTEXT
from .scaffold import TEMPLATE_NAMES, ScaffoldError, create_project
from .serve import serve
from .serve_certs import app_cert_dir, say_ca_created


@click.group(context_settings=CONTEXT)
@click.version_option(hyper2web.__version__, "-V", "--version", prog_name="hyper2web")
def main() -> None:
    """A fast HTTPS + HTTP/2 development server for static sites and PWAs."""


main.add_command(serve)


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
            say_ca_created(ca, err=True)
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
    for folder in (out_dir, app_cert_dir()):
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

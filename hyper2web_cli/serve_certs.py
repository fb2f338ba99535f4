"""Which certificate ``hyper2web serve`` uses: the pair given, one found beside the site
(renewed when stale), or one the local certificate authority makes.

Kept apart from ``serve.py`` because ``hyper2web certs`` needs some of it too: the folder
where ``serve`` keeps the certificate it makes, and the words that announce a new CA.
"""

from __future__ import annotations

from pathlib import Path

import click

from hyper2web.certs import CERT_NAME, KEY_NAME

from . import certs as local_ca


def app_cert_dir() -> Path:
    return Path(click.get_app_dir("hyper2web")) / "certs"


def _find_certificates(root: Path) -> tuple[Path, Path] | None:
    """The original names in the working folder, else beside the served folder."""
    for folder in (Path.cwd(), root.resolve().parent):
        cert, key = folder / CERT_NAME, folder / KEY_NAME
        if cert.is_file() and key.is_file():
            return cert, key
    return None


def certificates_for(root: Path, host: str, cert: Path | None,
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
    folder = app_cert_dir()
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
        say_ca_created(ca, err=True)
    click.echo("  " + message.replace("{hosts}", ", ".join(hosts)), err=True)


def say_ca_created(ca: local_ca.Authority, err: bool = False) -> None:
    click.echo(f"  created a local certificate authority: {ca.path}\n"
               "  run 'hyper2web certs --install' once so browsers trust it", err=err)

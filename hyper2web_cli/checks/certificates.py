"""The certificate checks of ``hyper2web check``: is the local CA there and trusted, and
is the certificate ``serve`` would use signed by it, valid for localhost and not about to
expire?

Browsers only run service workers on pages whose certificate they trust. ``trusted_in`` is
also used by ``hyper2web init`` to decide whether to suggest ``certs --install``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hyper2web.certs import CERT_NAME, KEY_NAME

from .. import certs as local_ca
from .. import trust
from .base import CheckBase

EXPIRY_MARGIN = dt.timedelta(days=30)
INSTALL_FIX = "hyper2web certs --install"


class CertificateChecks(CheckBase):
    """The local CA and the certificate ``serve`` would use."""

    def check_certificates(self) -> None:
        ca = local_ca.load_authority()
        if ca is None:
            self.fail("there is no local certificate authority, so no trusted certificate: "
                      "browsers refuse service workers", INSTALL_FIX)
            return
        stores = trusted_in(ca)
        if stores:
            self.ok(f"the local CA is trusted in {', '.join(stores)}")
        else:
            self.fail("the local CA is not trusted by this machine's browsers: they refuse "
                      "service workers", INSTALL_FIX)
        now = dt.datetime.now(dt.timezone.utc)
        if ca.cert.not_valid_after_utc - now < EXPIRY_MARGIN:
            self.fail(f"the local CA expires on {ca.cert.not_valid_after_utc:%Y-%m-%d}",
                      INSTALL_FIX + " (makes a new one)")
        leaf = self._serving_certificate()
        if leaf is None:
            self.ok("no certificate yet: 'hyper2web serve' makes one signed by the local CA")
            return
        folder = leaf.parent
        fix = f"hyper2web certs --out {folder}"
        info = local_ca.inspect_leaf(leaf, ca)
        if folder == local_ca.data_dir() / "certs" and (
                info is None or not info.by_our_ca or info.not_after - now < EXPIRY_MARGIN):
            self.ok(f"{leaf} is out of date: 'hyper2web serve' makes a new one, signed by "
                    "the local CA")
            return
        if info is None:
            self.fail(f"{leaf} cannot be read", fix)
            return
        if not info.by_our_ca:
            self.fail(f"{leaf} is not signed by the local CA: browsers do not trust it",
                      fix)
        elif info.not_after - now < EXPIRY_MARGIN:
            self.fail(f"{leaf} expires on {info.not_after:%Y-%m-%d}", fix)
        elif not local_ca.covers(info.hosts, "localhost"):
            self.fail(f"{leaf} is not valid for localhost", fix)
        else:
            self.ok(f"{leaf} is signed by the local CA, valid until "
                    f"{info.not_after:%Y-%m-%d}")

    def _serving_certificate(self) -> Path | None:
        """The certificate ``hyper2web serve`` would use for this folder, if it exists."""
        for folder in (Path.cwd(), self.root.resolve().parent, local_ca.data_dir() / "certs"):
            if (folder / CERT_NAME).is_file() and (folder / KEY_NAME).is_file():
                return folder / CERT_NAME
        return None


def trusted_in(ca: local_ca.Authority) -> list[str]:
    """The names of the trust stores that trust ``ca``."""
    name = trust.nickname(ca)
    return [store.name for store in trust.stores() if store.has(name)]

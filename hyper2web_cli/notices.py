"""The start-up notice that the local CA is not trusted.

Said at every start of ``serve`` until the CA is trusted: without it the browser warns,
and, worse and silently, Chromium refuses the site's service worker. Asking the trust
stores loads the CA with ``cryptography`` and runs ``certutil`` once per NSS database, so
it runs in a thread (``hyper2web.certs.notice_later``), never on the start-up path.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

from hyper2web.certs import UNTRUSTED_WHY, notice_later, self_signed_notice

from . import certs as local_ca

FIX = "hyper2web certs --install"


def _wrap(text: str) -> str:
    return textwrap.fill(text, 92, initial_indent="  ", subsequent_indent="  ")


def untrusted_notice(certfile: Path) -> str | None:
    """The notice for a certificate no browser here trusts; None when it may be trusted.

    Said for a self-signed certificate, and for one signed by the local CA while no trust
    store holds that CA; a certificate from another CA (mkcert's, a company's) is the
    user's business.
    """
    from . import trust

    self_signed = self_signed_notice(certfile)
    if self_signed is not None:
        return _wrap(f"Not trusted: {self_signed}") + "\n"
    ca = local_ca.load_authority()
    info = local_ca.inspect_leaf(certfile, ca) if ca is not None else None
    if ca is None or info is None or not info.by_our_ca:
        return None
    name = trust.nickname(ca)
    if any(store.has(name) for store in trust.stores()):
        return None
    text = f"Not trusted: {UNTRUSTED_WHY}. The local CA ({ca.path}) is in no trust store."
    return _wrap(text) + f"\n  Fix, once: {FIX}\n"


def check_trust(certfile: Path, say: Callable[[str], None]) -> threading.Thread:
    """Check ``certfile`` in a thread; ``say`` gets the notice, if there is one."""
    return notice_later(lambda: untrusted_notice(certfile), say)

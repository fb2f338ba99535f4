"""The TLS side of the server: one ``ssl.SSLContext`` that browsers accept for HTTP/2.

RFC 9113 section 9.2 asks for TLS 1.2 or newer, no compression, no renegotiation and an
AEAD cipher with ephemeral key exchange; ALPN is how a client says it speaks ``h2``.
"""

from __future__ import annotations

import os
import ssl

from ..exceptions import CertificateError

ALPN_PROTOCOLS = ["h2", "http/1.1"]  # in the server's order of preference
# Ciphers allowed for TLS 1.2 (TLS 1.3 suites are all fine and set separately by OpenSSL).
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def make_ssl_context(certfile: str | os.PathLike[str],
                     keyfile: str | os.PathLike[str], *, http1: bool = True) -> ssl.SSLContext:
    """A server context for ``certfile``/``keyfile``; ``CertificateError`` says what is wrong.

    ALPN offers ``h2`` first, then ``http/1.1`` unless ``http1`` is off.
    """
    for label, path in (("certificate", certfile), ("key", keyfile)):
        if not os.path.isfile(path):
            raise CertificateError(f"{label} file not found: {os.fspath(path)}")
        if not os.access(path, os.R_OK):
            raise CertificateError(f"{label} file is not readable: {os.fspath(path)}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.set_ciphers(_TLS12_CIPHERS)
    # Every suite allowed is an AEAD one; which suits the machine best (AES-128-GCM with AES
    # instructions, ChaCha20 without) the client knows. OpenSSL's own order would pick
    # AES-256-GCM, about 14% slower per byte than AES-128-GCM here (openssl speed).
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(ALPN_PROTOCOLS if http1 else ALPN_PROTOCOLS[:1])
    # No TLS 1.3 session tickets: issuing two per connection cost about a tenth of every
    # handshake, and resuming a session saves nothing that matters on a local link.
    ctx.num_tickets = 0
    try:
        ctx.load_cert_chain(os.fspath(certfile), os.fspath(keyfile))
    except ssl.SSLError as exc:
        raise CertificateError(
            f"cannot use certificate {os.fspath(certfile)} with key {os.fspath(keyfile)}: "
            f"{exc.reason or exc}"
        ) from None
    except OSError as exc:
        raise CertificateError(f"cannot read certificate files: {exc}") from None
    return ctx

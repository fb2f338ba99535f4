"""Self-signed certificates for local HTTPS, made with ``cryptography``.

HTTP/2 in a browser needs TLS, so the server must always have a certificate. The original
framework shipped fixed key files; here a fresh EC P-256 pair is made per machine, named as
the original ones (``localhost.crt.pem``, ``localhost.key``), for localhost, 127.0.0.1, ::1
and any extra host, with the key written mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

# ``cryptography`` is imported by the functions that use it: loading it costs a noticeable
# part of start-up, and serving with a given certificate never needs it.
if TYPE_CHECKING:
    from cryptography import x509

CERT_NAME = "localhost.crt.pem"
KEY_NAME = "localhost.key"
# Loopback names every local certificate covers; ``*.localhost`` lets ``app.localhost`` work.
DEFAULT_HOSTS = ("localhost", "*.localhost", "127.0.0.1", "::1")
# Browsers reject leaf certificates valid for longer than 825 days.
VALIDITY_DAYS = 825


def san_entry(host: str) -> x509.GeneralName:
    """A subjectAltName entry for ``host``: an IP address, else a DNS name.

    An IPv6 address may come in URL brackets; an international name goes in as its A-label
    (``xn--...``), the only form a certificate can hold.
    """
    from cryptography import x509

    host = host.strip("[]")
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return x509.DNSName(host)
    except ValueError:
        return x509.DNSName(host.encode("idna").decode("ascii"))


def hosts_with_defaults(hosts: Iterable[str] = ()) -> list[str]:
    """The default hosts plus ``hosts``, in order, without duplicates or wildcard binds."""
    result: list[str] = []
    for host in (*DEFAULT_HOSTS, *hosts):
        host = host.strip("[]")
        if host and host not in ("0.0.0.0", "::") and host not in result:
            result.append(host)
    return result


def make_self_signed(hosts: Iterable[str] = (), days: int = VALIDITY_DAYS) -> tuple[bytes, bytes]:
    """A new ``(certificate PEM, private key PEM)`` for ``hosts`` plus the defaults."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = hosts_with_defaults(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hyper2web development certificate"),
        x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
    ])
    # Backdated a little for clocks that lag; the whole period (not just what is left of
    # it from now) is what browsers hold against the limit.
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=min(days, VALIDITY_DAYS)))
        .add_extension(x509.SubjectAlternativeName([san_entry(h) for h in names]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def write_private(path: Path, data: bytes) -> None:
    """Write a secret so that only its owner can read it, even if the file existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on open: tighten it first
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def write_certificates(directory: str | os.PathLike[str], hosts: Iterable[str] = ()
                       ) -> tuple[Path, Path]:
    """Create ``localhost.crt.pem`` and ``localhost.key`` in ``directory``; returns both paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = make_self_signed(hosts)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    write_private(key_path, key_pem)
    cert_path.write_bytes(cert_pem)
    return cert_path, key_path


def certificate_hosts(cert_path: str | os.PathLike[str]) -> list[str]:
    """The DNS names and IP addresses a PEM certificate is valid for."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + [
        str(v) for v in san.get_values_for_type(x509.IPAddress)]


# Why an untrusted certificate matters beyond the click-through warning.
UNTRUSTED_WHY = ("browsers show a warning for this site, and Chromium will not register its "
                 "service worker (\"An SSL certificate error occurred when fetching the "
                 "script\"), so it does not work offline")


def self_signed_notice(cert_path: str | os.PathLike[str]) -> str | None:
    """Why a self-signed certificate (as ``App.up()`` makes) hurts, with the fix; else None.

    No browser trusts a self-signed leaf, so this is said at every start; a certificate
    signed by a CA (``hyper2web certs``) may be trusted, and gets no notice here.
    """
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except (OSError, ValueError):
        return None
    if cert.issuer != cert.subject:
        return None
    return (f"{cert_path} is self-signed: {UNTRUSTED_WHY}. For a trusted one, run "
            "'hyper2web certs' in this folder, then 'hyper2web certs --install' once.")


def notice_later(check: Callable[[], str | None], say: Callable[[str], None],
                 delay: float = 0.25) -> threading.Thread:
    """Run ``check`` in a daemon thread and pass what it finds to ``say``.

    Trust checks load ``cryptography`` and may run ``certutil``: work the first requests
    should not wait for. The thread waits ``delay`` seconds first, so the requests that
    come as soon as the server listens never share the CPU with it; a failing check says
    nothing rather than stopping the server.
    """
    def run() -> None:
        if delay:
            threading.Event().wait(delay)
        try:
            notice = check()
        except Exception:
            return
        if notice:
            say(notice)

    thread = threading.Thread(target=run, daemon=True, name="hyper2web-trust-check")
    thread.start()
    return thread


def pair_problem(cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]
                 ) -> str | None:
    """Why a PEM certificate and key cannot serve TLS, in words; None when no reason is found.

    OpenSSL's own reasons (``PEM lib``, ``KEY_VALUES_MISMATCH``) do not say which file is wrong.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    cert_file, key_file = Path(cert_path), Path(key_path)
    try:
        cert_data, key_data = cert_file.read_bytes(), key_file.read_bytes()
    except OSError:
        return None
    try:
        cert = x509.load_pem_x509_certificates(cert_data)[0]
    except ValueError:
        return f"{cert_file} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)"
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        return f"{key_file} is protected by a passphrase; give a key without one"
    except (ValueError, UnsupportedAlgorithm):
        return f"{key_file} is not a PEM private key (expected -----BEGIN ... PRIVATE KEY-----)"
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        return f"{key_file} is not the private key of {cert_file}"
    return None

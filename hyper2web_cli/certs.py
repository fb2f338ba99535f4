"""A local certificate authority and the leaf certificates it signs.

Browsers only run service workers on pages whose certificate they trust. A self-signed
certificate can be clicked through, but not trusted; so, like mkcert, hyper2web makes one
CA per user (in ``click.get_app_dir("hyper2web")``), the user trusts it once
(``hyper2web certs --install``), and every leaf it signs is trusted from then on.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hyper2web.certs import CERT_NAME, KEY_NAME, hosts_with_defaults, san_entry, write_private

from .terminal import network_addresses

CA_CERT_NAME = "rootCA.pem"
CA_KEY_NAME = "rootCA-key.pem"
CA_DAYS = 10 * 365
LEAF_DAYS = 825  # the longest validity browsers accept for a leaf
RENEW_BEFORE = dt.timedelta(days=30)

# ``cryptography`` is imported by the functions that use it: loading it costs a noticeable
# part of start-up, and ``serve --cert/--key`` never needs it.
if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec


def data_dir() -> Path:
    """Where the CA (and certificates made for ``serve``) live: one folder per user."""
    return Path(click.get_app_dir("hyper2web"))


def ca_paths() -> tuple[Path, Path]:
    folder = data_dir()
    return folder / CA_CERT_NAME, folder / CA_KEY_NAME


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return f"{user}@{socket.gethostname()}"


@dataclass
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path

    @property
    def fingerprint(self) -> str:
        from cryptography.hazmat.primitives import hashes

        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def name(self) -> str:
        from cryptography.x509.oid import NameOID

        return str(self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def load_authority() -> Authority | None:
    """The user's CA, or None when it was never created (or cannot be read)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert_path, key_path = ca_paths()
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None  # a key from another CA (two first runs at once) signs nothing trusted
    return Authority(cert, key, cert_path)


def authority() -> tuple[Authority, bool]:
    """The user's CA, created on first use; the bool says whether it was just created."""
    existing = load_authority()
    if existing is not None and existing.cert.not_valid_after_utc > _now() + RENEW_BEFORE:
        return existing, False
    return _create_authority(), True


def _create_authority() -> Authority:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    owner = _owner()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hyper2web development CA"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, owner),
        x509.NameAttribute(NameOID.COMMON_NAME, f"hyper2web development CA {owner}"),
    ])
    start = _now() - dt.timedelta(minutes=5)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = ca_paths()
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Authority(cert, key, cert_path)


def default_hosts(extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Names a development server is reached by: loopback, this machine, its LAN addresses."""
    return hosts_with_defaults([socket.gethostname(), *network_addresses(), *extra])


def issue(out_dir: Path, hosts: list[str]) -> tuple[Path, Path, Authority]:
    """Write ``localhost.crt.pem`` and ``localhost.key`` for ``hosts`` signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca, _ = authority()
    key = ec.generate_private_key(ec.SECP256R1())
    start = _now() - dt.timedelta(minutes=5)
    not_after = min(start + dt.timedelta(days=LEAF_DAYS), ca.cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hyper2web development certificate"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([san_entry(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / CERT_NAME, out_dir / KEY_NAME
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path, ca


@dataclass
class LeafInfo:
    path: Path
    hosts: list[str]
    not_after: dt.datetime
    by_our_ca: bool


def inspect_leaf(cert_path: Path, ca: Authority | None = None) -> LeafInfo | None:
    """Hosts, expiry and issuer of a PEM certificate; None when it cannot be read."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hosts = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        hosts += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        hosts = []
    ours = ca is not None and cert.issuer == ca.cert.subject and _signed_by(cert, ca)
    return LeafInfo(cert_path, hosts, cert.not_valid_after_utc, ours)


def _signed_by(cert: x509.Certificate, ca: Authority) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(ca.cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def covers(hosts: list[str], host: str) -> bool:
    """True when a certificate for ``hosts`` is valid for ``host``."""
    host = host.strip("[]").rstrip(".").lower()
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    try:
        wanted = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return any(_same_ip(h, wanted) for h in hosts)
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    names = [h.lower() for h in hosts]  # DNS names match whatever their case
    if host in names:
        return True
    return any(h.startswith("*.") and host.endswith(h[1:]) and host.count(".") == h.count(".")
               for h in names)


def _same_ip(text: str, wanted: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(text) == wanted
    except ValueError:
        return False


def renewal_reason(cert_path: Path, key_path: Path, host: str) -> str | None:
    """Why the pair at these paths should be made anew for ``host``; None to reuse it."""
    if not cert_path.is_file() or not key_path.is_file():
        return "none found"
    info = inspect_leaf(cert_path)
    if info is None:
        return f"{cert_path} cannot be read"
    if info.not_after - _now() < RENEW_BEFORE:
        return f"it expires on {info.not_after:%Y-%m-%d}"
    wanted = [host]
    if host.strip("[]") in ("0.0.0.0", "::", ""):
        # Every interface: the banner shows the LAN addresses, which change with the network.
        wanted = ["localhost", *network_addresses()]
    missing = [name for name in wanted if not covers(info.hosts, name)]
    if missing:
        return f"it does not cover {', '.join(missing)}"
    return None

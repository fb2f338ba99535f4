"""Helpers of the local CA tests: a user of our own, certificates made by hand, NSS listings.

Every test runs as a user whose HOME (and so the CA's app folder and the NSS databases) is a
temporary folder, with the Debian system store redirected to another one: the machine's own
trust stores are never touched.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hyper2web.certs import CERT_NAME, KEY_NAME, write_private
from hyper2web_cli.terminal import network_addresses
from tests.support import REPO, run_cli  # noqa: F401 - run_cli is used by the tests here


def user_env(home: Path, system_dir: Path, update_command: str = "true") -> dict[str, str]:
    """The variables that make ``home`` the user's home and ``system_dir`` the system store."""
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "HYPER2WEB_SYSTEM_CA_DIR": str(system_dir),
        "HYPER2WEB_UPDATE_CA_COMMAND": update_command,
    }


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
            update_command: str = "true") -> dict[str, str]:
    """Make this process a user at ``tmp_path/home``; returns the variables set."""
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = user_env(home, tmp_path / "sys", update_command)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def ca_file(home: Path) -> Path:
    return home / ".config" / "hyper2web" / "rootCA.pem"


def ca_key_file(home: Path) -> Path:
    return home / ".config" / "hyper2web" / "rootCA-key.pem"


def app_certs(home: Path) -> Path:
    """Where ``serve`` keeps the certificate it makes when none is found."""
    return home / ".config" / "hyper2web" / "certs"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """The DNS names and (normalized) IP addresses of a certificate."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (list(san.get_values_for_type(x509.DNSName)),
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)])


def required_names() -> tuple[set[str], set[str]]:
    """What every certificate must cover: loopback names, this machine, its LAN addresses."""
    dns = {"localhost", "*.localhost"}
    if socket.gethostname() not in ("", "localhost"):
        dns.add(socket.gethostname())
    ips = {str(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1", *network_addresses())}
    return dns, ips


def assert_covers(cert: x509.Certificate, *extra: str) -> None:
    """``cert`` is valid for the required names and for each of ``extra``."""
    dns, ips = sans(cert)
    need_dns, need_ips = required_names()
    for host in extra:
        try:
            need_ips.add(str(ipaddress.ip_address(host)))
        except ValueError:
            need_dns.add(host)
    assert need_dns <= set(dns), f"missing {need_dns - set(dns)} in {dns}"
    assert need_ips <= set(ips), f"missing {need_ips - set(ips)} in {ips}"
    assert not set(ips) & {"0.0.0.0", "::"}


def lifetime(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def write_pair(folder: Path, hosts: list[str], days: float) -> tuple[Path, Path]:
    """A self-signed ``localhost.crt.pem`` + ``localhost.key`` for ``hosts`` that expires
    ``days`` from now (made here, not by hyper2web)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    return cert_path, key_path


def nss_list(db: Path) -> str:
    """``certutil -L`` of an NSS database: one line per certificate with its trust flags."""
    done = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout


def nss_der(db: Path, nickname: str) -> bytes | None:
    """The DER bytes stored under ``nickname`` in an NSS database, or None."""
    done = subprocess.run(["certutil", "-L", "-d", f"sql:{db}", "-n", nickname, "-r"],
                          capture_output=True, timeout=30, check=False)
    return done.stdout if done.returncode == 0 else None


def der(cert_path: Path) -> bytes:
    return load_cert(cert_path).public_bytes(serialization.Encoding.DER)


def nickname(ca_path: Path) -> str:
    """The label hyper2web gives its CA in NSS databases: its name and fingerprint start."""
    ca = load_cert(ca_path)
    return f"{common_name(ca)} {ca.fingerprint(hashes.SHA256()).hex()[:8]}"

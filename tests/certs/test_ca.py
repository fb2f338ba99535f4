"""The local certificate authority, and the certificates ``hyper2web certs`` signs with it."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hyper2web.certs import CERT_NAME, KEY_NAME
from hyper2web_cli.certs import covers
from hyper2web_cli.cli import main
from tests.certs.catools import (
    app_certs,
    assert_covers,
    ca_file,
    ca_key_file,
    common_name,
    isolate,
    lifetime,
    load_cert,
    mode,
    sans,
)

LEAF_LIMIT = dt.timedelta(days=825)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A user of our own, working in tmp_path; returns their HOME."""
    isolate(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def invoke(args: list[str], code: int = 0) -> Result:
    result = CliRunner().invoke(main, args, prog_name="hyper2web")
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def line_of(output: str, label: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(label))


# -- the authority ------------------------------------------------------------------------------


def test_the_ca_is_made_once_per_user_in_the_app_folder(home: Path, tmp_path: Path) -> None:
    first = invoke(["certs", "--out", "one"])
    ca_path = ca_file(home)
    assert ca_path.parent == Path(click.get_app_dir("hyper2web"))
    assert f"created a local certificate authority: {ca_path}" in first.output
    ca_pem, key_pem = ca_path.read_bytes(), ca_key_file(home).read_bytes()

    second = invoke(["certs", "--out", "two"])
    assert "certificate authority" not in second.output
    assert ca_path.read_bytes() == ca_pem
    assert ca_key_file(home).read_bytes() == key_pem
    assert sorted(os.listdir(ca_path.parent)) == ["rootCA-key.pem", "rootCA.pem"]

    ca = load_cert(ca_path)
    for folder, result in (("one", first), ("two", second)):
        leaf = load_cert(tmp_path / folder / CERT_NAME)
        assert leaf.issuer == ca.subject
        leaf.verify_directly_issued_by(ca)
        assert f"signed by:   {common_name(ca)} ({ca_path})" in result.output


def test_the_ca_key_is_private_and_the_ca_names_itself_and_its_machine(home: Path) -> None:
    invoke(["certs"])
    assert mode(ca_key_file(home)) == 0o600
    ca = load_cert(ca_file(home))
    key = serialization.load_pem_private_key(ca_key_file(home).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == ca.public_key()

    name = common_name(ca)
    assert "hyper2web" in name and "CA" in name
    assert f"{getpass.getuser()}@{socket.gethostname()}" in name
    organization = ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert "development CA" in str(organization)

    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is True
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert ca.subject == ca.issuer
    ca.verify_directly_issued_by(ca)  # a self-signed root


def test_each_user_has_an_authority_of_their_own(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    cas, leaves = [], []
    for user in ("ann", "bob"):
        isolate(monkeypatch, tmp_path / user)
        monkeypatch.chdir(tmp_path / user)
        invoke(["certs"])
        cas.append(load_cert(ca_file(tmp_path / user / "home")))
        leaves.append(load_cert(tmp_path / user / CERT_NAME))
    assert cas[0].fingerprint(hashes.SHA256()) != cas[1].fingerprint(hashes.SHA256())
    leaves[1].verify_directly_issued_by(cas[1])
    with pytest.raises(InvalidSignature):
        leaves[1].verify_directly_issued_by(cas[0])


def test_an_authority_whose_key_does_not_match_is_made_anew(home: Path,
                                                            tmp_path: Path) -> None:
    invoke(["certs", "--out", "one"])
    old = load_cert(ca_file(home))
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    ca_key_file(home).write_bytes(other)

    result = invoke(["certs", "--out", "two"])
    assert f"created a local certificate authority: {ca_file(home)}" in result.output
    new = load_cert(ca_file(home))
    assert new.fingerprint(hashes.SHA256()) != old.fingerprint(hashes.SHA256())
    load_cert(tmp_path / "two" / CERT_NAME).verify_directly_issued_by(new)


def test_an_unwritable_app_folder_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                   home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    for args in (["certs"], ["certs", "--ca-path"], ["certs", "--install"]):
        result = invoke(args, code=1)
        assert result.output.startswith(
            f"Error: cannot create the local certificate authority in {blocker}"), args
    assert not (tmp_path / CERT_NAME).exists()


def test_ca_path_prints_the_authority_file(home: Path) -> None:
    first = invoke(["certs", "--ca-path"])
    assert first.stdout.strip() == str(ca_file(home))
    assert "created a local certificate authority" in first.stderr
    ca = load_cert(Path(first.stdout.strip()))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    again = invoke(["certs", "--ca-path"])
    assert again.stdout == first.stdout and again.stderr == ""


# -- the certificates it signs ------------------------------------------------------------------


def test_a_leaf_signed_by_the_authority_for_local_names(home: Path, tmp_path: Path) -> None:
    result = invoke(["certs", "--out", "out/nested", "--host", "example.test",
                     "--host", "10.1.2.3", "--host", "fd00::7"])
    out = tmp_path / "out" / "nested"
    assert sorted(p.name for p in out.iterdir()) == [CERT_NAME, KEY_NAME]
    leaf, ca = load_cert(out / CERT_NAME), load_cert(ca_file(home))
    leaf.verify_directly_issued_by(ca)

    assert_covers(leaf, "example.test", "10.1.2.3", "fd00::7")
    dns, _ = sans(leaf)
    assert "10.1.2.3" not in dns  # an address is an IP entry, not a name
    listed = line_of(result.output, "valid for:").partition(":")[2].strip().split(", ")
    for name in ("localhost", "*.localhost", "127.0.0.1", "::1", socket.gethostname(),
                 "example.test", "10.1.2.3", "fd00::7"):
        assert name in listed, listed

    now = dt.datetime.now(dt.timezone.utc)
    assert leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc
    assert dt.timedelta(days=365) < lifetime(leaf) <= LEAF_LIMIT
    assert leaf.not_valid_after_utc <= ca.not_valid_after_utc
    assert line_of(result.output, "expires:") == \
        f"expires:     {leaf.not_valid_after_utc:%Y-%m-%d}"
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage

    assert mode(out / KEY_NAME) == 0o600
    key = serialization.load_pem_private_key((out / KEY_NAME).read_bytes(), password=None)
    assert key.public_key() == leaf.public_key()
    assert "run 'hyper2web certs --install' once" in result.output


def test_certs_writes_into_the_current_folder_by_default(home: Path, tmp_path: Path) -> None:
    assert "[default: .]" in invoke(["certs", "--help"]).output
    result = invoke(["certs"])
    assert f"certificate: {CERT_NAME}" in result.output
    assert mode(tmp_path / KEY_NAME) == 0o600
    leaf = load_cert(tmp_path / CERT_NAME)
    leaf.verify_directly_issued_by(load_cert(ca_file(home)))
    assert_covers(leaf)
    assert not app_certs(home).exists()


def test_an_international_host_goes_in_as_its_a_label(home: Path, tmp_path: Path) -> None:
    invoke(["certs", "--host", "café.test"])
    assert "xn--caf-dma.test" in sans(load_cert(tmp_path / CERT_NAME))[0]


@pytest.mark.parametrize("host, expected", [
    ("localhost", True), ("LOCALHOST", True), ("app.localhost", True), ("a.b.localhost", False),
    ("127.0.0.1", True), ("[::1]", True), ("0:0::1", True), ("0.0.0.0", True), ("::", True),
    ("MyBox", True), ("mybox.", True), ("127.0.0.5", False), ("other.test", False),
])
def test_covers(host: str, expected: bool) -> None:
    hosts = ["localhost", "*.localhost", "mybox", "127.0.0.1", "::1"]
    assert covers(hosts, host) is expected


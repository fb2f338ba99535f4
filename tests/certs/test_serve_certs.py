"""Which certificate ``serve`` uses: a valid one found is reused, one that expires within 30
days or does not cover the served host is renewed in place, and it says so."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from hyper2web.certs import CERT_NAME, KEY_NAME
from hyper2web.server.listener import Server
from hyper2web_cli import certs as certs_module
from hyper2web_cli.cli import main
from tests.certs.catools import (
    app_certs,
    assert_covers,
    ca_file,
    isolate,
    load_cert,
    mode,
    sans,
    user_env,
    write_pair,
)
from tests.support import start_cli

RENEW_WINDOW = dt.timedelta(days=30)


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """tmp_path as the working folder, with public/; ``serve`` binds, prints its banner and
    returns instead of serving."""
    isolate(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("<title>t</title>")

    def run(self: Server, ready: Callable[[Server], None] | None = None) -> None:
        if ready is not None:
            ready(self)
        self.close_sockets()

    monkeypatch.setattr(Server, "run", run)
    return tmp_path


def serve(*args: str, root: str = "public") -> Result:
    result = CliRunner().invoke(main, ["serve", root, "--port", "0", "--no-reload", *args])
    assert result.exit_code == 0, result.output
    return result


def assert_renewed_by_the_ca(cert_path: Path, key_path: Path, home: Path) -> None:
    cert = load_cert(cert_path)
    cert.verify_directly_issued_by(load_cert(ca_file(home)))
    assert cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > RENEW_WINDOW
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert key.public_key() == cert.public_key()
    assert mode(key_path) == 0o600


def test_a_valid_certificate_is_reused(project: Path) -> None:
    made = CliRunner().invoke(main, ["certs"])  # signed by the local CA
    assert made.exit_code == 0, made.output
    before = (project / CERT_NAME).read_bytes()
    result = serve()
    assert f"TLS:     {project / CERT_NAME}" in result.stdout
    assert "renewed" not in result.output and "created a certificate" not in result.output
    assert (project / CERT_NAME).read_bytes() == before

    # One made elsewhere (not by this CA) is reused as well while it is valid and covers.
    cert, _ = write_pair(project, ["localhost", "127.0.0.1", "::1"], days=200)
    before = cert.read_bytes()
    result = serve()
    assert "renewed" not in result.output
    assert cert.read_bytes() == before
    assert not app_certs(project / "home").exists()


@pytest.mark.parametrize("days, renewed", [(10, True), (29, True), (31, False)])
def test_a_certificate_expiring_within_30_days_is_renewed(project: Path, days: int,
                                                          renewed: bool) -> None:
    cert, key = write_pair(project, ["localhost", "127.0.0.1", "dev.test"], days=days)
    before = load_cert(cert)
    result = serve()
    assert f"TLS:     {cert}" in result.stdout
    message = (f"renewed the certificate in {project}: "
               f"it expires on {before.not_valid_after_utc:%Y-%m-%d}")
    if not renewed:
        assert "renewed" not in result.output
        assert load_cert(cert) == before
        return
    assert message in result.stderr
    assert f"created a local certificate authority: {ca_file(project / 'home')}" \
        in result.stderr
    assert_renewed_by_the_ca(cert, key, project / "home")
    assert_covers(load_cert(cert), "dev.test")  # the names it had are kept
    assert not app_certs(project / "home").exists()
    assert "renewed" not in serve().output


def test_a_certificate_not_covering_the_host_is_renewed(project: Path) -> None:
    cert, key = write_pair(project, ["localhost", "127.0.0.1"], days=200)
    result = serve("--host", "127.0.0.5")
    assert f"renewed the certificate in {project}: it does not cover 127.0.0.5" \
        in result.stderr
    assert "https://127.0.0.5:" in result.stdout
    assert f"TLS:     {cert}" in result.stdout
    assert_renewed_by_the_ca(cert, key, project / "home")
    assert_covers(load_cert(cert), "127.0.0.5")

    after = cert.read_bytes()
    for again in (serve("--host", "127.0.0.5"), serve()):
        assert "renewed" not in again.output
    assert cert.read_bytes() == after


def test_serving_every_interface_needs_the_lan_addresses(project: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """On 0.0.0.0 the banner sends phones to the LAN addresses: the certificate must cover
    them, and a new address (another network) renews it."""
    monkeypatch.setattr(certs_module, "network_addresses", lambda: ["192.0.2.77"])
    cert, key = write_pair(project, ["localhost", "127.0.0.1", "::1"], days=200)
    result = serve("--host", "0.0.0.0")
    assert f"renewed the certificate in {project}: it does not cover 192.0.2.77" \
        in result.stderr
    assert_renewed_by_the_ca(cert, key, project / "home")
    assert "192.0.2.77" in sans(load_cert(cert))[1]
    assert "renewed" not in serve("--host", "0.0.0.0").output

    monkeypatch.setattr(certs_module, "network_addresses", lambda: ["198.51.100.9"])
    result = serve("--host", "0.0.0.0")
    assert "it does not cover 198.51.100.9" in result.stderr
    assert {"192.0.2.77", "198.51.100.9"} <= set(sans(load_cert(cert))[1])


def test_a_certificate_beside_the_folder_is_renewed_there(project: Path) -> None:
    site = project / "site"
    (site / "public").mkdir(parents=True)
    cert, key = write_pair(site, ["localhost"], days=10)
    result = serve(root="site/public")
    assert f"renewed the certificate in {site}: it expires on" in result.stderr
    assert f"TLS:     {cert}" in result.stdout
    assert_renewed_by_the_ca(cert, key, project / "home")


def test_without_a_certificate_one_is_made_in_the_app_folder(project: Path) -> None:
    home = project / "home"
    folder = app_certs(home)
    result = serve()
    assert f"created a local certificate authority: {ca_file(home)}" in result.stderr
    assert f"in {folder}" in result.stderr
    assert f"TLS:     {folder / CERT_NAME}" in result.stdout
    assert_renewed_by_the_ca(folder / CERT_NAME, folder / KEY_NAME, home)
    assert_covers(load_cert(folder / CERT_NAME))
    assert "created" not in serve().output

    # A new authority (the old one deleted) means a new certificate signed by it.
    before = (folder / CERT_NAME).read_bytes()
    ca_file(home).unlink()
    (ca_file(home).parent / "rootCA-key.pem").unlink()
    result = serve()
    assert "created a local certificate authority" in result.stderr
    assert "created a certificate for" in result.stderr
    assert (folder / CERT_NAME).read_bytes() != before
    assert_renewed_by_the_ca(folder / CERT_NAME, folder / KEY_NAME, home)


def test_a_served_renewal_is_what_clients_get(tmp_path: Path) -> None:
    """In a real process: the renewed certificate is presented and verifies against the CA."""
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("<title>t</title>")
    home = tmp_path / "home"
    home.mkdir()
    cert, _ = write_pair(tmp_path, ["localhost", "127.0.0.1"], days=10)
    server = start_cli(["serve", "public", "--port", "0", "--no-reload"], tmp_path,
                       user_env(home, tmp_path / "sys"))
    try:
        text = "".join(server.output)
        assert f"renewed the certificate in {tmp_path}: it expires on" in text
        presented = ssl.get_server_certificate(("127.0.0.1", server.port))
        assert ssl.PEM_cert_to_DER_cert(presented) == ssl.PEM_cert_to_DER_cert(cert.read_text())
        context = ssl.create_default_context(cafile=str(ca_file(home)))
        for host in ("localhost", "127.0.0.1"):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            with context.wrap_socket(raw, server_hostname=host) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        assert server.stop() == 0


def test_an_unwritable_app_folder_is_a_clear_error(project: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = project / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    result = CliRunner().invoke(main, ["serve", "public", "--port", "0", "--no-reload"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith(
        f"Error: cannot write a certificate to {blocker}")

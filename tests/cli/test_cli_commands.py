"""``hyper2web`` in-process through click's ``CliRunner``: help, version, certs, init, and
every error a user can cause when starting ``serve`` (one ``Error:`` line, exit code 1)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import hyper2web
from hyper2web.certs import CERT_NAME, KEY_NAME, VALIDITY_DAYS, write_certificates
from hyper2web.server.listener import Server
from hyper2web_cli.cli import main
from hyper2web_cli.terminal import network_addresses
from tests.support import REPO, isolated_home


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose HOME (and so the app folder for certificates) is a temp folder."""
    isolated_home(tmp_path, monkeypatch)
    return CliRunner()


@pytest.fixture
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``serve`` that gets as far as running fails the test instead of blocking it."""

    def run(self: Server, ready: object = None) -> None:
        self.close_sockets()
        raise AssertionError("serve started although it should have refused")

    monkeypatch.setattr(Server, "run", run)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- help and version ---------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(runner: CliRunner, flag: str) -> None:
    result = runner.invoke(main, [flag])
    assert result.exit_code == 0
    assert result.output.strip() == f"hyper2web, version {hyper2web.__version__}"


@pytest.mark.parametrize("command, expected", [
    ([], ["serve", "certs", "init", "--version"]),
    (["serve"], ["[ROOT]", "--host", "--port", "--cert", "--key", "--routes", "--no-routes",
                 "--quiet"]),
    (["certs"], ["--out", "--host"]),
    (["init"], ["NAME"]),
])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_on_every_command(runner: CliRunner, command: list[str], expected: list[str],
                               flag: str) -> None:
    result = runner.invoke(main, [*command, flag], prog_name="hyper2web")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: hyper2web {' '.join(command)}".rstrip())
    for word in expected:
        assert word in result.output


def test_serve_help_shows_defaults(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve", "--help"], prog_name="hyper2web")
    assert "default ./public" in result.output
    assert "localhost" in result.output
    assert "5000" in result.output


def test_python_m_hyper2web_cli_help() -> None:
    result = subprocess.run([sys.executable, "-m", "hyper2web_cli", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: hyper2web ")
    assert "serve" in result.stdout and "init" in result.stdout
    assert result.stderr == ""


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["server"], prog_name="hyper2web")
    assert result.exit_code == 2
    assert "No such command 'server'" in result.output


# -- certs ------------------------------------------------------------------------------------


def load_pair(folder: Path) -> tuple[x509.Certificate, object]:
    cert = x509.load_pem_x509_certificate((folder / CERT_NAME).read_bytes())
    key = serialization.load_pem_private_key((folder / KEY_NAME).read_bytes(), password=None)
    return cert, key


def san_of(cert: x509.Certificate) -> tuple[list[str], list[object]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)


def required_names() -> tuple[set[str], set[object]]:
    """The names and addresses every certificate made here must cover."""
    dns = {"localhost", "*.localhost"}
    if socket.gethostname() not in ("", "localhost"):
        dns.add(socket.gethostname())
    ips = {ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", *network_addresses())}
    return dns, ips


def assert_covers_the_required_names(cert: x509.Certificate) -> None:
    dns, ips = san_of(cert)
    need_dns, need_ips = required_names()
    assert need_dns <= set(dns), dns
    assert need_ips <= set(ips), ips
    assert not {"0.0.0.0", "::"} & {str(ip) for ip in ips}
    assert len(dns) == len(set(dns)) and len(ips) == len(set(ips))  # each name once


def test_certs_writes_an_ec_p256_pair_for_local_names(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out" / "nested"
    result = runner.invoke(main, ["certs", "--out", str(out), "--host", "example.test",
                                  "--host", "192.168.1.20", "--host", "fd00::7"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [CERT_NAME, KEY_NAME]
    assert str(out / CERT_NAME) in result.output
    assert str(out / KEY_NAME) in result.output

    cert, key = load_pair(out)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)

    dns, ips = san_of(cert)
    assert "localhost" in dns and "example.test" in dns
    for ip in ("127.0.0.1", "::1", "192.168.1.20", "fd00::7"):
        assert ipaddress.ip_address(ip) in ips, ip
    assert "192.168.1.20" not in dns  # an address goes in as an IP entry, not as a name

    now = dt.datetime.now(dt.timezone.utc)
    assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=VALIDITY_DAYS) <= dt.timedelta(days=825)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False

    assert mode(out / KEY_NAME) == 0o600


def test_certs_defaults_to_the_working_folder(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["certs"])
    assert result.exit_code == 0, result.output
    cert, _ = load_pair(tmp_path)
    assert_covers_the_required_names(cert)
    valid_for = next(line for line in result.output.splitlines()
                     if line.startswith("valid for:"))
    listed = valid_for.partition(":")[2].split(", ")
    for name in ("localhost", "*.localhost", "127.0.0.1", "::1"):
        assert name in [n.strip() for n in listed], valid_for


def test_certs_replacing_a_readable_key_makes_it_private(runner: CliRunner,
                                                         tmp_path: Path) -> None:
    key = tmp_path / KEY_NAME
    key.write_text("old")
    key.chmod(0o644)
    result = runner.invoke(main, ["certs"])
    assert result.exit_code == 0, result.output
    assert mode(key) == 0o600
    assert "PRIVATE KEY" in key.read_text()


def test_certs_into_a_file_fails_cleanly(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    result = runner.invoke(main, ["certs", "--out", "taken"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "taken" in result.output
    assert (tmp_path / "taken").read_text() == "x"


# -- init -------------------------------------------------------------------------------------


def test_init_writes_a_project(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["init", "my-game"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "my-game"
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == ["README.md", CERT_NAME, KEY_NAME, "public/app.js", "public/icon-192.png",
                     "public/icon-512.png", "public/icon-maskable-512.png", "public/index.html",
                     "public/manifest.webmanifest", "public/offline.html", "public/style.css",
                     "public/sw.js", "routes.py"]
    index = (project / "public" / "index.html").read_text()
    assert "<title>My Game</title>" in index
    assert "{{title}}" not in index
    assert "def setup(app)" in (project / "routes.py").read_text()
    assert mode(project / KEY_NAME) == 0o600
    load_pair(project)
    # It says what to type next.
    assert "cd my-game" in result.output
    assert "hyper2web serve" in result.output


def test_init_into_an_empty_folder(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(main, ["init", "empty"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "empty" / "public" / "index.html").is_file()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_init_refuses_a_folder_with_files(runner: CliRunner, tmp_path: Path) -> None:
    project = tmp_path / "mine"
    (project / "public").mkdir(parents=True)
    (project / "public" / "index.html").write_text("my own work")
    (project / "routes.py").write_text("# mine\n")
    before = snapshot(project)
    result = runner.invoke(main, ["init", "mine"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: mine is not empty; choose a new name or empty it first"]
    assert snapshot(project) == before


def test_init_refuses_a_file(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("x")
    result = runner.invoke(main, ["init", "notes"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: notes exists and is not a folder")
    assert (tmp_path / "notes").read_text() == "x"


# -- serve: errors the user can cause -----------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp_path with public/index.html and a certificate pair in certs/."""
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("<title>t</title>")
    write_certificates(tmp_path / "certs")
    return tmp_path


def serve_error(runner: CliRunner, args: list[str]) -> str:
    """Run ``serve`` and return its single output line, checking exit code 1."""
    result = runner.invoke(main, ["serve", "--port", "0", *args], prog_name="hyper2web")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


PAIR = ["--cert", "certs/localhost.crt.pem", "--key", "certs/localhost.key"]


@pytest.mark.usefixtures("never_serve")
class TestServeErrors:
    def test_missing_folder(self, runner: CliRunner, project: Path) -> None:
        assert serve_error(runner, ["nowhere", *PAIR]) == "Error: folder not found: nowhere"

    def test_default_folder_missing(self, runner: CliRunner, tmp_path: Path) -> None:
        assert serve_error(runner, []) == "Error: folder not found: public"

    def test_a_file_instead_of_a_folder(self, runner: CliRunner, project: Path) -> None:
        line = serve_error(runner, ["public/index.html", *PAIR])
        assert line == "Error: not a folder: public/index.html"

    def test_only_cert(self, runner: CliRunner, project: Path) -> None:
        line = serve_error(runner, ["public", "--cert", "certs/localhost.crt.pem"])
        assert "--cert and --key go together" in line

    def test_only_key(self, runner: CliRunner, project: Path) -> None:
        line = serve_error(runner, ["public", "--key", "certs/localhost.key"])
        assert "--cert and --key go together" in line

    def test_missing_certificate(self, runner: CliRunner, project: Path) -> None:
        line = serve_error(runner, ["public", "--cert", "nope.pem", "--key",
                                    "certs/localhost.key"])
        assert line == "Error: certificate file not found: nope.pem"

    def test_garbage_certificate(self, runner: CliRunner, project: Path) -> None:
        (project / "garbage.pem").write_text("this is not a certificate\n")
        line = serve_error(runner, ["public", "--cert", "garbage.pem", "--key",
                                    "certs/localhost.key"])
        assert line.startswith("Error: garbage.pem is not a PEM certificate")

    def test_garbage_key(self, runner: CliRunner, project: Path) -> None:
        (project / "garbage.key").write_bytes(os.urandom(200))
        line = serve_error(runner, ["public", "--cert", "certs/localhost.crt.pem", "--key",
                                    "garbage.key"])
        assert line.startswith("Error: garbage.key is not a PEM private key")

    def test_swapped_files(self, runner: CliRunner, project: Path) -> None:
        line = serve_error(runner, ["public", "--cert", "certs/localhost.key", "--key",
                                    "certs/localhost.crt.pem"])
        assert "certs/localhost.key is not a PEM certificate" in line

    def test_key_of_another_certificate(self, runner: CliRunner, project: Path) -> None:
        write_certificates(project / "other")
        line = serve_error(runner, ["public", "--cert", "certs/localhost.crt.pem", "--key",
                                    "other/localhost.key"])
        assert line == ("Error: other/localhost.key is not the private key of "
                        "certs/localhost.crt.pem")

    def test_unreadable_key(self, runner: CliRunner, project: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
        key = project / "certs" / KEY_NAME
        key.chmod(0)
        if os.geteuid() == 0:  # root reads files whatever their mode: make access() say no
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda path, m, **kw: False
                                if Path(path).resolve() == key else real_access(path, m, **kw))
        line = serve_error(runner, ["public", *PAIR])
        assert line == "Error: key file is not readable: certs/localhost.key"

    def test_port_in_use_when_localhost_is_ipv6_first(self, runner: CliRunner, project: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        if not socket.has_ipv6:
            pytest.skip("no IPv6")
        real = socket.getaddrinfo

        def ipv6_first(host: str, port: int, *args: object, **kwargs: object) -> list:
            if host != "localhost":
                return real(host, port, *args, **kwargs)
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        monkeypatch.setattr(socket, "getaddrinfo", ipv6_first)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = runner.invoke(main, ["serve", "public", *PAIR, "--port", str(port),
                                           "--strict-port"])
        assert result.exit_code == 1, result.output
        assert f"port {port} is already in use" in result.output

    def test_routes_syntax_error_names_file_and_line(self, runner: CliRunner,
                                                      project: Path) -> None:
        (project / "routes.py").write_text("def setup(app):\n    pass\n\ndef broken(:\n")
        line = serve_error(runner, ["public", *PAIR])
        assert f"{project / 'routes.py'}:4: SyntaxError" in line

    def test_routes_failing_at_import_names_file_and_line(self, runner: CliRunner,
                                                           project: Path) -> None:
        (project / "routes.py").write_text("import os\n\nvalue = missing_name\n")
        line = serve_error(runner, ["public", *PAIR])
        assert f"{project / 'routes.py'}:3: NameError" in line

    def test_routes_failing_in_setup(self, runner: CliRunner, project: Path) -> None:
        (project / "routes.py").write_text(
            "def setup(app):\n    app.get('a', None)\n    raise RuntimeError('no db')\n")
        line = serve_error(runner, ["public", *PAIR])
        assert f"{project / 'routes.py'}:3: RuntimeError: no db" in line

    def test_routes_without_setup(self, runner: CliRunner, project: Path) -> None:
        (project / "routes.py").write_text("x = 1\n")
        line = serve_error(runner, ["public", *PAIR])
        assert "defines no setup(app)" in line

    def test_routes_option_to_a_missing_file(self, runner: CliRunner, project: Path) -> None:
        line = serve_error(runner, ["public", *PAIR, "--routes", "api.py"])
        assert line == "Error: routes file not found: api.py"

    def test_broken_routes_option_file(self, runner: CliRunner, project: Path) -> None:
        (project / "api.py").write_text("def setup(app)\n    pass\n")
        line = serve_error(runner, ["public", *PAIR, "--routes", "api.py"])
        assert "api.py:1: SyntaxError" in line


# -- serve: which certificate, in-process ------------------------------------------------------


@pytest.fixture
def serve_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` binds, prints its banner and returns instead of serving."""

    def run(self: Server, ready: Callable[[Server], None] | None = None) -> None:
        if ready is not None:
            ready(self)
        self.close_sockets()

    monkeypatch.setattr(Server, "run", run)


def app_certs(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".config" / "hyper2web" / "certs"


@pytest.mark.usefixtures("serve_once")
class TestServeCertificates:
    def test_created_in_the_app_folder(self, runner: CliRunner, project: Path) -> None:
        result = runner.invoke(main, ["serve", "public", "--port", "0"])
        assert result.exit_code == 0, result.output
        folder = app_certs(project)
        ca_file = folder.parent / "rootCA.pem"
        assert f"created a local certificate authority: {ca_file}" in result.stderr
        assert "run 'hyper2web certs --install' once" in result.stderr
        created = re.search(r"created a certificate for (.+) in (.+)$", result.stderr, re.M)
        assert created is not None, result.stderr
        assert created.group(2) == str(folder)
        assert created.group(1).startswith("localhost, *.localhost, 127.0.0.1, ::1")
        assert f"TLS:     {folder / CERT_NAME}" in result.stdout
        assert mode(folder / KEY_NAME) == 0o600
        cert, _ = load_pair(folder)
        assert_covers_the_required_names(cert)
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
        cert.verify_directly_issued_by(ca)
        again = runner.invoke(main, ["serve", "public", "--port", "0"])
        assert "created a certificate" not in again.output
        assert "certificate authority" not in again.output

    def test_created_for_a_wildcard_bind(self, runner: CliRunner, project: Path) -> None:
        result = runner.invoke(main, ["serve", "public", "--port", "0", "--host", "0.0.0.0"])
        assert result.exit_code == 0, result.output
        assert "https://localhost:" in result.stdout
        cert, _ = load_pair(app_certs(project))
        assert_covers_the_required_names(cert)
        assert "0.0.0.0" not in san_of(cert)[0]

    def test_extra_hosts_accumulate(self, runner: CliRunner, project: Path) -> None:
        for host in ("127.0.0.2", "127.0.0.3"):
            result = runner.invoke(main, ["serve", "public", "--port", "0", "--host", host])
            assert result.exit_code == 0, result.output
            assert f"https://{host}:" in result.stdout
            assert "created a certificate" in result.stderr
        cert_file = app_certs(project) / CERT_NAME
        cert, _ = load_pair(app_certs(project))
        ips = {str(ip) for ip in san_of(cert)[1]}
        assert {"127.0.0.1", "::1", "127.0.0.2", "127.0.0.3"} <= ips
        before = cert_file.read_bytes()
        result = runner.invoke(main, ["serve", "public", "--port", "0", "--host", "127.0.0.2"])
        assert "created a certificate" not in result.output
        assert cert_file.read_bytes() == before

    def test_garbage_in_the_app_folder_is_replaced(self, runner: CliRunner,
                                                   project: Path) -> None:
        folder = app_certs(project)
        folder.mkdir(parents=True)
        (folder / CERT_NAME).write_text("garbage")
        (folder / KEY_NAME).write_text("garbage")
        result = runner.invoke(main, ["serve", "public", "--port", "0"])
        assert result.exit_code == 0, result.output
        assert "created a certificate" in result.stderr
        load_pair(folder)

    def test_a_pair_in_the_working_folder_wins(self, runner: CliRunner, project: Path) -> None:
        write_certificates(project)
        result = runner.invoke(main, ["serve", "public", "--port", "0"])
        assert result.exit_code == 0, result.output
        assert f"TLS:     {project / CERT_NAME}" in result.stdout
        assert not app_certs(project).exists()

    def test_a_pair_beside_the_folder_is_found(self, runner: CliRunner, project: Path) -> None:
        site = project / "site"
        (site / "public").mkdir(parents=True)
        write_certificates(site)
        result = runner.invoke(main, ["serve", "site/public", "--port", "0"])
        assert result.exit_code == 0, result.output
        assert f"TLS:     {site / CERT_NAME}" in result.stdout
        assert not app_certs(project).exists()

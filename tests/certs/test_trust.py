"""``hyper2web certs --install / --status / --uninstall``: the CA in the NSS databases of
Chromium (``$HOME/.pki/nssdb``) and Firefox (each profile) and in the system store, here a
temporary folder (``HYPER2WEB_SYSTEM_CA_DIR``) updated by a stand-in command."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import hashes

from hyper2web.certs import CERT_NAME
from hyper2web_cli import trust
from hyper2web_cli.cli import main
from tests.certs.catools import (
    ca_file,
    common_name,
    der,
    isolate,
    load_cert,
    nickname,
    nss_der,
    nss_list,
)
from tests.support import need_tool


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A user of our own; the system store's update command leaves a mark when it runs."""
    isolate(monkeypatch, tmp_path, update_command=f"touch {tmp_path / 'updated'}")
    monkeypatch.chdir(tmp_path)
    system = trust.DebianSystemStore()
    assert system.folder == tmp_path / "sys"  # never the machine's own store
    assert system.command[0] == "touch"
    return tmp_path / "home"


def invoke(args: list[str], code: int = 0) -> Result:
    result = CliRunner().invoke(main, args, prog_name="hyper2web")
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def firefox_profile(home: Path) -> Path:
    profile = home / ".mozilla" / "firefox" / "x.default"
    profile.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{profile}", "--empty-password"],
                   check=True, capture_output=True, timeout=30)
    return profile


def store_lines(status: str) -> dict[str, str]:
    """``--status`` lines of the stores: store name -> ``trusted`` / ``not trusted``."""
    found = {}
    for line in status.splitlines():
        match = re.match(r"^  (trusted|not trusted|unknown)\s+(.+?)(?::.*)?$", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def test_install_status_uninstall(home: Path, tmp_path: Path) -> None:
    need_tool("certutil")
    profile = firefox_profile(home)
    chromium = home / ".pki" / "nssdb"
    system = tmp_path / "sys"
    invoke(["certs"])  # a certificate in the working folder, for --status
    names = {f"Chromium/Chrome ({chromium})", f"Firefox ({profile})", f"system store ({system})"}

    result = invoke(["certs", "--install"])
    for name in names:
        assert f"  trusted in {name}" in result.output
    ca_path = ca_file(home)
    ca_name = common_name(load_cert(ca_path))
    assert f"{ca_name} is trusted" in result.output
    assert (chromium / "cert9.db").is_file()  # the Chromium database is created

    label = nickname(ca_path)
    for db in (chromium, profile):
        entries = [line for line in nss_list(db).splitlines() if line.startswith(label)]
        assert len(entries) == 1, nss_list(db)
        assert entries[0].split()[-1] == "C,,"  # a CA trusted to issue server certificates
        assert nss_der(db, label) == der(ca_path)
    crts = list(system.glob("*.crt"))
    assert len(crts) == 1 and load_cert(crts[0]) == load_cert(ca_path)
    assert (tmp_path / "updated").exists()  # the update command ran

    # Installing again leaves one entry, not two.
    invoke(["certs", "--install"])
    for db in (chromium, profile):
        assert sum(line.startswith(label) for line in nss_list(db).splitlines()) == 1

    status = invoke(["certs", "--status"]).output
    assert f"Local CA: {ca_name}" in status
    assert f"  file:     {ca_path}" in status
    assert store_lines(status) == dict.fromkeys(names, "trusted")
    leaf = load_cert(tmp_path / CERT_NAME)
    assert f"Certificate {tmp_path / CERT_NAME}" in status
    hosts = re.search(r"^  hosts:    (.+)$", status, re.M)
    assert hosts is not None
    for host in ("localhost", "*.localhost", "127.0.0.1", "::1"):
        assert host in hosts.group(1).split(", ")
    assert f"  expires:  {leaf.not_valid_after_utc:%Y-%m-%d} (signed by the local CA)" in status

    (tmp_path / "updated").unlink()
    result = invoke(["certs", "--uninstall"])
    for name in names:
        assert f"  removed from {name}" in result.output
    for db in (chromium, profile):
        assert label not in nss_list(db)
        assert nss_der(db, label) is None
    assert list(system.glob("*.crt")) == []
    assert (tmp_path / "updated").exists()
    status = invoke(["certs", "--status"]).output
    assert store_lines(status) == dict.fromkeys(names, "not trusted")
    assert "was not in any trust store" in invoke(["certs", "--uninstall"]).output


def test_ca_path_is_the_file_the_stores_hold(home: Path) -> None:
    need_tool("certutil")
    invoke(["certs", "--install"])
    path = Path(invoke(["certs", "--ca-path"]).stdout.strip())
    assert path == ca_file(home)
    assert nss_der(home / ".pki" / "nssdb", nickname(path)) == der(path)


def test_without_certutil_the_hint_names_libnss3_tools(home: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    true = shutil.which("true")
    assert true is not None
    monkeypatch.setenv("HYPER2WEB_UPDATE_CA_COMMAND", true)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("certutil") is None

    # The system store still works: a hint for the NSS stores, and success.
    result = invoke(["certs", "--install"])
    chromium = home / ".pki" / "nssdb"
    assert (f"  not trusted in Chromium/Chrome ({chromium}): certutil not found: install "
            "certutil (Debian/Ubuntu: sudo apt install libnss3-tools)") in result.output
    assert f"  trusted in system store ({tmp_path / 'sys'})" in result.output
    status = invoke(["certs", "--status"]).output
    assert store_lines(status)[f"Chromium/Chrome ({chromium})"] == "unknown"
    assert "libnss3-tools" in status

    # With no store at all it fails, still with the hint.
    invoke(["certs", "--uninstall"])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("HYPER2WEB_SYSTEM_CA_DIR", str(blocker / "sys"))
    result = invoke(["certs", "--install"], code=1)
    assert "libnss3-tools" in result.output
    assert "Error: the CA could not be added to any trust store" in result.output


def test_a_system_store_needing_root_gives_the_commands(home: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``sudo hyper2web`` would use root's HOME and CA: the user gets the commands instead."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trust.shutil, "copyfile", refuse)
    monkeypatch.setenv("PATH", str(tmp_path))  # no certutil: the NSS stores are skipped
    result = invoke(["certs", "--install"], code=1)
    line = next(line for line in result.output.splitlines() if "system store" in line)
    assert f"needs root: run 'sudo cp {ca_file(home)} {tmp_path / 'sys'}/" in line
    assert f".crt && sudo touch {tmp_path / 'updated'}'" in line
    assert "sudo hyper2web" not in result.output


def test_the_system_store_is_listed_only_where_its_update_command_exists(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPER2WEB_SYSTEM_CA_DIR")
    monkeypatch.setenv("HYPER2WEB_UPDATE_CA_COMMAND", "no-such-update-command")
    names = [store.name for store in trust.stores()]  # type: ignore[attr-defined]
    assert not any(name.startswith("system store") for name in names), names


@pytest.mark.parametrize("store_class", [trust.MacStore, trust.WindowsStore])
def test_keychain_and_windows_stores_find_the_ca_by_its_hash(
        home: Path, monkeypatch: pytest.MonkeyPatch, store_class: type) -> None:
    """Those stores know no NSS nickname: they are asked about the CA's SHA-1."""
    invoke(["certs", "--ca-path"])
    sha1 = load_cert(ca_file(home)).fingerprint(hashes.SHA1()).hex().upper()
    calls: list[list[str]] = []

    def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        listing = f'SHA-1 hash: {sha1}\n"labl"<blob>="x"\n'
        return subprocess.CompletedProcess(args, 0, listing, "")

    monkeypatch.setattr(trust, "_run", run)
    store = store_class()
    label = nickname(ca_file(home))
    assert store.has(label)
    assert store.uninstall(label).ok
    assert calls and all(label not in " ".join(args) for args in calls)
    assert any(sha1 in args for args in calls[-1:]), calls

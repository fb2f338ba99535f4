"""Trust stores: where the local CA is added so browsers accept its certificates.

Each store knows whether this machine has it, and how to add, find and remove the CA:
the NSS databases that Chromium/Chrome (``~/.pki/nssdb``) and Firefox (each profile) use
on Linux, through ``certutil`` from ``libnss3-tools``; the system store (Debian's
``/usr/local/share/ca-certificates`` + ``update-ca-certificates``, macOS's keychain,
Windows' Root store).

``HYPER2WEB_SYSTEM_CA_DIR`` and ``HYPER2WEB_UPDATE_CA_COMMAND`` redirect the Debian system
store (tests use a temporary folder, never the machine's own store).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .certs import Authority, load_authority

NSS_HINT = "install certutil (Debian/Ubuntu: sudo apt install libnss3-tools) and run again"
# ``sudo hyper2web ...`` would run with root's HOME, so with root's CA, not the user's one:
# the system store is updated by commands the user runs, printed in full.


@dataclass
class Result:
    store: str
    ok: bool
    message: str = ""


class Store(Protocol):
    """What every trust store can do."""

    @property
    def name(self) -> str: ...

    def install(self, ca_path: Path, nickname: str) -> Result: ...

    def uninstall(self, nickname: str) -> Result: ...

    def has(self, nickname: str) -> bool: ...


def nickname(ca: Authority) -> str:
    """The CA's name in the stores: its name and fingerprint, so a new CA is told apart."""
    return f"{ca.name} {ca.fingerprint[:8]}"


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60,
                          check=False, **kwargs)  # type: ignore[call-overload]


class NSSStore:
    """One NSS certificate database (a Chromium or Firefox profile)."""

    def __init__(self, label: str, folder: Path) -> None:
        self.label = label
        self.folder = folder

    @property
    def name(self) -> str:
        return f"{self.label} ({self.folder})"

    def _db(self) -> str:
        return f"sql:{self.folder}"

    def install(self, ca_path: Path, nickname: str) -> Result:
        certutil = shutil.which("certutil")
        if certutil is None:
            return Result(self.name, False, f"certutil not found: {NSS_HINT}")
        if not (self.folder / "cert9.db").exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            made = _run([certutil, "-N", "-d", self._db(), "--empty-password"])
            if made.returncode != 0:
                return Result(self.name, False, made.stderr.strip() or "cannot create the db")
        self.uninstall(nickname)
        done = _run([certutil, "-A", "-d", self._db(), "-t", "C,,", "-n", nickname,
                     "-i", str(ca_path)])
        return Result(self.name, done.returncode == 0, done.stderr.strip())

    def uninstall(self, nickname: str) -> Result:
        certutil = shutil.which("certutil")
        if certutil is None:
            return Result(self.name, False, f"certutil not found: {NSS_HINT}")
        removed = False
        for _ in range(10):  # the same nickname may have been added more than once
            if _run([certutil, "-D", "-d", self._db(), "-n", nickname]).returncode != 0:
                break
            removed = True
        return Result(self.name, removed)

    def has(self, nickname: str) -> bool:
        certutil = shutil.which("certutil")
        if certutil is None or not (self.folder / "cert9.db").exists():
            return False
        return _run([certutil, "-L", "-d", self._db(), "-n", nickname]).returncode == 0


class DebianSystemStore:
    """``/usr/local/share/ca-certificates`` and ``update-ca-certificates``."""

    def __init__(self) -> None:
        self.folder = Path(os.environ.get("HYPER2WEB_SYSTEM_CA_DIR",
                                          "/usr/local/share/ca-certificates"))
        self.command = shlex.split(os.environ.get("HYPER2WEB_UPDATE_CA_COMMAND",
                                                  "update-ca-certificates"))
        self.name = f"system store ({self.folder})"

    def _file(self, nickname: str) -> Path:
        return self.folder / (nickname.replace(" ", "-").replace("@", "-") + ".crt")

    def _as_root(self, action: str) -> str:
        return f"needs root: run 'sudo {action} && sudo {shlex.join(self.command)}'"

    def install(self, ca_path: Path, nickname: str) -> Result:
        target = self._file(nickname)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ca_path, target)
        except PermissionError:
            return Result(self.name, False, self._as_root(
                f"cp {shlex.quote(str(ca_path))} {shlex.quote(str(target))}"))
        except OSError as exc:
            return Result(self.name, False, str(exc))
        return self._update()

    def uninstall(self, nickname: str) -> Result:
        path = self._file(nickname)
        if not path.exists():
            return Result(self.name, False)
        try:
            path.unlink()
        except PermissionError:
            return Result(self.name, False, self._as_root(f"rm {shlex.quote(str(path))}"))
        return self._update()

    def has(self, nickname: str) -> bool:
        return self._file(nickname).exists()

    def _update(self) -> Result:
        try:
            done = _run(self.command)
        except FileNotFoundError:
            return Result(self.name, False, f"{self.command[0]} not found")
        return Result(self.name, done.returncode == 0, done.stderr.strip())


def _ca_sha1() -> str | None:
    """SHA-1 of the user's CA: how the keychain and the Windows store name a certificate.

    The nickname (the CA's name and the start of its SHA-256) is an NSS label only; these
    stores know certificates by subject or hash.
    """
    ca = load_authority()
    if ca is None:
        return None
    from cryptography.hazmat.primitives import hashes

    return ca.cert.fingerprint(hashes.SHA1()).hex().upper()


class MacStore:
    name = "macOS system keychain"
    keychain = "/Library/Keychains/System.keychain"

    def install(self, ca_path: Path, nickname: str) -> Result:
        done = _run(["sudo", "security", "add-trusted-cert", "-d", "-r", "trustRoot", "-k",
                     self.keychain, str(ca_path)])
        return Result(self.name, done.returncode == 0, done.stderr.strip())

    def uninstall(self, nickname: str) -> Result:
        sha1 = _ca_sha1()
        if sha1 is None or not self.has(nickname):
            return Result(self.name, False)
        done = _run(["sudo", "security", "delete-certificate", "-Z", sha1, self.keychain])
        return Result(self.name, done.returncode == 0, done.stderr.strip())

    def has(self, nickname: str) -> bool:
        sha1 = _ca_sha1()
        if sha1 is None:
            return False
        found = _run(["security", "find-certificate", "-a", "-Z", self.keychain])
        return found.returncode == 0 and sha1 in found.stdout.upper()


class WindowsStore:
    name = "Windows user Root store"

    def install(self, ca_path: Path, nickname: str) -> Result:
        done = _run(["certutil", "-user", "-addstore", "Root", str(ca_path)])
        return Result(self.name, done.returncode == 0, done.stdout.strip())

    def uninstall(self, nickname: str) -> Result:
        sha1 = _ca_sha1()
        if sha1 is None or not self.has(nickname):
            return Result(self.name, False)
        done = _run(["certutil", "-user", "-delstore", "Root", sha1])
        return Result(self.name, done.returncode == 0, done.stdout.strip())

    def has(self, nickname: str) -> bool:
        sha1 = _ca_sha1()
        return sha1 is not None and _run(
            ["certutil", "-user", "-verifystore", "Root", sha1]).returncode == 0


def stores() -> list[Store]:
    """The trust stores this machine has."""
    if sys.platform == "darwin":
        return [MacStore()]
    if sys.platform == "win32":
        return [WindowsStore()]
    home = Path.home()
    found: list[Store] = [NSSStore("Chromium/Chrome", home / ".pki" / "nssdb")]
    snap_chromium = home / "snap" / "chromium" / "current"
    if snap_chromium.is_dir():
        found.append(NSSStore("Chromium (snap)", snap_chromium / ".pki" / "nssdb"))
    for base in (home / ".mozilla" / "firefox",
                 home / "snap" / "firefox" / "common" / ".mozilla" / "firefox"):
        if base.is_dir():
            for profile in sorted(base.iterdir()):
                if (profile / "cert9.db").exists():
                    found.append(NSSStore("Firefox", profile))
    system = DebianSystemStore()
    # Only where update-ca-certificates exists (often in sbin, outside a user's PATH): a copy
    # in /usr/local/share/ca-certificates means nothing to Fedora's or Arch's tools.
    search = os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"))
    if "HYPER2WEB_SYSTEM_CA_DIR" in os.environ or (
            system.folder.parent.is_dir() and shutil.which(system.command[0], path=search)):
        found.append(system)
    return found

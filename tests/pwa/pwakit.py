"""Helpers of the PWA tests: make HOME's Chromium trust a running server."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.support import need_tool


def trust_server(env: dict[str, str], server: Any) -> None:
    """Make sure HOME's Chromium trusts ``server``: the local CA, else its certificate."""
    certutil = need_tool("certutil")
    db = Path(env["HOME"]) / ".pki" / "nssdb"
    listed = subprocess.run([certutil, "-L", "-d", f"sql:{db}"], capture_output=True,
                            text=True, check=False)
    if "hyper2web development CA" in listed.stdout:
        return
    banner = "".join(server.output)
    cert = next(line.split("TLS:", 1)[1].strip() for line in banner.splitlines()
                if "TLS:" in line)
    trust_certificate(Path(env["HOME"]), Path(cert))


def trust_certificate(home: Path, cert: Path) -> None:
    """Trust one certificate in HOME's NSS database, without the local CA."""
    certutil = need_tool("certutil")
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True, exist_ok=True)
    if not (db / "cert9.db").exists():
        subprocess.run([certutil, "-d", f"sql:{db}", "-N", "--empty-password"], check=True)
    subprocess.run([certutil, "-A", "-d", f"sql:{db}", "-t", "CP,,", "-n", "test", "-i",
                    str(cert)], check=True)

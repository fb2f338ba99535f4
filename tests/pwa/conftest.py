"""Fixtures of the PWA tests: a HOME whose browsers trust the local CA, and Chromium.

``tests/conftest.py``'s helpers are re-exported here: test folders have no ``__init__.py``,
so ``from conftest import ...`` in a test module imports the conftest loaded last.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "_hyper2web_tests_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
assert _spec is not None and _spec.loader is not None
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)

REPO: Path = _root.REPO
CliServer = _root.CliServer
need_tool = _root.need_tool
start_cli = _root.start_cli

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def run_cli(args: list[str], cwd: Path, env: dict[str, str],
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m hyper2web_cli ARGS`` to the end, output captured."""
    return subprocess.run([sys.executable, "-m", "hyper2web_cli", *args], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def copy_sample_site(target: Path) -> Path:
    """sample_site/ without certificates, records or caches."""
    shutil.copytree(REPO / "sample_site", target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pem", "*.key",
                                                  "records.json", ".records.json.*"))
    return target


@pytest.fixture
def home_env(tmp_path: Path, cli_server: Callable[..., Any]) -> dict[str, str]:
    """The environment of ``cli_server``'s HOME, with the system store in a temp folder.

    Depends on ``cli_server`` so that both use the same HOME (it creates the folder).
    """
    home = tmp_path / "home"
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "HYPER2WEB_SYSTEM_CA_DIR": str(tmp_path / "sys"),
            "HYPER2WEB_UPDATE_CA_COMMAND": "true"}


@pytest.fixture
def trusted_env(home_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``home_env`` after ``hyper2web certs --install``: its Chromium trusts the local CA.

    When the install fails, ``trust_server`` trusts the running server's certificate
    instead.
    """
    need_tool("certutil")
    done = run_cli(["certs", "--install"], tmp_path, home_env)
    if done.returncode != 0:
        print("hyper2web certs --install failed:", done.stdout, done.stderr)
    return home_env


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


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``chromium(env, **context options)``: a persistent (not incognito) browser context.

    Installability is never granted to an incognito profile, and a service worker needs a
    trusted certificate: the browser runs with the HOME of ``env``, whose NSS database
    trusts the server's CA. Never downloads a browser.
    """
    executable = need_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    manager = sync_api.sync_playwright().start()
    contexts: list[Any] = []

    def launch(env: dict[str, str], **options: Any) -> Any:
        profile = tmp_path / f"profile-{len(contexts)}"
        context = manager.chromium.launch_persistent_context(
            str(profile), executable_path=executable, args=CHROMIUM_ARGS, timeout=20000,
            env={**os.environ, **env}, **options)
        context.set_default_timeout(10000)
        contexts.append(context)
        return context

    try:
        yield launch
    finally:
        for context in contexts:
            context.close()
        manager.stop()

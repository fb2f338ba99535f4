"""Helpers every test folder shares.

A plain module rather than ``conftest.py``: each test folder has a ``conftest.py`` of its
own, and only one module named ``conftest`` can be imported at a time. ``tests/`` is a
package, so every test imports it as ``from tests.support import ...``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
URL_RE = re.compile(r"https://(?:localhost|\[[0-9a-f:]+\]|[\d.]+):(\d+)/")
REPO = Path(__file__).resolve().parent.parent
# Headless Chromium as the tests run it (add --ignore-certificate-errors where wanted).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def launched_chromium(home: Path | None = None, timeout: float = 20000,
                      args: list[str] | None = None) -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser); with
    ``home``, its NSS database (the trusted certificates) is the one under that HOME;
    ``args`` replace ``CHROMIUM_ARGS``."""
    chromium = need_tool("chromium")
    sync_api = need_module("playwright.sync_api")
    env = {**os.environ, "HOME": str(home)} if home is not None else None
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args or CHROMIUM_ARGS,
                                    env=env, timeout=timeout)
        try:
            yield browser
        finally:
            browser.close()


def need_tool(name: str) -> str:
    """The path of an external tool; in CI a missing tool fails, elsewhere it skips."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: see .ci/run)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def need_module(name: str) -> Any:
    """Import a test dependency (Playwright, say); in CI a missing one fails, elsewhere it
    skips, so a CI run never passes by skipping the tests that need it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = f"{name} cannot be imported ({exc}); pip install -e '.[test]'"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


class CliServer:
    """``hyper2web serve`` running as a separate process, as a user starts it."""

    def __init__(self, proc: subprocess.Popen[str], port: int, output: list[str]) -> None:
        self.proc = proc
        self.port = port
        self.output = output

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def start_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 15) -> CliServer:
    """Run ``python -m hyper2web_cli serve ...`` and wait for its banner's URL."""
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyper2web_cli", *args],
        cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    port = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        found = URL_RE.search(line)
        if found:
            port = int(found.group(1))
            break
    if port is None:
        proc.kill()
        raise RuntimeError("server did not start:\n" + "".join(output) + proc.stdout.read())

    def drain() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            output.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return CliServer(proc, port, output)


def run_cli(args: list[str], cwd: Path, env: dict[str, str],
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m hyper2web_cli ARGS`` to the end, as the user ``env`` describes."""
    return subprocess.run([sys.executable, "-m", "hyper2web_cli", *args], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME (and so the app folder: the CA, certificates) in ``tmp_path``, run from there."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.chdir(tmp_path)
    return home


def copy_sample_site(target: Path) -> Path:
    """sample_site/ without certificates, records or caches."""
    shutil.copytree(REPO / "sample_site", target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pem", "*.key",
                                                  "records.json", ".records.json.*",
                                                  "records.json.migrated",
                                                  "records.sqlite3*"))
    return target


PROTOCOLS = ["HTTP/2", "HTTP/1.1"]


def protocol_client(version: str, **options: Any) -> httpx.Client:
    """An httpx client that speaks only ``version`` (``client.version``), trusts the test
    certificate, follows no redirect, and checks that every response came over it."""
    def check(response: httpx.Response) -> None:
        assert response.http_version == version, response.http_version

    http2 = version == "HTTP/2"
    client = httpx.Client(http1=not http2, http2=http2, verify=False, follow_redirects=False,
                          event_hooks={"response": [check]}, **options)
    client.version = version  # type: ignore[attr-defined]
    return client

"""Fixtures of the PWA tests: a HOME whose browsers trust the local CA, and Chromium."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support import CHROMIUM_ARGS, isolated_home, need_module, need_tool, run_cli


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner with HOME (the CA, the NSS database) and the system store in tmp_path."""
    isolated_home(tmp_path, monkeypatch)
    monkeypatch.setenv("HYPER2WEB_SYSTEM_CA_DIR", str(tmp_path / "sys"))
    monkeypatch.setenv("HYPER2WEB_UPDATE_CA_COMMAND", "true")
    return CliRunner()


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


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``chromium(env, **context options)``: a persistent (not incognito) browser context.

    Installability is never granted to an incognito profile, and a service worker needs a
    trusted certificate: the browser runs with the HOME of ``env``, whose NSS database
    trusts the server's CA. Never downloads a browser.
    """
    executable = need_tool("chromium")
    sync_api = need_module("playwright.sync_api")
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

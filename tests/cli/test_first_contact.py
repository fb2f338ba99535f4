"""What a newcomer meets first: the notice about an untrusted certificate at every start,
``certs`` saying what it replaced, and command help that is not cut short."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from hyper2web.certs import CERT_NAME, KEY_NAME, write_certificates
from hyper2web_cli.cli import main
from tests.support import CliServer, isolated_home, need_tool

StartCli = Callable[..., CliServer]
NOTICE = "Not trusted:"
# Time for the trust check to run after the banner (it waits 0.25 s, then runs certutil).
CHECK_SETTLES = 3.0


def user_env(home: Path, system_dir: Path) -> dict[str, str]:
    """A user of our own, whose system trust store is a temporary folder."""
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "HYPER2WEB_SYSTEM_CA_DIR": str(system_dir), "HYPER2WEB_UPDATE_CA_COMMAND": "true"}


def output_until(server: CliServer, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while text not in "".join(server.output) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "".join(server.output)


def serve_once(cli_server: StartCli, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> str:
    """Start ``serve``, let the trust check finish, stop it; what it printed."""
    server = cli_server(["serve", "public", "--port", "0"], cwd=cwd, env=env)
    output_until(server, NOTICE, timeout=CHECK_SETTLES)
    text = "".join(server.output)
    assert server.stop(signal.SIGINT) == 0, text
    return "".join(server.output)


# -- the trust notice -------------------------------------------------------------------------


def test_an_untrusted_local_ca_is_said_at_every_start(cli_server: StartCli, site: Path,
                                                      tmp_path: Path) -> None:
    env = user_env(tmp_path / "home", tmp_path / "sys")
    for start in range(2):
        text = serve_once(cli_server, env)
        assert NOTICE in text, f"start {start + 1}:\n{text}"
        assert "Fix, once: hyper2web certs --install" in text
        assert "An SSL certificate error occurred when fetching the script" in text
        assert "service worker" in text and "offline" in text
        # After the banner, never in place of it.
        assert text.index("Ctrl+C to stop") < text.index(NOTICE)


def test_no_notice_once_the_ca_is_trusted(cli_server: StartCli, site: Path,
                                          tmp_path: Path) -> None:
    need_tool("certutil")
    env = user_env(tmp_path / "home", tmp_path / "sys")
    installed = subprocess.run([sys.executable, "-m", "hyper2web_cli", "certs", "--install"],
                               cwd=tmp_path, env={**os.environ, **env}, capture_output=True,
                               text=True, timeout=60)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    server = cli_server(["serve", "public", "--port", "0"], env=env)
    time.sleep(CHECK_SETTLES)  # the notice would be out by now
    text = "".join(server.output)
    assert server.stop(signal.SIGINT) == 0
    assert "Ctrl+C to stop" in text
    assert NOTICE not in text, text


def test_a_self_signed_pair_is_said_at_every_start(cli_server: StartCli, site: Path,
                                                   tmp_path: Path) -> None:
    write_certificates(tmp_path)  # found in the working folder, as App.up() leaves it
    for _ in range(2):
        text = serve_once(cli_server)
        assert f"TLS:     {tmp_path / CERT_NAME}" in text
        assert NOTICE in text and "is self-signed" in text, text
        assert "hyper2web certs --install" in text


def test_app_up_says_a_self_signed_certificate_is_untrusted(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    script = (
        "import threading\n"
        "from hyper2web import app\n"
        "a = app.App(port=0, root='public')\n"
        "threading.Timer(1.5, a.shutdown).start()\n"
        "a.up()\n"
    )
    for start in range(2):
        done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert ("created a self-signed certificate" in done.stderr) == (start == 0)
        assert "localhost.crt.pem is self-signed" in done.stderr, done.stderr
        assert "Chromium will not register its service worker" in done.stderr
        assert "'hyper2web certs --install'" in done.stderr


# -- certs says what it replaces -----------------------------------------------------------


def test_certs_says_when_it_replaces_a_pair(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_home(tmp_path, monkeypatch)
    runner = CliRunner()
    first = runner.invoke(main, ["certs"], prog_name="hyper2web")
    assert first.exit_code == 0, first.output
    assert "replaced" not in first.output
    old = (tmp_path / CERT_NAME).read_bytes()
    second = runner.invoke(main, ["certs"], prog_name="hyper2web")
    assert second.exit_code == 0, second.output
    assert (f"replaced the existing pair: {tmp_path / CERT_NAME} and {tmp_path / KEY_NAME}"
            in second.output)
    assert (tmp_path / CERT_NAME).read_bytes() != old


# -- help ---------------------------------------------------------------------------------------


def test_top_level_help_is_not_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_home(tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["--help"], prog_name="hyper2web", terminal_width=80)
    assert result.exit_code == 0
    commands = result.output.split("Commands:\n", 1)[1].splitlines()
    shown = {line.split()[0]: line for line in commands if line.strip()}
    assert set(shown) == {"serve", "certs", "init", "check"}
    for line in shown.values():
        assert "..." not in line and len(line) <= 80, line
        assert len(line.split(None, 1)[1]) > 20, line

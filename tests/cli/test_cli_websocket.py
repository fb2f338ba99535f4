"""``serve --ws-max-message`` and its hyper2web.toml key: the largest WebSocket message a
client may send, checked on a running ``hyper2web serve`` with the ``websockets`` client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hyper2web_cli.cli import main
from tests.server.wskit import limit_seen

ROUTES = '''
async def size(request, ws):
    async for message in ws:
        await ws.send(str(len(message)))


def setup(app):
    app.websocket("size", size)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("<!doctype html><title>x</title>x")
    (tmp_path / "routes.py").write_text(ROUTES)
    return tmp_path


def test_ws_max_message_option(cli_server: Callable[..., Any], project: Path) -> None:
    server = cli_server(["serve", "public", "--port", "0", "--no-reload", "--quiet",
                         "--ws-max-message", "1024"], cwd=project)
    assert limit_seen(server, 1024) == ("1024", 1009)


def test_ws_max_message_in_hyper2web_toml(cli_server: Callable[..., Any],
                                          project: Path) -> None:
    (project / "hyper2web.toml").write_text("ws-max-message = 2048\n")
    server = cli_server(["serve", "public", "--port", "0", "--no-reload", "--quiet"],
                        cwd=project)
    assert limit_seen(server, 2048) == ("2048", 1009)


@pytest.mark.parametrize("value", ["0", "-5", "1MB"])
def test_ws_max_message_must_be_a_positive_number_of_bytes(project: Path, value: str,
                                                           monkeypatch: Any) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["serve", "public", "--ws-max-message", value])
    assert result.exit_code == 2
    assert "--ws-max-message" in result.output


def test_ws_max_message_is_in_the_help() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"], prog_name="hyper2web")
    assert "--ws-max-message BYTES" in result.output

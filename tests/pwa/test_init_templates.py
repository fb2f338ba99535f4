"""``hyper2web init NAME [--template default|minimal]``: what each template writes."""

from __future__ import annotations

import asyncio
import html
import importlib.util
import json
import re
import sqlite3
import ssl
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import websockets
from click.testing import CliRunner

from hyper2web import App
from hyper2web._curio import curio
from hyper2web.certs import CERT_NAME, KEY_NAME
from hyper2web.exceptions import WebSocketClosed
from hyper2web_cli import certs as local_ca
from hyper2web_cli.check import png_size
from hyper2web_cli.cli import main
from tests.support import CliServer, need_tool, run_cli

SHELL_RE = re.compile(r"const SHELL = \[(.*?)\];", re.S)


def files_of(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_default_template_is_a_pwa(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["init", "my-app"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "my-app"
    assert files_of(project) == [
        "README.md", CERT_NAME, KEY_NAME, "public/app.js", "public/icon-192.png",
        "public/icon-512.png", "public/icon-maskable-512.png", "public/index.html",
        "public/manifest.webmanifest", "public/offline.html", "public/style.css",
        "public/sw.js", "routes.py"]
    public = project / "public"
    for path in project.rglob("*"):
        if path.suffix in (".html", ".js", ".webmanifest", ".md", ".py"):
            assert "{{" not in path.read_text(), path

    index = (public / "index.html").read_text()
    assert "<title>My App</title>" in index
    assert '<link rel="manifest" href="/manifest.webmanifest">' in index
    assert '<meta name="theme-color"' in index and 'name="viewport"' in index

    manifest = json.loads((public / "manifest.webmanifest").read_text())
    assert manifest["name"] == manifest["short_name"] == "My App"
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] and manifest["background_color"]
    icons = {(i["src"], i["sizes"], i.get("purpose", "any")) for i in manifest["icons"]}
    assert icons == {("/icon-192.png", "192x192", "any"), ("/icon-512.png", "512x512", "any"),
                     ("/icon-maskable-512.png", "512x512", "maskable")}
    for icon in manifest["icons"]:
        assert icon["type"] == "image/png"
        size = png_size(public / icon["src"].lstrip("/"))
        assert size is not None and f"{size[0]}x{size[1]}" == icon["sizes"]

    sw = (public / "sw.js").read_text()
    for needed in ("skipWaiting()", "clients.claim()", 'const VERSION = "v1"',
                   'const CACHE = "My App-" + VERSION', "caches.delete(name)",
                   '"/api/"', '"/__hyper2web__/"', "/offline.html", "networkFirst",
                   "cacheFirst"):
        assert needed in sw, needed
    shell = SHELL_RE.search(sw)
    assert shell is not None
    for entry in re.findall(r'"(/[^"]*)"', shell.group(1)) + ["/offline.html"]:
        target = public / (entry.lstrip("/") or "index.html")
        assert target.is_file(), entry
    assert 'navigator.serviceWorker.register("/sw.js")' in (public / "app.js").read_text()
    assert "You are offline" in (public / "offline.html").read_text()

    routes = (project / "routes.py").read_text()
    assert 'app.get("api/top/{count}", top)' in routes
    assert 'app.post("api/scores", add_score)' in routes
    assert 'app.get("api/messages", list_messages)' in routes
    assert 'app.post("api/messages", add_message)' in routes
    assert 'app.websocket("api/messages/live", live_messages)' in routes
    # The messages' list, its form, and the script that keeps the list up to date.
    assert '<ul id="messages">' in index and '<form id="message">' in index
    app_js = (public / "app.js").read_text()
    for needed in ('"/api/messages/live"', "new WebSocket(", 'fetch("/api/messages"',
                   "setInterval(loadMessages", "setTimeout(connect, retryDelay)",
                   "retryDelay * 2", "clearInterval(polling)"):
        assert needed in app_js, needed
    readme = (project / "README.md").read_text()
    assert readme.startswith("# My App")
    for command in ("hyper2web serve", "hyper2web certs --install", "hyper2web check"):
        assert command in readme

    # The certificate is signed by the local CA (made on the way), so trusting the CA once
    # makes it trusted.
    info = local_ca.inspect_leaf(project / CERT_NAME, local_ca.load_authority())
    assert info is not None and info.by_our_ca and "localhost" in info.hosts
    assert "hyper2web certs --install" in result.output
    assert "hyper2web check" in result.output


def test_icons_are_copied_byte_for_byte(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(main, ["init", "x"]).exit_code == 0
    template = Path(__file__).resolve().parents[2] / "hyper2web_cli/templates/default/public"
    for name in ("icon-192.png", "icon-512.png", "icon-maskable-512.png"):
        assert (tmp_path / "x/public" / name).read_bytes() == (template / name).read_bytes()


def test_minimal_template(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["init", "tiny", "--template", "minimal"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "tiny"
    assert files_of(project) == [CERT_NAME, KEY_NAME, "public/index.html", "routes.py"]
    assert "<title>Tiny</title>" in (project / "public/index.html").read_text()
    assert "def setup(app)" in (project / "routes.py").read_text()
    assert "hyper2web check" not in result.output


def test_the_title_is_escaped_for_each_kind_of_file(runner: CliRunner,
                                                     tmp_path: Path) -> None:
    name = 'say-"hi"-<b>'
    result = runner.invoke(main, ["init", name])
    assert result.exit_code == 0, result.output
    public = tmp_path / name / "public"
    title = 'Say "hi" <b>'
    manifest = json.loads((public / "manifest.webmanifest").read_text())
    assert manifest["name"] == title
    assert f"<title>{html.escape(title)}</title>" in (public / "index.html").read_text()
    assert 'const CACHE = "Say \\"hi\\" <b>-" + VERSION' in (public / "sw.js").read_text()


def test_unknown_template(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["init", "x", "--template", "fancy"])
    assert result.exit_code == 2
    assert "'fancy' is not one of 'default', 'minimal'" in result.output
    assert not (tmp_path / "x").exists()


def test_help_names_the_templates(runner: CliRunner) -> None:
    result = runner.invoke(main, ["init", "--help"])
    assert result.exit_code == 0
    assert "--template [default|minimal]" in result.output


def test_init_does_not_ask_to_install_a_trusted_ca(runner: CliRunner, tmp_path: Path) -> None:
    need_tool("certutil")
    assert runner.invoke(main, ["certs", "--install"]).exit_code == 0
    result = runner.invoke(main, ["init", "again"])
    assert result.exit_code == 0, result.output
    assert "certs --install" not in result.output


# -- the messages of the default template: SQLite, and a WebSocket that pushes the list -------

def _ws_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _ws_url(server: CliServer) -> str:
    return f"wss://127.0.0.1:{server.port}/api/messages/live"


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def _init(tmp_path: Path, env: dict[str, str], name: str = "my-app") -> Path:
    made = run_cli(["init", name], tmp_path, env)
    assert made.returncode == 0, made.stdout + made.stderr
    return tmp_path / name


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages]


@pytest.mark.timeout(90)
def test_default_template_keeps_messages_in_sqlite_and_pushes_them_live(
        cli_server: Callable[..., CliServer], home_env: dict[str, str], tmp_path: Path) -> None:
    project = _init(tmp_path, home_env)
    server = cli_server(["serve", "public", "--port", "0"], cwd=project, env=home_env)
    api = server.url + "/api/messages"

    async def talk() -> tuple[Any, ...]:
        async with websockets.connect(_ws_url(server), ssl=_ws_context()) as ws, \
                httpx.AsyncClient(verify=False, http2=True, timeout=10) as client:
            on_connect = json.loads(await ws.recv())
            posted = await client.post(api, json={"text": "  hello  "})
            pushed = json.loads(await ws.recv())
            again = await client.post(api, json={"text": "second"})
            pushed_again = json.loads(await ws.recv())
            listed = await client.get(api)
            return on_connect, posted, pushed, again, pushed_again, listed

    on_connect, posted, pushed, again, pushed_again, listed = _run(talk())
    assert on_connect == []  # a socket gets the list as soon as it opens
    assert posted.status_code == 201, posted.text
    assert _texts(posted.json()) == ["hello"]  # kept without the spaces around it
    assert pushed == posted.json()
    assert again.status_code == 201
    assert _texts(pushed_again) == ["second", "hello"]  # newest first
    assert listed.status_code == 200 and listed.http_version == "HTTP/2"
    assert listed.headers["content-type"].startswith("application/json")
    assert listed.json() == pushed_again
    assert all(isinstance(m["id"], int) and m["created"] for m in listed.json())

    # Kept beside routes.py (not in public/, so not served), in WAL mode.
    database = project / "data.sqlite3"
    assert database.is_file()
    with httpx.Client(verify=False) as client:
        assert client.get(server.url + "/data.sqlite3").status_code == 404
    db = sqlite3.connect(database)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in db.execute("SELECT text FROM messages ORDER BY id")] == \
            ["hello", "second"]
    finally:
        db.close()

    # Another start, from another folder: the messages are still there.
    assert server.stop() == 0
    again_server = cli_server(["serve", "my-app/public", "--port", "0"], cwd=tmp_path,
                              env=home_env)
    with httpx.Client(verify=False) as client:
        listed = client.get(again_server.url + "/api/messages")
    assert listed.status_code == 200
    assert _texts(listed.json()) == ["second", "hello"]
    assert not (tmp_path / "data.sqlite3").exists()
    assert "Traceback" not in "".join(server.output + again_server.output)


@pytest.mark.parametrize(("body", "error"), [
    (b"not json", "send {"),
    (b"[1, 2]", "send {"),
    (b'{"name": "no text"}', "send {"),
    (b'{"text": 42}', "send {"),
    (b'{"text": "   "}', "not empty"),
    (json.dumps({"text": "x" * 201}).encode(), "longer than 200"),
])
def test_default_template_refuses_a_bad_message_with_400(
        cli_server: Callable[..., CliServer], home_env: dict[str, str], tmp_path: Path,
        body: bytes, error: str) -> None:
    project = _init(tmp_path, home_env)
    server = cli_server(["serve", "public", "--port", "0", "--no-reload"], cwd=project,
                        env=home_env)
    with httpx.Client(verify=False, base_url=server.url) as client:
        refused = client.post("/api/messages", content=body,
                              headers={"content-type": "application/json"})
        assert refused.status_code == 400
        assert error in refused.json()["error"]
        assert client.get("/api/messages").json() == []
        # The longest text allowed is kept.
        kept = client.post("/api/messages", json={"text": "y" * 200})
        assert kept.status_code == 201 and _texts(kept.json()) == ["y" * 200]


@pytest.mark.timeout(90)
def test_default_template_pushes_to_the_sockets_left_when_others_go(
        cli_server: Callable[..., CliServer], home_env: dict[str, str], tmp_path: Path) -> None:
    project = _init(tmp_path, home_env)
    server = cli_server(["serve", "public", "--port", "0"], cwd=project, env=home_env)

    async def talk() -> list[list[str]]:
        url, ctx = _ws_url(server), _ws_context()
        async with websockets.connect(url, ssl=ctx) as stays, \
                websockets.connect(url, ssl=ctx) as closes, \
                websockets.connect(url, ssl=ctx) as vanishes, \
                httpx.AsyncClient(verify=False, timeout=10) as client:
            for ws in (stays, closes, vanishes):
                assert json.loads(await ws.recv()) == []
            await closes.close()
            vanishes.transport.abort()  # gone without a close frame
            seen = []
            for text in ("one", "two"):
                posted = await client.post(server.url + "/api/messages", json={"text": text})
                assert posted.status_code == 201, posted.text
                seen.append(_texts(json.loads(await stays.recv())))
            return seen

    assert _run(talk()) == [["one"], ["two", "one"]]
    assert "Traceback" not in "".join(server.output)


class FakeSocket:
    """What live_messages and app.broadcast use of a WebSocket; ``fail`` makes send raise."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[str] = []
        self.aborted = False

    async def abort(self) -> None:
        self.aborted = True

    async def accept(self) -> None:
        pass

    async def send(self, text: str) -> None:
        if self.fail:
            raise WebSocketClosed(1006)
        self.sent.append(text)

    async def _deliver(self, text: str, timeout: float | None) -> bool:
        """What app.broadcast calls: ``send`` with a timeout, True once taken."""
        await self.send(text)
        return True

    def __aiter__(self) -> FakeSocket:
        return self

    async def __anext__(self) -> str:
        raise StopAsyncIteration  # the page closed the socket at once


def _load_routes(project: Path, app: App | None = None) -> ModuleType:
    spec = importlib.util.spec_from_file_location("template_routes", project / "routes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.setup(app or App(root=project / "public"))
    return module


def test_broadcast_goes_on_past_a_socket_that_fails(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(main, ["init", "x"]).exit_code == 0
    routes = _load_routes(tmp_path / "x")
    good = [FakeSocket() for _ in range(3)]
    bad = [FakeSocket(fail=True) for _ in range(2)]
    routes.sockets.update(good + bad)
    sent = curio.run(routes.server.broadcast, routes.sockets, '["hi"]')
    assert sent == 3
    assert [ws.sent for ws in good] == [['["hi"]']] * 3
    assert routes.sockets == set(good)  # the failed ones are dropped, and ended
    assert [ws.aborted for ws in bad] == [True, True]


def test_the_open_sockets_outlive_a_reload(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(main, ["init", "x"]).exit_code == 0
    app = App(root=tmp_path / "x" / "public")
    before = _load_routes(tmp_path / "x", app)
    before.sockets.add(FakeSocket())
    after = _load_routes(tmp_path / "x", app)  # as a save of routes.py reloads it
    assert after.sockets is before.sockets and len(after.sockets) == 1


def test_a_socket_is_forgotten_when_its_handler_ends(runner: CliRunner,
                                                     tmp_path: Path) -> None:
    assert runner.invoke(main, ["init", "x"]).exit_code == 0
    routes = _load_routes(tmp_path / "x")
    closed, failing = FakeSocket(), FakeSocket(fail=True)
    curio.run(routes.live_messages, None, closed)
    assert closed.sent == ["[]"] and routes.sockets == set()
    with pytest.raises(WebSocketClosed):
        curio.run(routes.live_messages, None, failing)
    assert routes.sockets == set()
    # The table was made on first use, in WAL mode, beside routes.py.
    db = sqlite3.connect(tmp_path / "x/data.sqlite3")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()

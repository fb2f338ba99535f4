"""``hyper2web init NAME [--template default|minimal]``: what each template writes."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from click.testing import CliRunner

from hyper2web.certs import CERT_NAME, KEY_NAME
from hyper2web_cli import certs as local_ca
from hyper2web_cli.check import png_size
from hyper2web_cli.cli import main
from tests.support import need_tool

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

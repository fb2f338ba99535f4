"""``hyper2web check [ROOT]``: passes on the init template and the Game, names each problem
of a broken site with its fix, and checks that the certificate is trusted."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hyper2web.certs import write_certificates
from hyper2web_cli.check import check_site, png_size
from hyper2web_cli.cli import main
from tests.support import REPO, copy_sample_site, need_tool


@pytest.fixture
def project(runner: CliRunner, tmp_path: Path) -> Path:
    """A fresh ``hyper2web init`` project."""
    result = runner.invoke(main, ["init", "site"])
    assert result.exit_code == 0, result.output
    return tmp_path / "site"


def make_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def check(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, ["check", *args])


def fix_after(output: str, problem: str) -> str:
    """The fix printed on the line after the FAIL line that holds ``problem``."""
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if problem in line:
            assert line.lstrip().startswith("FAIL"), line
            fix = lines[number + 1].strip()
            assert fix.startswith("fix: "), fix
            return fix[len("fix: "):]
    raise AssertionError(f"{problem!r} not in:\n{output}")


# -- sites that pass --------------------------------------------------------------------------


def test_a_fresh_init_project_passes(runner: CliRunner, project: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result = check(runner, "site/public", "--no-certs")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "warn" not in result.output
    assert result.output.rstrip().endswith("site/public is an installable PWA.")
    assert "skipped (--no-certs)" in result.output
    assert ("sw.js is served with cache-control: no-cache (hyper2web sends it with every "
            "file)") in result.output
    # The default ROOT is ./public.
    monkeypatch.chdir(project)
    assert check(runner, "--no-certs").exit_code == 0


def test_a_fresh_init_project_passes_with_a_trusted_ca(runner: CliRunner,
                                                       project: Path) -> None:
    need_tool("certutil")
    untrusted = check(runner, "site/public")
    assert untrusted.exit_code == 1
    assert fix_after(untrusted.output,
                     "the local CA is not trusted") == "hyper2web certs --install"
    assert runner.invoke(main, ["certs", "--install"]).exit_code == 0
    result = check(runner, "site/public")
    assert result.exit_code == 0, result.output
    assert "the local CA is trusted in Chromium/Chrome" in result.output
    assert f"{project / 'localhost.crt.pem'} is signed by the local CA" in result.output


def test_the_game_passes(runner: CliRunner) -> None:
    result = check(runner, str(REPO / "sample_site" / "public"), "--no-certs")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "warn" not in result.output


def test_the_game_passes_with_a_trusted_ca(runner: CliRunner, tmp_path: Path) -> None:
    need_tool("certutil")
    site = copy_sample_site(tmp_path / "game")
    assert runner.invoke(main, ["certs", "--install"]).exit_code == 0
    result = check(runner, str(site / "public"))
    assert result.exit_code == 0, result.output
    assert "no certificate yet: 'hyper2web serve' makes one signed by the local CA" \
        in result.output


# -- broken sites: each problem named, with its fix ---------------------------------------------


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def manifest_of(site: Path) -> dict:
    return json.loads((site / "manifest.webmanifest").read_text())


def set_manifest(site: Path, **changes: object) -> None:
    data = manifest_of(site)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    (site / "manifest.webmanifest").write_text(json.dumps(data))


def no_manifest_link(site: Path) -> None:
    edit(site / "index.html", '<link rel="manifest" href="/manifest.webmanifest">', "")


def manifest_missing(site: Path) -> None:
    (site / "manifest.webmanifest").unlink()


def bad_json(site: Path) -> None:
    # An unquoted key: the message is the same on every Python (a trailing comma is not).
    (site / "manifest.webmanifest").write_text('{\n  name: "x"\n}\n')


def not_an_object(site: Path) -> None:
    (site / "manifest.webmanifest").write_text("[]")


def wrong_manifest_type(site: Path) -> None:
    (site / "manifest.webmanifest").rename(site / "manifest.txt")
    edit(site / "index.html", "/manifest.webmanifest", "/manifest.txt")


def no_names(site: Path) -> None:
    set_manifest(site, name=None, short_name=None)


def no_display(site: Path) -> None:
    set_manifest(site, display=None)


def browser_display(site: Path) -> None:
    set_manifest(site, display="browser")


def no_start_url(site: Path) -> None:
    set_manifest(site, start_url=None)


def no_icons(site: Path) -> None:
    set_manifest(site, icons=None)


def no_512_icon(site: Path) -> None:
    set_manifest(site, icons=[i for i in manifest_of(site)["icons"]
                              if i["src"] != "/icon-512.png"])


def icon_wrong_size(site: Path) -> None:
    (site / "icon-512.png").write_bytes(make_png(256, 256))


def icon_not_png(site: Path) -> None:
    (site / "icon-192.png").write_bytes(b"GIF89a not a png")


def icon_missing(site: Path) -> None:
    (site / "icon-192.png").unlink()


def start_url_outside_scope(site: Path) -> None:
    set_manifest(site, scope="/app/")


def start_url_outside_site(site: Path) -> None:
    set_manifest(site, start_url="https://example.com/")


def start_url_missing_page(site: Path) -> None:
    set_manifest(site, start_url="/nothing.html", scope="/")


def no_service_worker(site: Path) -> None:
    edit(site / "app.js", 'navigator.serviceWorker.register("/sw.js")', "Promise.resolve()")


def service_worker_missing(site: Path) -> None:
    (site / "sw.js").unlink()


def service_worker_in_a_folder(site: Path) -> None:
    (site / "js").mkdir()
    (site / "sw.js").rename(site / "js" / "sw.js")
    edit(site / "app.js", 'register("/sw.js")', 'register("/js/sw.js")')


def no_index(site: Path) -> None:
    (site / "index.html").unlink()


BROKEN: list[tuple[Callable[[Path], None], str, str]] = [
    (no_manifest_link, "index.html links no manifest", '<link rel="manifest"'),
    (manifest_missing, "links the manifest /manifest.webmanifest, but there is no such file",
     "create "),
    (bad_json, "manifest.webmanifest is not valid JSON: Expecting property name enclosed in "
               "double quotes (line 2, column 3)", "fix the JSON at line 2, column 3"),
    (not_an_object, "manifest.webmanifest is not a JSON object", "make it an object"),
    (wrong_manifest_type, "manifest.txt is served as text/plain, not "
                          "application/manifest+json", "rename it to manifest.webmanifest"),
    (no_names, "has neither name nor short_name", '"name"'),
    (no_display, "manifest.webmanifest has no display", '"display": "standalone"'),
    (browser_display, "has display 'browser': browsers do not install that", '"standalone"'),
    (no_start_url, "manifest.webmanifest has no start_url", '"start_url": "/"'),
    (no_icons, "manifest.webmanifest has no icons", "192x192"),
    (no_512_icon, "declares no 512x512 PNG icon", '"sizes": "512x512"'),
    (icon_wrong_size, "icon /icon-512.png is 256x256, but declares 512x512",
     'resize it to 512x512, or declare "sizes": "256x256"'),
    (icon_not_png, "icon /icon-192.png is not a PNG file", "save it as PNG"),
    (icon_missing, "icon /icon-192.png not found", "create "),
    (start_url_outside_scope, "start_url / is outside scope '/app/'", '"scope"'),
    (start_url_outside_site, "start_url 'https://example.com/' is outside the site",
     '"start_url": "/"'),
    (start_url_missing_page, "start_url '/nothing.html' leads to no file", "create"),
    (no_service_worker, "no service worker: no script of index.html calls "
                        "navigator.serviceWorker.register()",
     'navigator.serviceWorker.register("/sw.js")'),
    (service_worker_missing, "registers the service worker /sw.js, but there is no such file",
     "create "),
    (service_worker_in_a_folder, "/js/sw.js can only control pages under /js/, and "
                                 "start_url / is not one", "--sw-allowed /"),
    (no_index, "no index.html in", "hyper2web init"),
]


@pytest.mark.parametrize("breaks, problem, fix", BROKEN, ids=[b[0].__name__ for b in BROKEN])
def test_each_problem_is_named_with_its_fix(runner: CliRunner, project: Path,
                                            breaks: Callable[[Path], None], problem: str,
                                            fix: str) -> None:
    breaks(project / "public")
    result = check(runner, "site/public", "--no-certs")
    assert result.exit_code == 1, result.output
    assert fix in fix_after(result.output, problem)
    assert "Traceback" not in result.output
    assert "fix it and run 'hyper2web check' again." in result.output or \
        "fix them and run 'hyper2web check' again." in result.output


def test_the_missing_fields_are_all_named(runner: CliRunner, project: Path) -> None:
    (project / "public" / "manifest.webmanifest").write_text("{}")
    result = check(runner, "site/public", "--no-certs")
    assert result.exit_code == 1
    for problem in ("neither name nor short_name", "has no display", "has no start_url",
                    "has no icons"):
        fix_after(result.output, problem)
    assert "4 problems, 1 warning: fix them" in result.output


def test_a_missing_maskable_icon_is_a_warning(runner: CliRunner, project: Path) -> None:
    public = project / "public"
    set_manifest(public, icons=[i for i in manifest_of(public)["icons"]
                                if i.get("purpose") != "maskable"])
    result = check(runner, "site/public", "--no-certs")
    assert result.exit_code == 0, result.output
    assert "warn  manifest.webmanifest has no maskable icon" in result.output
    assert "All 17 checks passed, 1 warning" in result.output


# -- certificates -----------------------------------------------------------------------------


def test_no_local_ca(runner: CliRunner, tmp_path: Path) -> None:
    site = copy_sample_site(tmp_path / "game")
    result = check(runner, str(site / "public"))
    assert result.exit_code == 1
    assert fix_after(result.output, "there is no local certificate authority") == \
        "hyper2web certs --install"


def test_a_certificate_not_signed_by_the_ca(runner: CliRunner, project: Path) -> None:
    need_tool("certutil")
    assert runner.invoke(main, ["certs", "--install"]).exit_code == 0
    write_certificates(project)  # self-signed, as App.up() makes them
    result = check(runner, "site/public")
    assert result.exit_code == 1
    assert fix_after(result.output, "is not signed by the local CA") == \
        f"hyper2web certs --out {project}"


def test_an_old_certificate_in_the_settings_folder_is_renewed_by_serve(
        runner: CliRunner, tmp_path: Path) -> None:
    need_tool("certutil")
    site = copy_sample_site(tmp_path / "game")
    assert runner.invoke(main, ["certs", "--install"]).exit_code == 0
    write_certificates(tmp_path / "home" / ".config" / "hyper2web" / "certs")  # self-signed
    result = check(runner, str(site / "public"))
    assert result.exit_code == 0, result.output
    assert "is out of date: 'hyper2web serve' makes a new one, signed by the local CA" \
        in result.output


# -- the command ------------------------------------------------------------------------------


def test_a_missing_root_is_one_error_line(runner: CliRunner) -> None:
    result = check(runner, "nowhere")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: folder not found: nowhere"]


def test_a_file_as_root(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = check(runner, "file")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: not a folder: file"]


def test_help(runner: CliRunner) -> None:
    result = runner.invoke(main, ["check", "--help"])
    assert result.exit_code == 0
    assert "[ROOT]" in result.output and "--no-certs" in result.output
    assert "check" in runner.invoke(main, ["--help"]).output


def test_png_size(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(make_png(3, 7))
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n")
    assert png_size(tmp_path / "a.png") == (3, 7)
    assert png_size(tmp_path / "b.png") is None
    assert png_size(tmp_path / "missing.png") is None


def test_scripts_imported_by_the_page_are_searched(runner: CliRunner, project: Path) -> None:
    public = project / "public"
    shutil.move(public / "app.js", public / "main.js")
    (public / "app.js").write_text('import "./main.js";\n')
    report = check_site(public, certificates=False)
    assert report.passed, report.failures
    assert any(f.message == "/main.js registers the service worker /sw.js"
               for f in report.findings)

"""``hyper2web serve`` as a real process: banner, certificates, routes.py, init projects, the
sample site, and the errors a real process prints (one line, exit code 1, no traceback)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from hyper2web.certs import CERT_NAME, KEY_NAME, certificate_hosts, write_certificates
from tests.support import REPO, CliServer

StartCli = Callable[..., CliServer]


def client(verify: ssl.SSLContext | bool = False) -> httpx.Client:
    return httpx.Client(http2=True, verify=verify, timeout=10)


def get(url: str, **kwargs: object) -> httpx.Response:
    with client() as c:
        response = c.get(url, **kwargs)  # type: ignore[arg-type]
    assert response.http_version == "HTTP/2"
    return response


def output(server: CliServer, until: str = "Ctrl+C to stop", timeout: float = 5) -> str:
    """What the server printed, once ``until`` shows (the banner's last line by default).

    The fixture returns at the banner's URL line; the rest arrives through a reader thread.
    """
    deadline = time.monotonic() + timeout
    while until not in "".join(server.output) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "".join(server.output)


def app_cert_dir(tmp_path: Path) -> Path:
    """Where ``serve`` keeps its certificates when HOME is the cli_server fixture's home."""
    return tmp_path / "home" / ".config" / "hyper2web" / "certs"


# -- serving a folder ---------------------------------------------------------------------------


def test_serve_creates_certificates_and_prints_the_url(cli_server: StartCli, site: Path,
                                                       tmp_path: Path) -> None:
    server = cli_server(["serve", "public", "--port", "0"])
    text = output(server)
    folder = app_cert_dir(tmp_path)
    ca_file = folder.parent / "rootCA.pem"
    assert f"created a local certificate authority: {ca_file}" in text
    assert "run 'hyper2web certs --install' once so browsers trust it" in text
    created = re.search(r"created a certificate for (.+) in (.+)$", text, re.M)
    assert created is not None, text
    assert created.group(2) == str(folder)
    assert created.group(1).startswith("localhost, *.localhost, 127.0.0.1, ::1")
    assert f"Local:   https://localhost:{server.port}/" in text
    assert f"TLS:     {folder / CERT_NAME}" in text
    assert stat.S_IMODE((folder / KEY_NAME).stat().st_mode) == 0o600

    # The server presents that certificate, and it verifies for localhost and 127.0.0.1
    # against the local CA (the leaf alone is no trust anchor).
    trust = ssl.create_default_context(cafile=str(ca_file))
    with client(verify=trust) as c:
        for host in ("localhost", "127.0.0.1"):
            response = c.get(f"https://{host}:{server.port}/")
            assert response.status_code == 200
            assert response.http_version == "HTTP/2"
            assert "<title>Home</title>" in response.text

    assert server.stop() == 0


def test_serve_reuses_its_certificates(cli_server: StartCli, site: Path,
                                       tmp_path: Path) -> None:
    first = cli_server(["serve", "public", "--port", "0"])
    assert first.stop() == 0
    cert = (app_cert_dir(tmp_path) / CERT_NAME).read_bytes()
    second = cli_server(["serve", "public", "--port", "0"])
    assert "created a certificate" not in output(second)
    assert (app_cert_dir(tmp_path) / CERT_NAME).read_bytes() == cert
    assert get(second.url + "/style.css").text == "body { color: red; }\n"


def test_serve_on_an_address(cli_server: StartCli, site: Path, tmp_path: Path) -> None:
    server = cli_server(["serve", "public", "--port", "0", "--host", "127.0.0.1"])
    assert f"https://127.0.0.1:{server.port}/" in output(server)
    assert "127.0.0.1" in certificate_hosts(app_cert_dir(tmp_path) / CERT_NAME)
    response = get(f"https://127.0.0.1:{server.port}/")
    assert response.status_code == 200


def test_serve_defaults_to_public(cli_server: StartCli, site: Path) -> None:
    server = cli_server(["serve", "--port", "0", "--no-reload"])
    assert "serving public" in output(server)
    assert get(server.url + "/docs/").text.endswith("docs")


def test_serve_uses_certificates_in_the_working_folder(cli_server: StartCli, site: Path,
                                                       tmp_path: Path) -> None:
    cert, _ = write_certificates(tmp_path)
    server = cli_server(["serve", "public", "--port", "0"])
    text = output(server)
    assert "created a certificate" not in text
    assert f"TLS:     {cert}" in text
    assert not app_cert_dir(tmp_path).exists()


def test_serve_with_cert_and_key(cli_server: StartCli, site: Path, tmp_path: Path) -> None:
    cert, key = write_certificates(tmp_path / "mine", ["dev.test"])
    server = cli_server(["serve", "public", "--port", "0", "--cert", str(cert),
                         "--key", str(key)])
    assert f"TLS:     {cert}" in output(server)
    assert not app_cert_dir(tmp_path).exists()
    pem = ssl.get_server_certificate(("127.0.0.1", server.port))
    assert ssl.PEM_cert_to_DER_cert(pem) == ssl.PEM_cert_to_DER_cert(cert.read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly(cli_server: StartCli, site: Path, sig: int) -> None:
    server = cli_server(["serve", "public", "--port", "0", "--quiet"])
    assert get(server.url + "/").status_code == 200
    assert server.stop(sig) == 0
    assert "Traceback" not in output(server)


def test_quiet_hides_the_access_log(cli_server: StartCli, site: Path) -> None:
    loud = cli_server(["serve", "public", "--port", "0"])
    quiet = cli_server(["serve", "public", "--port", "0", "--quiet"])
    get(loud.url + "/app.js")
    get(quiet.url + "/app.js")
    loud.stop()
    quiet.stop()
    assert re.search(r"GET +/app\.js 200 \d+ B [\d.]+ ms", output(loud, until="/app.js"))
    assert "/app.js" not in output(quiet, until="shutting down")


# -- routes.py ------------------------------------------------------------------------------------

ROUTES = """
async def hello(request, response):
    await response.send_json({{"from": "{name}", "who": request.para["who"]}})


def setup(app):
    app.get("api/hello/{{who}}", hello)
"""


def write_routes(path: Path, name: str) -> Path:
    path.write_text(ROUTES.format(name=name))
    return path


def test_routes_beside_the_folder_are_loaded(cli_server: StartCli, site: Path,
                                             tmp_path: Path) -> None:
    routes = write_routes(tmp_path / "routes.py", "beside")
    server = cli_server(["serve", "public", "--port", "0"])
    assert f"Routes:  {routes} (1 handler)" in output(server)
    assert get(server.url + "/api/hello/ada").json() == {"from": "beside", "who": "ada"}


def test_routes_are_found_beside_the_folder_from_elsewhere(cli_server: StartCli, site: Path,
                                                           tmp_path: Path) -> None:
    write_routes(tmp_path / "routes.py", "beside")
    (tmp_path / "elsewhere").mkdir()
    write_routes(tmp_path / "elsewhere" / "routes.py", "cwd")
    server = cli_server(["serve", "../public", "--port", "0"], cwd=tmp_path / "elsewhere")
    assert get(server.url + "/api/hello/x").json()["from"] == "beside"


def test_routes_option(cli_server: StartCli, site: Path, tmp_path: Path) -> None:
    write_routes(tmp_path / "routes.py", "beside")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "helper.py").write_text("NAME = 'option'\n")
    # A routes file can import modules beside it.
    (tmp_path / "api" / "handlers.py").write_text(
        "from helper import NAME\n" + ROUTES.format(name="option").replace('"option"', "NAME"))
    server = cli_server(["serve", "public", "--port", "0", "--routes", "api/handlers.py"])
    assert "Routes:  api/handlers.py" in output(server)
    assert get(server.url + "/api/hello/x").json()["from"] == "option"


def test_no_routes(cli_server: StartCli, site: Path, tmp_path: Path) -> None:
    write_routes(tmp_path / "routes.py", "beside")
    server = cli_server(["serve", "public", "--port", "0", "--no-routes"])
    assert "Routes:" not in output(server)
    assert get(server.url + "/api/hello/x").status_code == 404
    assert get(server.url + "/").status_code == 200


# -- errors from a real process ---------------------------------------------------------------


def run_cli(args: list[str], cwd: Path, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    return subprocess.run([sys.executable, "-m", "hyper2web_cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


# What serve prints to stderr the first time it runs for a user, before anything else.
CERTIFICATE_NOTES = ("  created a local certificate authority: ",
                     "  run 'hyper2web certs --install' once so browsers trust it",
                     "  created a certificate for ")


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith(CERTIFICATE_NOTES)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Error" not in result.stdout
    return lines[0]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_port_in_use(tmp_path: Path, site: Path, host: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "public", "--host", host, "--port", str(port),
                          "--strict-port"], tmp_path)
    line = assert_one_error_line(result)
    assert f"port {port} is already in use" in line
    assert "--port" in line


def test_missing_folder_in_a_real_process(tmp_path: Path) -> None:
    line = assert_one_error_line(run_cli(["serve", "gone", "--port", "0"], tmp_path))
    assert line == "Error: folder not found: gone"


def test_garbage_certificate_in_a_real_process(tmp_path: Path, site: Path) -> None:
    (tmp_path / "bad.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    (tmp_path / "bad.key").write_text("nope\n")
    line = assert_one_error_line(run_cli(["serve", "public", "--port", "0", "--cert", "bad.pem",
                                          "--key", "bad.key"], tmp_path))
    assert line.startswith("Error: bad.pem is not a PEM certificate")


def test_broken_routes_in_a_real_process(tmp_path: Path, site: Path) -> None:
    (tmp_path / "routes.py").write_text("def setup(app):\n    app.get('x' handler)\n")
    line = assert_one_error_line(run_cli(["serve", "public", "--port", "0"], tmp_path))
    assert f"{tmp_path / 'routes.py'}:2: SyntaxError" in line


# -- init, then serve what it made -------------------------------------------------------------


def test_init_project_serves(cli_server: StartCli, tmp_path: Path) -> None:
    result = run_cli(["init", "space-race"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cd space-race" in result.stdout and "hyper2web serve" in result.stdout
    project = tmp_path / "space-race"

    server = cli_server(["serve", "--port", "0"], cwd=project)
    text = output(server)
    assert "created a certificate" not in text
    assert f"TLS:     {project / CERT_NAME}" in text
    assert f"Routes:  {project / 'routes.py'} (5 handlers)" in text

    # init signs the project's certificate with the local CA (same HOME as the server's).
    trust = ssl.create_default_context(
        cafile=str(app_cert_dir(tmp_path).parent / "rootCA.pem"))
    with client(verify=trust) as c:
        page = c.get(server.url + "/")
        assert page.status_code == 200 and page.http_version == "HTTP/2"
        assert "<title>Space Race</title>" in page.text
        for asset in ("/style.css", "/app.js"):
            assert c.get(server.url + asset).status_code == 200

        assert c.get(server.url + "/api/top/3").json() == []
        for name, score in [("Ada", 7), ("Linus", 12), ("Grace", 9), ("Alan", 3)]:
            saved = c.post(server.url + "/api/scores", json={"name": name, "score": score})
            assert saved.status_code == 201
            assert saved.json() == {"saved": True}
        top = c.get(server.url + "/api/top/3")
        assert top.headers["content-type"] == "application/json"
        assert [r["name"] for r in top.json()] == ["Linus", "Grace", "Ada"]

        assert c.get(server.url + "/api/top/many").status_code == 400
        assert c.post(server.url + "/api/scores", json={"name": "x"}).status_code == 400
        assert c.post(server.url + "/api/scores", content=b"{nope").status_code == 400
        assert c.delete(server.url + "/api/scores").status_code == 405
    assert server.stop() == 0
    assert "Traceback" not in output(server)


# -- the sample site, as ``make serve`` runs it ------------------------------------------------


def test_sample_site(cli_server: StartCli, tmp_path: Path) -> None:
    shutil.copytree(REPO / "sample_site", tmp_path / "sample_site",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pem", "*.key",
                                                  "records.json", "records.sqlite3*"))
    server = cli_server(["serve", "public", "--port", "0"], cwd=tmp_path / "sample_site")
    routes = tmp_path / "sample_site" / "routes.py"
    assert f"Routes:  {routes} (3 handlers)" in output(server)

    page = get(server.url + "/")
    assert "<title>The Game</title>" in page.text
    assert page.headers["content-type"].startswith("text/html")
    for asset, kind in [("/style.css", "text/css"), ("/game.js", "javascript"),
                        ("/sw.js", "javascript"), ("/icon-192.png", "image/png"),
                        ("/manifest.webmanifest", "manifest")]:
        response = get(server.url + asset)
        assert response.status_code == 200, asset
        assert kind in response.headers["content-type"], asset
    manifest = json.loads(get(server.url + "/manifest.webmanifest").text)
    assert manifest["icons"]

    assert get(server.url + "/top10/1").json() == []
    with httpx.Client(http2=True, verify=False) as c:
        saved = c.post(server.url + "/record", json={"name": "Ada", "level": 1, "score": 42})
    assert saved.status_code == 201
    assert [(r["name"], r["score"]) for r in get(server.url + "/top10/1").json()] == [
        ("Ada", 42)]


def test_busy_port_moves_to_the_next_free_one(cli_server, tmp_path: Path, site: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = cli_server(["serve", "public", "--host", "127.0.0.1", "--port", str(port)])
        assert server.port != port
        assert any(f"port {port} is in use, using {server.port} instead" in line
                   for line in server.output)

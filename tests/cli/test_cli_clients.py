"""Real external clients (curl, nghttp) against ``hyper2web serve`` running as a process."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import CliServer, need_tool, start_cli

INDEX = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Clients</title>
  <link rel="stylesheet" href="/style.css">
  <script src="/app.js"></script>
</head>
<body><img src="/img/dot.svg" alt=""> hello from h2</body>
</html>
"""
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>\n'


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    """One ``hyper2web serve public --port 0`` for the module, with a page and its assets."""
    base = tmp_path_factory.mktemp("clients")
    public = base / "public"
    (public / "img").mkdir(parents=True)
    (public / "index.html").write_text(INDEX)
    (public / "style.css").write_text("body { margin: 0; }\n")
    (public / "app.js").write_text("document.title += '!';\n")
    (public / "img" / "dot.svg").write_text(SVG)
    (public / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB: flow control
    home = base / "home"
    home.mkdir()
    server = start_cli(["serve", "public", "--port", "0"], base,
                       {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})
    yield server
    assert server.stop() == 0
    assert "Traceback" not in "".join(server.output)


def run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, capture_output=True, timeout=timeout)


Curl = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def curl() -> Curl:
    path = need_tool("curl")

    def call(*args: str) -> subprocess.CompletedProcess[bytes]:
        return run([path, "--silent", "--show-error", "--max-time", "15", *args])

    return call


# -- curl --------------------------------------------------------------------------------------


def test_curl_http2_page(curl: Curl, served: CliServer) -> None:
    result = curl("--http2", "-k", "-w", "\n%{http_version} %{http_code} %{content_type}",
                  served.url + "/")
    assert result.returncode == 0, result.stderr
    body, _, stats = result.stdout.decode().rpartition("\n")
    # Live reload is on: its script is the only difference from the file.
    found = re.search(r'<script src="/__hyper2web__/client\.js\?v=\w+" defer></script>', body)
    assert found is not None
    script = found.group()
    assert body.replace(script, "") == INDEX
    version, status, content_type = stats.split(" ", 2)
    assert (version, status) == ("2", "200")
    assert content_type.startswith("text/html")


@pytest.mark.parametrize("path, body, kind", [
    ("/style.css", "body { margin: 0; }\n", "text/css"),
    ("/app.js", "document.title += '!';\n", "javascript"),
    ("/img/dot.svg", SVG, "image/svg+xml"),
])
def test_curl_http2_assets(curl: Curl, served: CliServer, path: str, body: str,
                           kind: str) -> None:
    result = curl("--http2", "-k", "-w", "\n%{http_version} %{http_code} %{content_type}",
                  served.url + path)
    assert result.returncode == 0, result.stderr
    text, _, stats = result.stdout.decode().rpartition("\n")
    assert text == body
    assert stats.startswith("2 200 ")
    assert kind in stats


def test_curl_http2_missing_file(curl: Curl, served: CliServer) -> None:
    result = curl("--http2", "-k", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                  served.url + "/nope.css")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "2 404"


def test_curl_http2_large_file(curl: Curl, served: CliServer, tmp_path: Path) -> None:
    out = tmp_path / "big.bin"
    result = curl("--http2", "-k", "-o", str(out), "-w", "%{http_version} %{http_code}",
                  served.url + "/big.bin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "2 200"
    assert out.read_bytes() == bytes(range(256)) * 4096


def test_curl_http2_head(curl: Curl, served: CliServer) -> None:
    result = curl("--http2", "-k", "--head", served.url + "/style.css")
    assert result.returncode == 0, result.stderr
    headers = result.stdout.decode().lower()
    assert headers.startswith("http/2 200")
    assert "content-length: 20" in headers


def test_curl_verifies_the_generated_certificate(curl: Curl, served: CliServer) -> None:
    banner = "".join(served.output)
    cert = re.search(r"TLS:\s+(\S+)", banner)
    assert cert is not None, banner
    for host in ("localhost", "127.0.0.1"):
        result = curl("--http2", "--cacert", cert.group(1), "-o", "/dev/null",
                      "-w", "%{http_version} %{http_code}", f"https://{host}:{served.port}/")
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode() == "2 200"


def test_curl_http1_is_served(curl: Curl, served: CliServer) -> None:
    result = curl("--http1.1", "-k", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                  served.url + "/")
    assert result.returncode == 0
    assert result.stdout.decode() == "1.1 200"
    # And HTTP/2 beside it.
    again = curl("--http2", "-k", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                 served.url + "/")
    assert again.stdout.decode() == "2 200"


# -- nghttp -------------------------------------------------------------------------------------


def test_nghttp_verbose_frames(served: CliServer) -> None:
    nghttp = need_tool("nghttp")
    result = run([nghttp, "-nv", served.url + "/"])
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "recv SETTINGS frame" in out
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", out)
    assert re.search(r"recv DATA frame <length=\d+, flags=0x01", out)  # END_STREAM
    assert "GOAWAY" in out


def test_nghttp_fetches_page_and_assets(served: CliServer) -> None:
    nghttp = need_tool("nghttp")
    result = run([nghttp, "-ans", served.url + "/"])
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    rows = {m.group(2).partition("?")[0]: int(m.group(1))
            for m in re.finditer(r"^\s*\d+\s+\S+\s+\S+\s+\S+\s+(\d{3})\s+\S+\s+(\S+)\s*$", out,
                                 re.MULTILINE)}
    assert rows == {"/": 200, "/style.css": 200, "/app.js": 200, "/img/dot.svg": 200,
                    "/__hyper2web__/client.js": 200}, out


def test_nghttp_many_streams_on_one_connection(served: CliServer) -> None:
    nghttp = need_tool("nghttp")
    urls = [served.url + p for p in ("/", "/style.css", "/app.js", "/img/dot.svg")]
    result = run([nghttp, "-ns", "-m", "5", *urls])  # five requests for each URL, concurrent
    assert result.returncode == 0, result.stderr
    statuses = re.findall(r"^\s*\d+\s+\S+\s+\S+\s+\S+\s+(\d{3})\s", result.stdout.decode(),
                          re.MULTILINE)
    assert statuses == ["200"] * 5 * len(urls)

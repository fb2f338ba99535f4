"""Developer comforts of ``serve``: network URLs with QR codes, --open, hyper2web.toml, the
access log.

The tests of what hyper2web.toml changes in the answers, and of the access log, take
``client``: they run over HTTP/2 and over HTTP/1.1.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyper2web_cli.terminal import AccessLog, network_addresses, qr_lines
from tests.reload.livekit import get, wait_output, wait_until

Serve = Callable[..., Any]
QR_CHARS = set("█▄▀ ")


# -- network URLs and QR codes -------------------------------------------------------------------


def test_network_urls_on_a_wildcard_address(serve: Serve) -> None:
    server = serve("--host", "0.0.0.0")
    text = wait_output(server, "Ctrl+C to stop")
    assert f"Local:   https://localhost:{server.port}/" in text
    addresses = network_addresses()
    network = re.findall(r"Network: https://([\d.]+):(\d+)/", text)
    assert network == [(address, str(server.port)) for address in addresses]
    if addresses:
        # Each network URL is followed by its QR code, indented.
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if "Network:" in line)
        code = lines[at + 1:at + 1 + len(qr_lines(f"https://{addresses[0]}:{server.port}/"))]
        assert code and all(line.startswith("    ") for line in code)
        assert set("".join(line.strip("\n")[4:] for line in code)) <= QR_CHARS
        # The site answers on that address.
        assert get(f"https://{addresses[0]}:{server.port}/hello.txt").text == "hello world\n"


def test_no_network_urls_on_localhost(serve: Serve) -> None:
    text = wait_output(serve(), "Ctrl+C to stop")
    assert "Network:" not in text
    assert "█" not in text


def test_network_addresses_are_not_loopback() -> None:
    addresses = network_addresses()
    assert len(addresses) == len(set(addresses))
    for address in addresses:
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", address)
        assert not address.startswith("127.")


@pytest.mark.parametrize("text", ["https://192.168.1.20:5000/", "https://10.0.0.7:65535/",
                                  "x"])
def test_qr_lines_shape(text: str) -> None:
    lines = qr_lines(text)
    # A QR code of version v has 17 + 4v modules a side; two modules of quiet zone around;
    # two rows per line of text.
    width = len(lines[0])
    modules = width - 4
    assert (modules - 17) % 4 == 0 and modules >= 21
    assert len(lines) == (modules + 4 + 1) // 2
    assert all(len(line) == width for line in lines)
    assert set("".join(lines)) <= QR_CHARS
    # The quiet zone is light (drawn), all round; the last line holds its last row alone.
    assert lines[0] == "█" * width
    assert lines[-1] == "▀" * width
    assert all(line[:2] == "██" and line[-2:] == "██" for line in lines[:-1])
    # Rows 2 and 3 hold the top of the finder patterns: a dark row of 7 over a dark-light-dark.
    assert lines[1][2:9] == " " + "▄" * 5 + " "
    assert lines[1][-9:-2] == " " + "▄" * 5 + " "


def test_qr_lines_grow_with_the_text() -> None:
    assert len(qr_lines("https://192.168.100.200:54321/" + "x" * 80)[0]) > \
        len(qr_lines("https://10.0.0.1:5000/")[0])


# -- --open ---------------------------------------------------------------------------------


def test_open_starts_the_browser_with_the_url(serve: Serve, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "fake-browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{opened}"\n')
    browser.chmod(0o755)
    env = {"BROWSER": str(browser), "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    server = serve("--open", env=env)
    wait_until(opened.exists, 5, "--open did not run the browser within 5 s")
    wait_until(lambda: opened.read_text().endswith("\n"), 2)
    assert opened.read_text() == f"https://localhost:{server.port}/\n"


def test_no_browser_without_open(serve: Serve, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "fake-browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > "{opened}"\n')
    browser.chmod(0o755)
    server = serve(env={"BROWSER": str(browser)})
    get(server.url + "/")  # the server is up and answering: any --open would have run
    wait_output(server, "GET")
    assert not opened.exists()


# -- hyper2web.toml -------------------------------------------------------------------------


def test_toml_sets_options(serve: Serve, project: Path, client: httpx.Client) -> None:
    (project / "hyper2web.toml").write_text(
        'spa = true\nheader = ["X-From-Toml: 1"]\nno-list = true\n')
    server = serve()
    text = wait_output(server, "Ctrl+C to stop")
    assert f"Config:  {project / 'hyper2web.toml'}" in text
    # spa: a client-side route gets index.html
    page = client.get(server.url + "/some/client/route", headers={"accept": "text/html"})
    assert page.status_code == 200 and ">one<" in page.text
    assert page.headers["x-from-toml"] == "1"
    assert client.get(server.url + "/hello.txt").headers["x-from-toml"] == "1"


def test_toml_serve_section(serve: Serve, project: Path, client: httpx.Client) -> None:
    (project / "hyper2web.toml").write_text('[serve]\nheader = ["X-Section: yes"]\n')
    server = serve()
    assert client.get(server.url + "/hello.txt").headers["x-section"] == "yes"


def test_command_line_wins_over_toml(serve: Serve, project: Path,
                                     client: httpx.Client) -> None:
    (project / "hyper2web.toml").write_text(
        'header = ["X-From-Toml: 1"]\nsw-allowed = "/toml/"\n')
    (project / "public" / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    server = serve("-H", "X-From-Cli: 2", "--sw-allowed", "/")
    response = client.get(server.url + "/sw.js", headers={"service-worker": "script"})
    assert response.headers.get("x-from-cli") == "2"
    assert "x-from-toml" not in response.headers
    assert response.headers.get("service-worker-allowed") == "/"


def test_toml_with_no_reload(serve: Serve, project: Path, client: httpx.Client) -> None:
    (project / "hyper2web.toml").write_text("no_reload = true\nquiet = true\n")
    server = serve()
    assert "__hyper2web__" not in client.get(server.url + "/").text
    assert client.get(server.url + "/__hyper2web__/events").status_code == 404
    assert not any(line.startswith("GET") for line in server.output)


def run_serve(project: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    return subprocess.run([sys.executable, "-m", "hyper2web_cli", "serve", "public",
                           "--port", "0", *args], cwd=project, env=env, text=True,
                          capture_output=True, timeout=10)


@pytest.mark.parametrize(("toml", "expected"), [
    ("colour = true\n", r"^Error: \S*hyper2web\.toml: unknown setting 'colour' \(known: .*spa"),
    ("root = 'elsewhere'\n", r"^Error: \S*hyper2web\.toml: unknown setting 'root'"),
    ("spa = 'maybe'\n", r"^Error: \S*hyper2web\.toml: spa: "),
    ("spa = \n", r"^Error: \S*hyper2web\.toml: "),
    ('header = ["no colon"]\n', r"^Error: \S*hyper2web\.toml: header: "),
])
def test_bad_toml_is_one_error_line(project: Path, tmp_path: Path, cert_pair: Any,
                                    toml: str, expected: str) -> None:
    (project / "hyper2web.toml").write_text(toml)
    done = run_serve(project, "--cert", str(cert_pair[0]), "--key", str(cert_pair[1]),
                     home=tmp_path / "home")
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in done.stderr


# -- the access log -------------------------------------------------------------------------


ACCESS_LINE = re.compile(r"^(GET|HEAD) {3,4}(\S+) (\d{3}) (\d+(?:\.\d)? [KM]?B) (\d+\.\d) ms$")


def test_access_log_lines(serve: Serve, client: httpx.Client) -> None:
    server = serve()
    client.get(server.url + "/hello.txt")
    client.get(server.url + "/missing.txt")
    wait_output(server, "/missing.txt")
    lines = [line.rstrip("\n") for line in server.output if ACCESS_LINE.match(line.rstrip())]
    assert any(re.fullmatch(r"GET    /hello\.txt 200 12 B \d+\.\d ms", line) for line in lines), \
        server.output
    assert any(re.fullmatch(r"GET    /missing\.txt 404 \d+ B \d+\.\d ms", line)
               for line in lines), server.output
    # Not a terminal: no color codes.
    assert "\x1b[" not in "".join(server.output)


def test_quiet_hides_the_access_log(serve: Serve, client: httpx.Client) -> None:
    server = serve("--quiet")
    for _ in range(3):
        assert client.get(server.url + "/hello.txt").status_code == 200
    loud = serve()
    client.get(loud.url + "/hello.txt")
    wait_output(loud, "/hello.txt")  # by then the quiet one would have logged as well
    assert not [line for line in server.output if "/hello.txt" in line]


@pytest.mark.parametrize(("args", "expected"), [
    (("GET", "/a", 200, 12, 0.34), "GET    /a 200 12 B 0.3 ms"),
    (("POST", "/api", 201, 2048, 12.0), "POST   /api 201 2.0 KB 12.0 ms"),
    (("DELETE", "/x", 404, 3 * 1024 * 1024, 1.25), "DELETE /x 404 3.0 MB 1.2 ms"),
])
def test_access_log_format(args: tuple[Any, ...], expected: str) -> None:
    stream = io.StringIO()
    log = AccessLog(stream, color=False)
    log(*args)
    log.flush()
    assert stream.getvalue() == expected + "\n"


def test_access_log_colors_the_status() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, color=True)
    log("GET", "/a", 404, 1, 0.1)
    log.flush()
    assert "\x1b[33m404\x1b[0m" in stream.getvalue()


def test_access_log_lines_queue_then_leave_together() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, color=False, delay=0.2)
    for number in range(50):
        log("GET", f"/m{number}.js", 200, 10, 0.1)
    assert stream.getvalue() == ""  # queued, not yet written
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = stream.getvalue().splitlines()
    assert lines == [f"GET    /m{n}.js 200 10 B 0.1 ms" for n in range(50)]
    # A line after the batch is written on its own, without another call.
    log("GET", "/late", 200, 1, 0.1)
    deadline = time.monotonic() + 5
    while "/late" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stream.getvalue().endswith("GET    /late 200 1 B 0.1 ms\n")

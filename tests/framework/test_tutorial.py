"""The original tutorial's app.py, run as a user runs it: ``python app.py`` in its folder."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

# Quick Start (post_echo on 'name'), chapter 1 (the App and up()) and chapter 3 (top10).
TUTORIAL_APP = '''\
from hyper2web import app

if __name__ == '__main__':

    # A basic callback style API is provided
    # Function name is up to you
    async def post_echo(request, response):
        # Send the data received back to the client
        await response.send(request.stream.data)

    # define API's callback function
    async def top10_api(request, response):
        await response.send("some data")

    # let's only bind ip address to localhost for now. Later we will change it.
    # port number is up to you. any number larger than 1000 should be fine.
    app = app.App(address="localhost", port=5000)

    app.post('name', post_echo)

    # register this function
    app.get("top10", top10_api)
    # you can also do
    # app.get("/top10", top10_api)

    # up() starts the server.
    app.up()
'''

# Chapter 1's public/index.html.
TUTORIAL_INDEX = '''\
<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="UTF-8">
    <title>The Game</title>
</head>
<body>
Congratulations, you have set up the server correctly! <br>
We will start to create our game next!
</body>
</html>
'''

SERVING = re.compile(r"serving .* at https://localhost:(\d+)/")


def _port_is_free(port: int) -> bool:
    """True when ``port`` can be bound on every loopback address this machine has."""
    families = [(socket.AF_INET, "127.0.0.1")]
    if socket.has_ipv6:
        families.append((socket.AF_INET6, "::1"))
    for family, host in families:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
        except OSError as exc:
            no_ipv6 = exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
            if family == socket.AF_INET6 and no_ipv6:
                continue
            return False
        finally:
            sock.close()
    return True


def _tutorial_port() -> int:
    """5000 as the tutorial says when it is free, else any port free on the loopbacks."""
    if _port_is_free(5000):
        return 5000
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if _port_is_free(port):
            return port
    pytest.fail("no free port found")


@pytest.fixture
def tutorial(tmp_path: Path):
    game = tmp_path / "Game"
    (game / "public").mkdir(parents=True)
    (game / "public" / "index.html").write_text(TUTORIAL_INDEX)
    port = _tutorial_port()
    text = TUTORIAL_APP
    if port != 5000:
        text = text.replace("port=5000", f"port={port}")
    (game / "app.py").write_text(text)
    assert not (game / "localhost.crt.pem").exists()
    return game, port


def _start(game: Path) -> tuple[subprocess.Popen[str], int, list[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=game, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output: list[str] = []
    found: list[int] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            output.append(line)
            match = SERVING.search(line)
            if match and not found:
                found.append(int(match.group(1)))
                seen.set()
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 20
    while not seen.wait(0.1):
        if time.monotonic() > deadline:
            break
    if not found:
        proc.kill()
        proc.wait(5)
        pytest.fail("the tutorial app did not report its URL:\n" + "".join(output))
    return proc, found[0], output


def stop(proc: subprocess.Popen[str], output: list[str]) -> None:
    """Ctrl+C, as a user stops it; the app must end cleanly."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise
    text = "".join(output)
    assert code == 0, text
    assert "Traceback" not in text, text


def test_tutorial_app_runs_as_written(tutorial: tuple[Path, int]) -> None:
    game, expected_port = tutorial
    written = (game / "app.py").read_text()
    assert written == TUTORIAL_APP.replace("port=5000", f"port={expected_port}")
    proc, port, output = _start(game)
    try:
        assert port == expected_port
        assert (game / "localhost.crt.pem").is_file()
        assert (game / "localhost.key").is_file()
        with httpx.Client(http2=True, verify=False, timeout=10) as client:
            url = f"https://localhost:{port}"
            r = client.get(url + "/", headers={"accept-encoding": "identity"})
            assert r.http_version == "HTTP/2"
            assert r.status_code == 200
            assert r.text == TUTORIAL_INDEX
            assert r.headers["content-type"] == "text/html; charset=utf-8"

            r = client.get(url + "/top10")
            assert r.http_version == "HTTP/2"
            assert r.status_code == 200
            assert r.text == "some data"

            payload = "Albert é".encode() * 100
            r = client.post(url + "/name", content=payload)
            assert r.http_version == "HTTP/2"
            assert r.status_code == 200
            assert r.content == payload
    finally:
        stop(proc, output)
    assert "KeyboardInterrupt" not in "".join(output)

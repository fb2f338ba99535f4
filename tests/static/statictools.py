"""Helpers of the static serving tests: curl, a ``hyper2web serve`` process, a
``multipart/byteranges`` parser; HTTP/2 requests go through the suite's one raw client."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.server.h2client import StreamResult, h2_request  # noqa: F401 - used by the tests
from tests.support import CHROMIUM_ARGS as SUPPORT_CHROMIUM_ARGS
from tests.support import IN_CI, URL_RE, need_tool  # noqa: F401 - used by the tests here

CHROME_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                 "image/webp,image/apng,*/*;q=0.8")
CHROMIUM_ARGS = [*SUPPORT_CHROMIUM_ARGS, "--ignore-certificate-errors"]


# -- HTTP/2: the one raw client of the suite (tests/server/h2client.py) ------------------

H2Response = StreamResult  # what one stream received: 1xx heads, the final head, the body


# -- curl -----------------------------------------------------------------------------------


@dataclass
class CurlResult:
    """Every head curl saw (``heads[-1]`` is the final one) and the body as received."""

    heads: list[tuple[int, dict[str, str]]]
    body: bytes
    version: str

    @property
    def status(self) -> int:
        return self.heads[-1][0]

    @property
    def headers(self) -> dict[str, str]:
        return self.heads[-1][1]


def curl(url: str, *args: str) -> CurlResult:
    """``curl --http2 -k`` with ``args``; the body is kept exactly as it arrived."""
    path = need_tool("curl")
    with tempfile.TemporaryDirectory() as tmp:
        head_file, body_file = os.path.join(tmp, "head"), os.path.join(tmp, "body")
        done = subprocess.run(
            [path, "--http2", "-k", "--silent", "--show-error", "--max-time", "20",
             "-D", head_file, "-o", body_file, "-w", "%{http_version}", *args, url],
            capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr.decode()
        heads = _parse_heads(Path(head_file).read_bytes().decode("latin-1"))
        body = Path(body_file).read_bytes() if os.path.exists(body_file) else b""
    return CurlResult(heads, body, done.stdout.decode())


def _parse_heads(text: str) -> list[tuple[int, dict[str, str]]]:
    heads: list[tuple[int, dict[str, str]]] = []
    for line in text.split("\r\n"):
        if line.startswith("HTTP/"):
            heads.append((int(line.split()[1]), {}))
        elif ":" in line and heads:
            name, _, value = line.partition(":")
            heads[-1][1][name.strip().lower()] = value.strip()
    return heads


# -- multipart/byteranges ---------------------------------------------------------------------


def parse_byteranges(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a ``multipart/byteranges`` body: ``(headers, data)`` each.

    Strict: the body must hold exactly the parts, each with its head, and the closing
    delimiter; anything else fails the test.
    """
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    assert found, content_type
    delimiter = b"\r\n--" + found.group(1).encode()
    if body.startswith(delimiter[2:]):
        body = b"\r\n" + body
    pieces = body.split(delimiter)
    assert pieces[0] == b"", "text before the first boundary"
    assert pieces[-1] in (b"--", b"--\r\n"), "no closing delimiter"
    parts = []
    for piece in pieces[1:-1]:
        assert piece.startswith(b"\r\n"), piece[:40]
        head, sep, data = piece[2:].partition(b"\r\n\r\n")
        assert sep, "part without a blank line after its headers"
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, data))
    return parts


# -- ``hyper2web serve`` as a process ---------------------------------------------------------


class Serve:
    """``python -m hyper2web_cli serve ...`` in a process of its own; ``output`` grows."""

    def __init__(self, args: list[str], cwd: Path, home: Path, timeout: float = 15) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOME": str(home),
               "XDG_CONFIG_HOME": str(home / ".config")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hyper2web_cli", "serve", *args, "--port", "0"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        port = None
        while port is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            found = URL_RE.search(line)
            if found:
                port = int(found.group(1))
        if port is None:
            self.proc.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        self.port = port
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def log_has(self, text: str, timeout: float = 5) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.output):
                return True
            time.sleep(0.02)
        return False


def touch_later(path: Path, seconds: float = 5) -> None:
    """Move a file's mtime forward, as an edit a few seconds later would."""
    st = os.stat(path)
    later = st.st_mtime_ns + int(seconds * 1e9)
    os.utime(path, ns=(later, later))

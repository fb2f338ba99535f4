"""Clients and helpers of the static serving tests: a raw HTTP/2 client, curl, a
``hyper2web serve`` process, and a ``multipart/byteranges`` parser.

Kept here rather than imported from another test folder: each folder has its own
``conftest.py``, and only one module named ``conftest`` can be imported at a time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events

from tests.support import CHROMIUM_ARGS as SUPPORT_CHROMIUM_ARGS
from tests.support import IN_CI, URL_RE, need_tool  # noqa: F401 - used by the tests here

CHROME_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                 "image/webp,image/apng,*/*;q=0.8")
CHROMIUM_ARGS = [*SUPPORT_CHROMIUM_ARGS, "--ignore-certificate-errors"]


# -- a raw HTTP/2 client ------------------------------------------------------------------


@dataclass
class H2Response:
    """Everything one stream received, in order: 1xx heads, the final head, the body."""

    informational: list[list[tuple[str, str]]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None

    @property
    def status(self) -> int:
        return int(dict(self.headers)[":status"])

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ", ".join(values) if values else None

    def header_names(self) -> list[str]:
        return [k for k, _ in self.headers]


class H2Raw:
    """One blocking HTTP/2 connection that shows what ``httpx`` hides: 103 responses,
    compressed bytes as sent, and whether a body arrived at all."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.timeout = timeout
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(2**30)
        self.sock.sendall(self.conn.data_to_send())
        self.streams: dict[int, H2Response] = {}

    def request(self, path: str, method: str = "GET",
                headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = ()) -> H2Response:
        result = self._send(path, method, headers)
        self._read_until([result], f"{method} {path}")
        return result

    def batch(self, paths: list[str]) -> list[H2Response]:
        """GET every path, all requests in one write, so the server reads them together."""
        results = [self._send(path, "GET", (), write=False) for path in paths]
        self.sock.sendall(self.conn.data_to_send())
        self._read_until(results, f"GET of {len(paths)} paths")
        return results

    def _send(self, path: str, method: str,
              headers: list[tuple[str, str]] | tuple[tuple[str, str], ...],
              write: bool = True) -> H2Response:
        sid = self.conn.get_next_available_stream_id()
        block = [(":method", method), (":scheme", "https"), (":authority", "localhost"),
                 (":path", path), *headers]
        result = self.streams[sid] = H2Response()
        self.conn.send_headers(sid, block, end_stream=True)
        if write:
            self.sock.sendall(self.conn.data_to_send())
        return result

    def _read_until(self, results: list[H2Response], what: str) -> None:
        """Read (answering what h2 must) until every one of ``results`` ended or was reset."""
        deadline = time.monotonic() + self.timeout
        while not all(r.ended or r.reset is not None for r in results):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: no complete response")
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"{what}: connection closed")
            for event in self.conn.receive_data(data):
                self._on_event(event)
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)

    def _on_event(self, event: h2.events.Event) -> None:
        stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
        if stream is None:
            return
        if isinstance(event, h2.events.InformationalResponseReceived):
            stream.informational.append(list(event.headers))
            stream.order.append("informational")
        elif isinstance(event, h2.events.ResponseReceived):
            stream.headers = list(event.headers)
            stream.order.append("response")
        elif isinstance(event, h2.events.DataReceived):
            stream.chunks.append(event.data)
            if not stream.order or stream.order[-1] != "data":
                stream.order.append("data")
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset):
            stream.reset = int(event.error_code)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def h2_request(port: int, path: str, method: str = "GET",
               headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = ()) -> H2Response:
    with H2Raw(port) as client:
        return client.request(path, method, headers)


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

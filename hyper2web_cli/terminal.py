"""What ``serve`` prints: the banner, network URLs with QR codes, the colored access log."""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
import time
from typing import TextIO

from hyper2web.app import access_line
from hyper2web.listing import human_size

_STATUS_COLORS = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}


def network_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, as other devices on the LAN reach it."""
    found: list[str] = []
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        infos = []
    candidates = [str(info[4][0]) for info in infos] + _interface_addresses()
    for address in candidates:
        if not address.startswith("127.") and address not in found:
            found.append(address)
    return found


def _interface_addresses() -> list[str]:
    """IPv4 addresses of the network interfaces (Linux), read without sending anything."""
    try:
        import fcntl
        import struct
    except ImportError:  # pragma: no cover - not on Windows
        return []
    result = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(sock.fileno(), 0x8915,  # SIOCGIFADDR
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            result.append(socket.inet_ntoa(packed[20:24]))
    return result


def qr_lines(text: str) -> list[str]:
    """A QR code of ``text`` in half-block characters, two rows of modules per line.

    segno draws light modules and leaves dark ones blank, which reads right on the dark
    background of most terminals; a quiet zone of two modules is enough for phone cameras.
    """
    import segno  # only a banner on a wildcard address draws one

    out = io.StringIO()
    segno.make(text, error="l", micro=False).terminal(out=out, border=2, compact=True)
    return out.getvalue().splitlines()


_ANSI = {"green": "32", "cyan": "36", "yellow": "33", "red": "31", "white": "37"}


class AccessLog:
    """``GET    /app.js 200 1.2 KB 0.4 ms`` per request, colored by status on a terminal.

    Called by the app once per request, so it formats with plain string operations and only
    queues the line: a thread writes what queued up ``delay`` seconds after the first line,
    in one write. A page load of 150 modules thus costs one write, not 150, and a line is
    on screen within ``delay`` (0.05 s: sooner than anyone reads it).
    """

    def __init__(self, stream: TextIO | None = None, color: bool | None = None,
                 delay: float = 0.05) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if color is None:
            color = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.color = color
        self.delay = delay
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # held from taking lines until they are written
        self._pending = threading.Event()
        self._writer: threading.Thread | None = None

    def __call__(self, method: str, path: str, status: int, size: int, ms: float) -> None:
        if self.color:
            code = _ANSI[_STATUS_COLORS.get(status // 100, "white")]
            line = (f"\x1b[1m{method:<6}\x1b[0m {path} \x1b[{code}m{status}\x1b[0m "
                    f"\x1b[2m{human_size(size)} {ms:.1f} ms\x1b[0m\n")
        else:
            line = access_line(method, path, status, size, ms) + "\n"
        with self._lock:
            first = not self._lines
            self._lines.append(line)
            start = first and self._writer is None
            if start:
                self._writer = threading.Thread(target=self._write_queued, daemon=True,
                                                 name="hyper2web-access-log")
        if start:
            assert self._writer is not None
            self._writer.start()
        if first:
            self._pending.set()

    def _write_queued(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(self.delay)
            # Cleared before the lines are taken: a line queued after this point either
            # goes out with them or sets the event again.
            self._pending.clear()
            self.flush()

    def flush(self) -> None:
        """Write every queued line now (``serve`` calls it on the way out).

        It returns once lines the writer thread already took are written too.
        """
        with self._writing:
            with self._lock:
                lines, self._lines = self._lines, []
            if not lines:
                return
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):
                pass

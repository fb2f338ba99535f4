"""What ``serve`` prints: the banner, network URLs with QR codes, the colored access log."""

from __future__ import annotations

import logging
import socket

import click

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
    """A QR code of ``text`` drawn with half-block characters (two rows per line)."""
    try:
        import segno
    except ImportError:  # pragma: no cover - segno is a dependency
        return []
    matrix = [list(row) for row in segno.make(text, error="l", micro=False).matrix]
    # Light modules are drawn, dark ones left blank (terminals are dark), with a quiet zone
    # of two modules around the code so phone cameras find it.
    quiet = 2
    width = len(matrix[0]) + 2 * quiet
    rows = [[0] * width] * quiet + [[0] * quiet + row + [0] * quiet for row in matrix] \
        + [[0] * width] * quiet
    if len(rows) % 2:
        rows.append([0] * width)
    lines = []
    for top, bottom in zip(rows[::2], rows[1::2], strict=True):
        chars = []
        for a, b in zip(top, bottom, strict=True):
            chars.append({(0, 0): "█", (1, 0): "▄", (0, 1): "▀", (1, 1): " "}[(a, b)])
        lines.append("".join(chars))
    return lines


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


class AccessLogHandler(logging.Handler):
    """``GET /app.js 200 1.2 KB 0.4 ms``, colored by status on a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            method, path, status, size, ms = record.args  # type: ignore[misc]
            color = _STATUS_COLORS.get(int(status) // 100, "white")
            line = " ".join((
                click.style(f"{method:<6}", bold=True), str(path),
                click.style(str(status), fg=color),
                click.style(_human(int(size)), dim=True),
                click.style(f"{ms:.1f} ms", dim=True),
            ))
        except (TypeError, ValueError):
            line = record.getMessage()
        click.echo(line, err=True)

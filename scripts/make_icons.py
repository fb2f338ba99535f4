#!/usr/bin/env python3
"""Draw the PWA icons of the init template and of the sample site, as PNG files.

    python scripts/make_icons.py

Pure Python (zlib + struct): each icon is a few shapes drawn with 4x4 supersampling.
Writes icon-192.png, icon-512.png (transparent corners) and icon-maskable-512.png (full
bleed, the drawing inside the central 80% safe zone) into

    hyper2web_cli/templates/default/public/
    sample_site/public/
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
Color = tuple[int, int, int]
# A shape: (x, y) in 0..1 -> inside?
Shape = Callable[[float, float], bool]
SAMPLES = 4


def png(width: int, height: int, rgba: bytes) -> bytes:
    """An 8-bit RGBA PNG of ``rgba`` (rows top to bottom, 4 bytes a pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    stride = width * 4
    raw = b"".join(b"\x00" + rgba[y * stride:(y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def render(size: int, background: Shape, layers: list[tuple[Shape, Color]],
           base: Color) -> bytes:
    """Paint ``base`` where ``background`` holds, then each layer on top; antialiased."""
    out = bytearray(size * size * 4)
    step = 1.0 / (size * SAMPLES)
    offsets = [(i + 0.5) * step for i in range(SAMPLES)]
    total = SAMPLES * SAMPLES
    for py in range(size):
        for px in range(size):
            x0, y0 = px / size, py / size
            r = g = b = covered = 0
            for oy in offsets:
                for ox in offsets:
                    x, y = x0 + ox, y0 + oy
                    if not background(x, y):
                        continue
                    color = base
                    for shape, fill in layers:
                        if shape(x, y):
                            color = fill
                    r += color[0]
                    g += color[1]
                    b += color[2]
                    covered += 1
            i = (py * size + px) * 4
            if covered:
                out[i:i + 4] = bytes((round(r / covered), round(g / covered),
                                      round(b / covered), round(255 * covered / total)))
    return bytes(out)


def rounded_square(radius: float) -> Shape:
    def inside(x: float, y: float) -> bool:
        dx = max(radius - x, 0.0, x - (1 - radius))
        dy = max(radius - y, 0.0, y - (1 - radius))
        return dx * dx + dy * dy <= radius * radius
    return inside


def full(x: float, y: float) -> bool:
    return True


def circle(cx: float, cy: float, r: float) -> Shape:
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def ring(cx: float, cy: float, outer: float, inner: float) -> Shape:
    def inside(x: float, y: float) -> bool:
        d = (x - cx) ** 2 + (y - cy) ** 2
        return inner * inner <= d <= outer * outer
    return inside


def rect(x0: float, y0: float, x1: float, y1: float, radius: float = 0.0) -> Shape:
    def inside(x: float, y: float) -> bool:
        dx = max(x0 + radius - x, 0.0, x - (x1 - radius))
        dy = max(y0 + radius - y, 0.0, y - (y1 - radius))
        return dx * dx + dy * dy <= radius * radius
    return inside


def streak(cx: float, cy: float, length: float, width: float, angle: float) -> Shape:
    """A tail behind a falling meteor: a thin capsule pointing up-left."""
    ux, uy = math.cos(angle), math.sin(angle)

    def inside(x: float, y: float) -> bool:
        t = max(0.0, min(length, (x - cx) * ux + (y - cy) * uy))
        px, py = cx + t * ux, cy + t * uy
        return (x - px) ** 2 + (y - py) ** 2 <= (width * (1 - 0.75 * t / length)) ** 2
    return inside


def scaled(shape: Shape, factor: float) -> Shape:
    """``shape`` shrunk about the centre (maskable icons keep it in the safe zone)."""
    return lambda x, y: shape(0.5 + (x - 0.5) / factor, 0.5 + (y - 0.5) / factor)


# The template: a white ring and dot on blue.
TEMPLATE_BASE: Color = (37, 99, 235)
TEMPLATE_LAYERS: list[tuple[Shape, Color]] = [
    (ring(0.5, 0.5, 0.30, 0.21), (255, 255, 255)),
    (circle(0.5, 0.5, 0.11), (255, 255, 255)),
]

# The Game: a yellow meteor with its tail falling towards a red paddle, on night blue.
GAME_BASE: Color = (17, 24, 39)
GAME_LAYERS: list[tuple[Shape, Color]] = [
    (streak(0.54, 0.40, 0.32, 0.12, math.radians(225)), (255, 209, 102)),
    (circle(0.54, 0.40, 0.13), (255, 209, 102)),
    (rect(0.26, 0.70, 0.74, 0.79, 0.04), (239, 71, 111)),
]


def write_set(folder: Path, base: Color, layers: list[tuple[Shape, Color]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    corner = rounded_square(0.22)
    for size in (192, 512):
        target = folder / f"icon-{size}.png"
        target.write_bytes(png(size, size, render(size, corner, layers, base)))
        print(f"wrote {target.relative_to(REPO)}")
    safe = [(scaled(shape, 0.8), color) for shape, color in layers]
    target = folder / "icon-maskable-512.png"
    target.write_bytes(png(512, 512, render(512, full, safe, base)))
    print(f"wrote {target.relative_to(REPO)}")


def main() -> int:
    write_set(REPO / "hyper2web_cli" / "templates" / "default" / "public", TEMPLATE_BASE,
              TEMPLATE_LAYERS)
    write_set(REPO / "sample_site" / "public", GAME_BASE, GAME_LAYERS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

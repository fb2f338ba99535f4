"""The site of make bench-browser: one page, 300 ES modules 8 levels deep, a stylesheet and
four images.

    public/index.html            the page: the stylesheet, the images, <script type=module>
    public/style.css
    public/img/{red,green,blue,gray}.png    valid 1x1 PNGs
    public/js/main.js            level 0, imported by the page
    public/js/lN/mNNN.js         levels 1-7 (7 is the leaves)

Every module exports ``v``: its own number plus the ``v`` of each module it imports. Each
module imports its share of the next level (every module of a level has at least one
importer) and one more module of the next level chosen at random (seeded), so the graph is a
DAG with shared imports, not a tree. When every module has evaluated, main.js writes
``document.body.dataset.ready`` (main's ``v``, which depends on every module's number),
``dataset.nav`` (``performance.now()``, milliseconds since the navigation started) and
``dataset.t`` (``performance.timeOrigin + performance.now()``, epoch milliseconds).

``edit`` rewrites one leaf with a new number (same length, so the same file size) and
returns the marker the page must then show. Every file is dated one day back, as a project's
files mostly are; an edited file gets the current time.
"""

from __future__ import annotations

import os
import random
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

LEVELS = [1, 3, 8, 18, 34, 56, 80, 100]  # modules per level: 300 in all, 8 levels
PAD = 900  # bytes of comment per module, so a module weighs about 1 KB
EDITED_START = 4321  # the edited leaf's number before any edit (4 digits, like every edit)
COLORS = {"red": (220, 40, 40), "green": (40, 180, 70), "blue": (40, 90, 220),
          "gray": (128, 128, 128)}
BACKDATE = 86400.0


def png(rgb: tuple[int, int, int]) -> bytes:
    """A valid 1x1 RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(rgb))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>browser bench</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/style.css">
<script type="module" src="/js/main.js"></script>
</head>
<body>
<h1>300 modules</h1>
<p>{images}</p>
</body>
</html>
"""

STYLE = """body { font: 16px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.5rem; }
img { width: 16px; height: 16px; margin-right: 4px; image-rendering: pixelated; }
"""

MARKER = """
const now = performance.now();
document.body.dataset.nav = String(now);
document.body.dataset.t = String(performance.timeOrigin + now);
document.body.dataset.ready = String(v);
"""


@dataclass
class Module:
    level: int
    index: int  # within its level
    own: int
    imports: list[Module] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The URL path below /js/."""
        return "main.js" if self.level == 0 else f"l{self.level}/m{self.index:03d}.js"

    def source(self) -> str:
        here = 0 if self.level == 0 else 1
        lines = [f"// level {self.level}, module {self.index}"]
        names = []
        for number, child in enumerate(self.imports):
            target = ("./" if here == 0 else "../") + child.path
            lines.append(f'import {{ v as i{number} }} from "{target}";')
            names.append(f"i{number}")
        lines.append("")
        lines.append(f"// {'x' * 76}\n" * (PAD // 80))
        lines.append(f"export function describe() {{ return \"l{self.level}m{self.index}\"; }}")
        lines.append(f"export const own = {self.own};")
        lines.append(f"export const v = {' + '.join(['own', *names])};")
        return "\n".join(lines) + "\n" + (MARKER if self.level == 0 else "")


@dataclass
class Site:
    root: Path  # the folder the servers serve ("public")
    modules: list[list[Module]]
    edited: Module
    value: int = EDITED_START
    written_at: float = 0.0  # time.time() just before the last edit's write

    @property
    def modules_total(self) -> int:
        return sum(len(level) for level in self.modules)

    def marker(self) -> str:
        """What the page shows once every module of the current sources has evaluated."""
        values: dict[tuple[int, int], int] = {}
        for level in reversed(self.modules):
            for module in level:
                values[module.level, module.index] = module.own + sum(
                    values[child.level, child.index] for child in module.imports)
        return str(values[0, 0])

    def edit(self, value: int) -> str:
        """Give the edited leaf a new number; returns the new marker."""
        if len(str(value)) != len(str(self.edited.own)):
            raise ValueError("an edit keeps the file's size: a number of the same length")
        self.edited.own = value
        self.value = value
        path = self.root / "js" / self.edited.path
        source, marker = self.edited.source(), self.marker()
        self.written_at = time.time()
        path.write_text(source)
        return marker


def make_site(root: Path, seed: int = 2024) -> Site:
    """Write the site into ``root`` (created); returns its description."""
    rng = random.Random(seed)
    modules = [[Module(level, index, rng.randint(1, 99)) for index in range(count)]
               for level, count in enumerate(LEVELS)]
    for level in range(len(LEVELS) - 1):
        parents, children = modules[level], modules[level + 1]
        for number, child in enumerate(children):  # a share of the next level each
            parents[number * len(parents) // len(children)].imports.append(child)
        for parent in parents:  # and one shared import
            extra = [child for child in children if child not in parent.imports]
            if extra:
                parent.imports.append(rng.choice(extra))
    leaves = modules[-1]
    edited = leaves[len(leaves) // 2]
    edited.own = EDITED_START
    (root / "js").mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    images = " ".join(f'<img src="/img/{name}.png" alt="{name}">' for name in COLORS)
    (root / "index.html").write_text(PAGE.format(images=images))
    (root / "style.css").write_text(STYLE)
    for name, rgb in COLORS.items():
        (root / "img" / f"{name}.png").write_bytes(png(rgb))
    for level in modules:
        for module in level:
            path = root / "js" / module.path
            path.parent.mkdir(exist_ok=True)
            path.write_text(module.source())
    past = time.time() - BACKDATE
    for path in [root, *root.rglob("*")]:
        os.utime(path, (past, past))
    return Site(root, modules, edited)

"""A readable HTML listing of a folder that has no index file."""

from __future__ import annotations

import functools
import html
import os
import time
from collections.abc import Callable
from urllib.parse import quote


@functools.lru_cache(maxsize=1024)
def human_size(num: int) -> str:
    """``5 B``, ``1.2 KB``, ``3.0 MB``: sizes as a person reads them (remembered: every
    access log line has one, and a site's few sizes come back again and again)."""
    value = float(num)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{num} B"  # pragma: no cover


def render_listing(url_path: str, folder: str,
                   inside: Callable[[str], bool] | None = None) -> bytes:
    """The listing page of ``folder`` shown at ``url_path`` (which ends with ``/``).

    Hidden entries (dotfiles) are left out, as they are never served; so is a symlink
    whose target lies outside the root (``inside`` tells), whose size and time would say
    something about a file that is never served. Folders come first, then files, each
    alphabetically; names are escaped in text and quoted in links.
    """
    rows: list[tuple[bool, str, int, float]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if inside is not None and entry.is_symlink() and \
                    not inside(os.path.realpath(entry.path)):
                continue
            try:
                st = entry.stat()
                is_dir = entry.is_dir()
            except OSError:
                continue
            rows.append((is_dir, entry.name, st.st_size, st.st_mtime))
    rows.sort(key=lambda r: (not r[0], r[1].lower()))
    title = html.escape(url_path)
    lines = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width, initial-scale=1'>",
        f"<title>Index of {title}</title><style>",
        "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}",
        "table{border-collapse:collapse;width:100%}td,th{padding:.3rem .6rem;text-align:left}",
        "tr:nth-child(even){background:rgba(127,127,127,.08)}td.n{text-align:right}",
        "a{text-decoration:none}a:hover{text-decoration:underline}",
        "@media (prefers-color-scheme:dark){body{background:#111;color:#eee}a{color:#8ab4f8}}",
        "</style></head><body>",
        f"<h1>Index of {title}</h1><table><thead><tr><th>Name</th><th>Size</th>"
        "<th>Modified</th></tr></thead><tbody>",
    ]
    if url_path != "/":
        lines.append("<tr><td><a href='../'>../</a></td><td></td><td></td></tr>")
    for is_dir, name, size, mtime in rows:
        shown = html.escape(name + ("/" if is_dir else ""))
        href = html.escape(quote(name) + ("/" if is_dir else ""), quote=True)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime))
        lines.append(f"<tr><td><a href=\"{href}\">{shown}</a></td>"
                     f"<td class=n>{'' if is_dir else human_size(size)}</td><td>{when}</td></tr>")
    if not rows:
        lines.append("<tr><td colspan=3><em>This folder is empty.</em></td></tr>")
    lines.append("</tbody></table></body></html>\n")
    return "\n".join(lines).encode()

"""``hyper2web init NAME``: write a new project from ``templates/``.

Templates: ``default`` (an installable PWA: manifest, icons, service worker, offline page,
routes.py) and ``minimal`` (``public/index.html`` and ``routes.py``). ``{{title}}`` in text
files becomes the project's title, escaped for the file's language; other files (icons) are
copied as they are. The certificate is signed by the local certificate authority, so it is
trusted wherever ``hyper2web certs --install`` put the authority.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path

from . import certs as local_ca

TEMPLATE_NAMES = ("default", "minimal")
_TEXT_SUFFIXES = {".html", ".css", ".js", ".py", ".md", ".json", ".webmanifest", ".txt"}


def _json_text(text: str) -> str:
    return json.dumps(text)[1:-1]


# How the title is written into each kind of file: as text, or inside a JSON/JS string.
_ESCAPES: dict[str, Callable[[str], str]] = {
    ".html": html.escape,
    ".js": _json_text,
    ".json": _json_text,
    ".webmanifest": _json_text,
}


class ScaffoldError(Exception):
    """The project cannot be written; the message says why."""


def project_title(name: str) -> str:
    """A readable title from a folder name: ``my-game`` -> ``My Game``."""
    words = re.split(r"[-_\s]+", Path(name).name)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or "App"


def create_project(target: Path, template: str = "default") -> list[Path]:
    """Write ``template`` into ``target`` (new or empty) plus certificates; returns files."""
    if target.exists() and not target.is_dir():
        raise ScaffoldError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise ScaffoldError(f"{target} is not empty; choose a new name or empty it first")
    from importlib import resources  # loads zipfile: only ``init`` needs it

    source = resources.files("hyper2web_cli") / "templates" / template
    if not source.is_dir():
        raise ScaffoldError(f"unknown template {template!r}")
    title = project_title(str(target))
    written: list[Path] = []
    target.mkdir(parents=True, exist_ok=True)
    _copy(source, target, title, written)
    cert, key, _ = local_ca.issue(target, local_ca.default_hosts())
    written.extend((cert, key))
    return written


def _copy(source, target: Path, title: str, written: list[Path]) -> None:
    for entry in source.iterdir():
        if entry.name == "__pycache__":
            continue
        dest = target / entry.name
        if entry.is_dir():
            dest.mkdir(exist_ok=True)
            _copy(entry, dest, title, written)
            continue
        data = entry.read_bytes()
        suffix = Path(entry.name).suffix
        if suffix in _TEXT_SUFFIXES:
            escape = _ESCAPES.get(suffix, str)
            data = data.replace(b"{{title}}", escape(title).encode())
        dest.write_bytes(data)
        written.append(dest)

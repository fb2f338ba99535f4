"""``hyper2web init NAME``: write a new project from ``templates/``."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from hyper2web.certs import write_certificates

TEMPLATES = resources.files("hyper2web_cli") / "templates"
_TEXT_SUFFIXES = {".html", ".css", ".js", ".py", ".md", ".json", ".webmanifest", ".txt"}


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
    source = TEMPLATES / template
    if not source.is_dir():
        raise ScaffoldError(f"unknown template {template!r}")
    title = project_title(str(target))
    written: list[Path] = []
    target.mkdir(parents=True, exist_ok=True)
    _copy(source, target, title, written)
    written.extend(write_certificates(target))
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
        if Path(entry.name).suffix in _TEXT_SUFFIXES:
            data = data.replace(b"{{title}}", title.encode())
        dest.write_bytes(data)
        written.append(dest)

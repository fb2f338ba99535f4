"""The manifest and icon checks of ``hyper2web check``: is the manifest linked, found,
served with the right type and valid; does it name the app, say how it opens and where it
starts; are its icons there, PNG, and the size they declare?

A browser offers to install a PWA only with a valid manifest and the right icons, so each
problem found comes with a one-line fix. ``png_size`` is also used by the tests of
``hyper2web init``'s icons.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from hyper2web.mime import content_type_for

from .base import ORIGIN, PAGE, CheckBase, PageParser, site_path, url_folder

DISPLAY_MODES = ("standalone", "fullscreen", "minimal-ui")
REQUIRED_ICON_SIZES = (192, 512)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk; None when the file is not a PNG."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _sizes(value: Any) -> list[str]:
    return value.lower().split() if isinstance(value, str) else []


def _purposes(icon: dict[str, Any]) -> list[str]:
    value = icon.get("purpose", "any")
    return value.lower().split() if isinstance(value, str) else ["any"]


def _is_png(icon: dict[str, Any]) -> bool:
    src = icon.get("src")
    kind = icon.get("type")
    if isinstance(kind, str) and kind.strip():
        return kind.strip().lower() == "image/png"
    return isinstance(src, str) and urlsplit(src).path.lower().endswith(".png")


class ManifestChecks(CheckBase):
    """The manifest, then its icons."""

    def check_manifest(self, page: PageParser) -> dict[str, Any] | None:
        """The manifest's checks; returns what the service worker check needs."""
        self.section("Manifest")
        if not page.manifests or not page.manifests[0]:
            self.fail(f"{PAGE} links no manifest",
                      'add <link rel="manifest" href="/manifest.webmanifest"> to its <head>')
            return None
        href = page.manifests[0]
        url = urljoin(ORIGIN + "/", href)
        path = site_path(url)
        if path is None:
            self.fail(f"the manifest {href} is on another site",
                      "serve the manifest from this site, e.g. /manifest.webmanifest")
            return None
        file = self.file_for(path)
        if file is None:
            self.fail(f"{PAGE} links the manifest {path}, but there is no such file",
                      f"create {self.root}{path} or correct the link's href")
            return None
        self.ok(f"{PAGE} links the manifest {path}")
        ctype = content_type_for(file.name).split(";")[0]
        if ctype == "application/manifest+json":
            self.ok(f"{file.name} is served as application/manifest+json")
        elif ctype == "application/json":
            self.warn(f"{file.name} is served as application/json",
                      "rename it to manifest.webmanifest (application/manifest+json)")
        else:
            self.fail(f"{file.name} is served as {ctype}, not application/manifest+json",
                      "rename it to manifest.webmanifest")
        text = self._read_text(file) or ""
        try:
            data = json.loads(text)
        except ValueError as exc:
            where = (f"line {exc.lineno}, column {exc.colno}"
                     if isinstance(exc, json.JSONDecodeError) else "")
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            self.fail(f"{file.name} is not valid JSON: {message}" + (f" ({where})" if where
                                                                      else ""),
                      f"fix the JSON at {where or 'the start'} (a trailing comma or a "
                      "missing quote?)")
            return None
        if not isinstance(data, dict):
            self.fail(f"{file.name} is not a JSON object",
                      'make it an object: {"name": ..., "start_url": "/", ...}')
            return None
        self.ok(f"{file.name} is valid JSON")
        self._manifest_fields(file.name, data)
        start, scope = self._manifest_urls(file.name, url, data)
        self.section("Icons")
        self._icons(file.name, url, data)
        return {"start": start, "scope": scope}

    def _manifest_fields(self, name: str, data: dict[str, Any]) -> None:
        names = [key for key in ("name", "short_name")
                 if isinstance(data.get(key), str) and data[key].strip()]
        if names:
            self.ok(f"{name} has {' and '.join(names)}: {data[names[0]]!r}")
        else:
            self.fail(f"{name} has neither name nor short_name",
                      'add "name": "My App" and "short_name": "App"')
        display = data.get("display")
        if display in DISPLAY_MODES:
            self.ok(f"{name} has display {display!r}")
        elif display is None:
            self.fail(f"{name} has no display",
                      'add "display": "standalone" (the app opens in its own window)')
        else:
            self.fail(f"{name} has display {display!r}: browsers do not install that",
                      'set "display": "standalone" (or "fullscreen", "minimal-ui")')
        missing = [key for key in ("theme_color", "background_color") if key not in data]
        if missing:
            self.warn(f"{name} has no {' or '.join(missing)}",
                      f"add {', '.join(repr(k) for k in missing)} (the title bar and splash "
                      "screen colors), e.g. \"#ffffff\"")

    def _manifest_urls(self, name: str, manifest_url: str,
                       data: dict[str, Any]) -> tuple[str | None, str | None]:
        """Checks start_url and scope; returns their paths when they are on this site."""
        start = data.get("start_url")
        start_path = None
        if start is None:
            self.fail(f"{name} has no start_url", 'add "start_url": "/"')
        elif not isinstance(start, str):
            self.fail(f"{name}'s start_url is not a string", 'set "start_url": "/"')
        else:
            start_path = site_path(urljoin(manifest_url, start))
            if start_path is None:
                self.fail(f"start_url {start!r} is outside the site",
                          'use a path of this site, e.g. "start_url": "/"')
            elif self.file_for(start_path) is None:
                self.fail(f"start_url {start!r} leads to no file of the site",
                          f"point start_url at a page, e.g. \"/\", or create {start_path}")
            else:
                self.ok(f"start_url {start!r} is a page of the site")
        scope = data.get("scope")
        scope_path: str | None
        if scope is None:
            scope_path = url_folder(site_path(manifest_url) or "/")
            shown = f"{scope_path} (the manifest's folder; no scope given)"
        elif not isinstance(scope, str):
            self.fail(f"{name}'s scope is not a string", 'set "scope": "/"')
            return start_path, None
        else:
            scope_path = site_path(urljoin(manifest_url, scope))
            shown = repr(scope)
            if scope_path is None:
                self.fail(f"scope {scope!r} is outside the site",
                          'use a path of this site, e.g. "scope": "/"')
                return start_path, None
        if start_path is not None:
            if start_path.startswith(scope_path):
                self.ok(f"start_url is inside scope {shown}")
            else:
                self.fail(f"start_url {start_path} is outside scope {shown}",
                          f'set "scope" to a folder that holds {start_path}, e.g. "/"')
        return start_path, scope_path

    def _icons(self, name: str, manifest_url: str, data: dict[str, Any]) -> None:
        icons = data.get("icons")
        if not isinstance(icons, list) or not icons:
            self.fail(f"{name} has no icons",
                      'add "icons" with a 192x192 and a 512x512 PNG (hyper2web init has '
                      "both)")
            return
        usable = [i for i in icons if isinstance(i, dict) and isinstance(i.get("src"), str)]
        if len(usable) != len(icons):
            self.fail(f"{name} has icons without a src", 'give every icon a "src"')
        for size in REQUIRED_ICON_SIZES:
            wanted = f"{size}x{size}"
            if any(_is_png(i) and wanted in _sizes(i.get("sizes")) and "any" in _purposes(i)
                   for i in usable):
                self.ok(f"{name} declares a {wanted} PNG icon")
            else:
                self.fail(f"{name} declares no {wanted} PNG icon",
                          f'add {{"src": "/icon-{size}.png", "sizes": "{wanted}", '
                          '"type": "image/png"} to "icons"')
        if not any("maskable" in _purposes(i) for i in usable):
            self.warn(f"{name} has no maskable icon: Android shows the icon on a white "
                      "disc",
                      'add an icon with "purpose": "maskable" (its drawing inside the '
                      "central 80%)")
        for icon in usable:
            self._icon_file(manifest_url, icon)

    def _icon_file(self, manifest_url: str, icon: dict[str, Any]) -> None:
        src = icon["src"]
        path = site_path(urljoin(manifest_url, src))
        if path is None:
            self.warn(f"icon {src} is on another site, not checked",
                      "serve icons from this site so they work offline")
            return
        file = self.file_for(path)
        if file is None:
            self.fail(f"icon {path} not found", f"create {self.root}{path} or correct its src")
            return
        if not _is_png(icon):
            self.ok(f"icon {path} exists")
            return
        size = png_size(file)
        if size is None:
            self.fail(f"icon {path} is not a PNG file",
                      "save it as PNG, or give its real type in \"type\"")
            return
        actual = f"{size[0]}x{size[1]}"
        declared = _sizes(icon.get("sizes"))
        if "any" in declared or actual in declared:
            self.ok(f"icon {path} is {actual}")
        elif not declared:
            self.fail(f"icon {path} ({actual}) declares no sizes",
                      f'add "sizes": "{actual}"')
        else:
            self.fail(f"icon {path} is {actual}, but declares {' '.join(declared)}",
                      f"resize it to {declared[0]}, or declare \"sizes\": \"{actual}\"")

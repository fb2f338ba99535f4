"""``hyper2web check [ROOT]``: is the site an installable PWA that works offline?

The checks read the files the way ``hyper2web serve`` would serve them: URLs are mapped to
files by the server's own static file rules, and content types come from
``hyper2web.mime``. Nothing is fetched over the network. Each problem comes with a one-line
fix.

- Page: ``index.html`` exists and has a viewport.
- Manifest: linked from ``index.html``, found, served as ``application/manifest+json``,
  valid JSON; ``name`` or ``short_name``, ``start_url``, ``display`` (standalone, fullscreen
  or minimal-ui), icons with a 192x192 and a 512x512 PNG; ``start_url`` and ``scope`` inside
  the site, ``start_url`` inside ``scope``.
- Icons: each one exists; a PNG's real size (from its IHDR chunk) is one it declares.
- Service worker: a script the page loads registers one; it exists, is served as
  JavaScript with ``cache-control: no-cache``, and its folder covers ``start_url``.
- Certificates: the local CA exists and a trust store trusts it; the certificate ``serve``
  would use is signed by it, covers localhost and does not expire within 30 days.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import click

from hyper2web.certs import CERT_NAME, KEY_NAME
from hyper2web.mime import content_type_for
from hyper2web.static import StaticFiles

from . import certs as local_ca
from . import trust

PAGE = "index.html"
DISPLAY_MODES = ("standalone", "fullscreen", "minimal-ui")
REQUIRED_ICON_SIZES = (192, 512)
EXPIRY_MARGIN = dt.timedelta(days=30)
INSTALL_FIX = "hyper2web certs --install"
# A made-up origin to resolve the site's URLs against: anything else is another site.
_ORIGIN = "https://site.invalid"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_REGISTER = re.compile(r"""serviceWorker\s*\.\s*register\s*\(\s*(?:(["'`])([^"'`]+)\1)?""")
_IMPORT = re.compile(r"""(?:\bimport\s*(?:[\w*${}\s,]+from\s*)?|\bimport\s*\(\s*)"""
                     r"""["']([^"']+)["']""")
_FETCH_HANDLER = re.compile(r"""addEventListener\s*\(\s*["']fetch["']|\bonfetch\s*=""")
_MAX_SCRIPTS = 30


@dataclass
class Finding:
    """One check's outcome: ``ok``, ``fail`` or ``warn`` (a warning does not fail)."""

    section: str
    status: str
    message: str
    fix: str = ""


@dataclass
class Report:
    root: Path
    findings: list[Finding] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failures


class _PageParser(HTMLParser):
    """The manifest link, script sources and inline scripts of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.manifests: list[str] = []
        self.scripts: list[str] = []
        self.inline: list[str] = []
        self.viewport = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "link" and "manifest" in values.get("rel", "").lower().split():
            self.manifests.append(values.get("href", ""))
        elif tag == "script":
            if values.get("src"):
                self.scripts.append(values["src"])
            else:
                self._in_script = True
                self.inline.append("")
        elif tag == "meta" and values.get("name", "").lower() == "viewport":
            self.viewport = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline[-1] += data


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


def _url_path(url: str) -> str | None:
    """The path of a URL of this site; None for another site (or a non-http URL)."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != _ORIGIN:
        return None
    return parts.path or "/"


def _folder(path: str) -> str:
    return path[: path.rfind("/") + 1]


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


class SiteCheck:
    """Runs the checks on one served folder and collects the findings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.static = StaticFiles(root, listing=False)
        self.report = Report(root)
        self._section = ""

    # -- recording ---------------------------------------------------------------------------

    def section(self, name: str) -> None:
        self._section = name

    def ok(self, message: str) -> None:
        self.report.findings.append(Finding(self._section, "ok", message))

    def fail(self, message: str, fix: str) -> None:
        self.report.findings.append(Finding(self._section, "fail", message, fix))

    def warn(self, message: str, fix: str) -> None:
        self.report.findings.append(Finding(self._section, "warn", message, fix))

    # -- files -------------------------------------------------------------------------------

    def file_for(self, url_path: str) -> Path | None:
        """The file the server sends for a URL path (index.html for a folder), or None."""
        found = self.static.lookup(url_path)
        if found.status == 301:
            found = self.static.lookup(url_path + "/")
        if found.status != 200 or found.listing:
            return None
        return Path(found.path)

    def _read_text(self, path: Path) -> str | None:
        try:
            return path.read_bytes().decode("utf-8-sig", errors="replace")
        except OSError:
            return None

    # -- the checks --------------------------------------------------------------------------

    def run(self, certificates: bool = True) -> Report:
        self.section("Page")
        page = self.file_for("/")
        if page is None:
            self.fail(f"no {PAGE} in {self.root}",
                      f"create {self.root / PAGE} (hyper2web init writes one)")
        else:
            parsed = _PageParser()
            parsed.feed(self._read_text(page) or "")
            self.ok(f"{PAGE} found")
            if parsed.viewport:
                self.ok(f"{PAGE} has a viewport meta tag")
            else:
                self.warn(f"{PAGE} has no viewport meta tag: phones show it zoomed out",
                          'add <meta name="viewport" content="width=device-width, '
                          'initial-scale=1"> to its <head>')
            manifest = self.check_manifest(parsed)
            self.check_service_worker(parsed, manifest)
        self.section("Certificates")
        if certificates:
            self.check_certificates()
        return self.report

    def check_manifest(self, page: _PageParser) -> dict[str, Any] | None:
        """The manifest's checks; returns what the service worker check needs."""
        self.section("Manifest")
        if not page.manifests or not page.manifests[0]:
            self.fail(f"{PAGE} links no manifest",
                      'add <link rel="manifest" href="/manifest.webmanifest"> to its <head>')
            return None
        href = page.manifests[0]
        url = urljoin(_ORIGIN + "/", href)
        path = _url_path(url)
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
            start_path = _url_path(urljoin(manifest_url, start))
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
            scope_path = _folder(_url_path(manifest_url) or "/")
            shown = f"{scope_path} (the manifest's folder; no scope given)"
        elif not isinstance(scope, str):
            self.fail(f"{name}'s scope is not a string", 'set "scope": "/"')
            return start_path, None
        else:
            scope_path = _url_path(urljoin(manifest_url, scope))
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
        path = _url_path(urljoin(manifest_url, src))
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

    def _page_scripts(self, page: _PageParser) -> Iterable[tuple[str, str]]:
        """(where, text) of the page's inline scripts and the local scripts it loads."""
        for number, inline in enumerate(page.inline, 1):
            yield f"{PAGE} (inline script {number})", inline
        queue = [urljoin(_ORIGIN + "/", src) for src in page.scripts]
        seen: set[str] = set()
        while queue and len(seen) < _MAX_SCRIPTS:
            url = queue.pop(0)
            path = _url_path(url)
            if path is None or path in seen:
                continue
            seen.add(path)
            file = self.file_for(path)
            text = self._read_text(file) if file is not None else None
            if text is None:
                continue
            yield path, text
            queue.extend(urljoin(url, spec) for spec in _IMPORT.findall(text)
                         if spec.startswith((".", "/")))

    def check_service_worker(self, page: _PageParser,
                             manifest: dict[str, Any] | None) -> None:
        self.section("Service worker")
        registered: tuple[str, str] | None = None
        unresolved = None
        for where, text in self._page_scripts(page):
            for match in _REGISTER.finditer(text):
                if match.group(2):
                    registered = (where, match.group(2))
                    break
                unresolved = where
            if registered:
                break
        if registered is None:
            if unresolved:
                self.warn(f"{unresolved} registers a service worker whose URL is not a "
                          "string literal: not checked",
                          'write it as navigator.serviceWorker.register("/sw.js")')
                return
            self.fail(f"no service worker: no script of {PAGE} calls "
                      "navigator.serviceWorker.register()",
                      'add navigator.serviceWorker.register("/sw.js") to a script of the page '
                      "(hyper2web init writes one)")
            return
        where, src = registered
        path = _url_path(urljoin(_ORIGIN + "/", src))
        if path is None:
            self.fail(f"{where} registers {src}, on another site",
                      "serve the service worker from this site, e.g. /sw.js")
            return
        file = self.file_for(path)
        if file is None:
            self.fail(f"{where} registers the service worker {path}, but there is no such file",
                      f"create {self.root}{path} or correct the URL given to register()")
            return
        self.ok(f"{where} registers the service worker {path}")
        ctype = content_type_for(file.name).split(";")[0]
        if ctype in ("text/javascript", "application/javascript"):
            self.ok(f"{file.name} is served as {ctype}")
        else:
            self.fail(f"{file.name} is served as {ctype}: browsers only run JavaScript "
                      "workers", "give it a .js name")
        self.ok(f"{file.name} is served with cache-control: no-cache (hyper2web sends it "
                "with every file), so browsers look for a new worker on every load")
        text = self._read_text(file) or ""
        if _FETCH_HANDLER.search(text):
            self.ok(f"{file.name} has a fetch handler")
        else:
            self.warn(f"{file.name} has no fetch handler: the app does not work offline",
                      'answer requests from a cache: self.addEventListener("fetch", ...) '
                      "(see the sw.js of hyper2web init)")
        start = manifest.get("start") if manifest else None
        allowed = _folder(path)
        if start is not None and not start.startswith(allowed):
            self.fail(f"{path} can only control pages under {allowed}, and start_url {start} "
                      "is not one", "move it to the site's root folder, or serve with "
                                    f"--sw-allowed {_folder(start)}")

    def check_certificates(self) -> None:
        ca = local_ca.load_authority()
        if ca is None:
            self.fail("there is no local certificate authority, so no trusted certificate: "
                      "browsers refuse service workers", INSTALL_FIX)
            return
        stores = trusted_in(ca)
        if stores:
            self.ok(f"the local CA is trusted in {', '.join(stores)}")
        else:
            self.fail("the local CA is not trusted by this machine's browsers: they refuse "
                      "service workers", INSTALL_FIX)
        now = dt.datetime.now(dt.timezone.utc)
        if ca.cert.not_valid_after_utc - now < EXPIRY_MARGIN:
            self.fail(f"the local CA expires on {ca.cert.not_valid_after_utc:%Y-%m-%d}",
                      INSTALL_FIX + " (makes a new one)")
        leaf = self._serving_certificate()
        if leaf is None:
            self.ok("no certificate yet: 'hyper2web serve' makes one signed by the local CA")
            return
        folder = leaf.parent
        fix = f"hyper2web certs --out {folder}"
        info = local_ca.inspect_leaf(leaf, ca)
        if folder == local_ca.data_dir() / "certs" and (
                info is None or not info.by_our_ca or info.not_after - now < EXPIRY_MARGIN):
            self.ok(f"{leaf} is out of date: 'hyper2web serve' makes a new one, signed by "
                    "the local CA")
            return
        if info is None:
            self.fail(f"{leaf} cannot be read", fix)
            return
        if not info.by_our_ca:
            self.fail(f"{leaf} is not signed by the local CA: browsers do not trust it",
                      fix)
        elif info.not_after - now < EXPIRY_MARGIN:
            self.fail(f"{leaf} expires on {info.not_after:%Y-%m-%d}", fix)
        elif not local_ca.covers(info.hosts, "localhost"):
            self.fail(f"{leaf} is not valid for localhost", fix)
        else:
            self.ok(f"{leaf} is signed by the local CA, valid until "
                    f"{info.not_after:%Y-%m-%d}")

    def _serving_certificate(self) -> Path | None:
        """The certificate ``hyper2web serve`` would use for this folder, if it exists."""
        for folder in (Path.cwd(), self.root.resolve().parent, local_ca.data_dir() / "certs"):
            if (folder / CERT_NAME).is_file() and (folder / KEY_NAME).is_file():
                return folder / CERT_NAME
        return None


def trusted_in(ca: local_ca.Authority) -> list[str]:
    """The names of the trust stores that trust ``ca``."""
    name = trust.nickname(ca)
    return [store.name for store in trust.stores() if store.has(name)]


def check_site(root: Path, *, certificates: bool = True) -> Report:
    """Run every check on the served folder ``root``."""
    return SiteCheck(root).run(certificates)


_MARKS = {"ok": ("ok", "green"), "fail": ("FAIL", "red"), "warn": ("warn", "yellow")}


def print_report(report: Report, certificates: bool = True) -> None:
    """The findings by section, each problem with its fix, then a one-line verdict."""
    click.echo(f"Checking {report.root} as a Progressive Web App")
    section = None
    for finding in report.findings:
        if finding.section != section:
            section = finding.section
            click.echo(f"\n{click.style(section, bold=True)}")
        mark, color = _MARKS[finding.status]
        click.echo(f"  {click.style(f'{mark:<4}', fg=color, bold=True)}  {finding.message}")
        if finding.fix:
            click.echo(f"        fix: {finding.fix}")
    if not certificates:
        click.echo(f"\n{click.style('Certificates', bold=True)}\n  skipped (--no-certs)")
    failures = len(report.failures)
    warnings = sum(f.status == "warn" for f in report.findings)
    extra = f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
    click.echo()
    if failures:
        them = "them" if failures != 1 else "it"
        click.echo(click.style(f"{failures} problem{'s' * (failures != 1)}{extra}", fg="red",
                               bold=True)
                   + f": fix {them} and run 'hyper2web check' again.")
    else:
        checks = sum(f.status == "ok" for f in report.findings)
        click.echo(click.style(f"All {checks} checks passed{extra}", fg="green", bold=True)
                   + f": {report.root} is an installable PWA.")

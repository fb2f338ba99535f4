"""What every group of checks works with: the served folder, read the way ``serve`` serves
it; the page's manifest link and scripts; the findings, collected into a ``Report``.

The checks in ``manifest.py``, ``service_worker.py`` and ``certificates.py`` are subclasses
of ``CheckBase``; ``check.py`` combines them into ``SiteCheck``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from hyper2web.static import StaticFiles

PAGE = "index.html"
# A made-up origin to resolve the site's URLs against: anything else is another site.
ORIGIN = "https://site.invalid"


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


class PageParser(HTMLParser):
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


def site_path(url: str) -> str | None:
    """The path of a URL of this site; None for another site (or a non-http URL)."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != ORIGIN:
        return None
    return parts.path or "/"


def url_folder(path: str) -> str:
    return path[: path.rfind("/") + 1]


class CheckBase:
    """The served folder and the findings: what every group of checks works with."""

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

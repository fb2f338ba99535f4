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

The checks themselves are in ``checks/``, one module per group (``manifest``,
``service_worker``, ``certificates``); this module runs them in order and prints the
report. The names other code uses (``check_site``, ``print_report``, ``png_size``,
``trusted_in``, ...) are all importable from here.
"""

from __future__ import annotations

from pathlib import Path

import click

from .checks.base import PAGE, Finding, PageParser, Report
from .checks.certificates import EXPIRY_MARGIN, INSTALL_FIX, CertificateChecks, trusted_in
from .checks.manifest import DISPLAY_MODES, REQUIRED_ICON_SIZES, ManifestChecks, png_size
from .checks.service_worker import ServiceWorkerChecks

__all__ = [
    "DISPLAY_MODES",
    "EXPIRY_MARGIN",
    "INSTALL_FIX",
    "PAGE",
    "REQUIRED_ICON_SIZES",
    "Finding",
    "Report",
    "SiteCheck",
    "check_site",
    "png_size",
    "print_report",
    "trusted_in",
]


class SiteCheck(ManifestChecks, ServiceWorkerChecks, CertificateChecks):
    """Runs the checks on one served folder and collects the findings."""

    def run(self, certificates: bool = True) -> Report:
        self.section("Page")
        page = self.file_for("/")
        if page is None:
            self.fail(f"no {PAGE} in {self.root}",
                      f"create {self.root / PAGE} (hyper2web init writes one)")
        else:
            parsed = PageParser()
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

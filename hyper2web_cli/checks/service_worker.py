"""The service worker checks of ``hyper2web check``: does a script of the page register
one, is it there, served as JavaScript, able to answer offline, and does its folder cover
the manifest's ``start_url``?

Without a service worker that controls the start page a PWA does not work offline (and
some browsers do not offer to install it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin

from hyper2web.mime import content_type_for

from .base import ORIGIN, PAGE, CheckBase, PageParser, site_path, url_folder

_REGISTER = re.compile(r"""serviceWorker\s*\.\s*register\s*\(\s*(?:(["'`])([^"'`]+)\1)?""")
_IMPORT = re.compile(r"""(?:\bimport\s*(?:[\w*${}\s,]+from\s*)?|\bimport\s*\(\s*)"""
                     r"""["']([^"']+)["']""")
_FETCH_HANDLER = re.compile(r"""addEventListener\s*\(\s*["']fetch["']|\bonfetch\s*=""")
_MAX_SCRIPTS = 30


class ServiceWorkerChecks(CheckBase):
    """The service worker a script of the page registers."""

    def _page_scripts(self, page: PageParser) -> Iterable[tuple[str, str]]:
        """(where, text) of the page's inline scripts and the local scripts it loads."""
        for number, inline in enumerate(page.inline, 1):
            yield f"{PAGE} (inline script {number})", inline
        queue = [urljoin(ORIGIN + "/", src) for src in page.scripts]
        seen: set[str] = set()
        while queue and len(seen) < _MAX_SCRIPTS:
            url = queue.pop(0)
            path = site_path(url)
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

    def check_service_worker(self, page: PageParser,
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
        path = site_path(urljoin(ORIGIN + "/", src))
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
        allowed = url_folder(path)
        if start is not None and not start.startswith(allowed):
            self.fail(f"{path} can only control pages under {allowed}, and start_url {start} "
                      "is not one", "move it to the site's root folder, or serve with "
                                    f"--sw-allowed {url_folder(start)}")

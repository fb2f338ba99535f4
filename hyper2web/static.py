"""Static files: URL path -> safe file path -> response.

Safety first: a URL path is decoded once, split into segments, and refused (4xx) when any
segment could climb out of the root (``..``), carries a NUL or a backslash, or was an encoded
slash. The joined path is then resolved with ``realpath`` and must still lie under the
root's real path, so a symlink that leads outside is refused too. Dotfiles stay hidden,
except under ``/.well-known/``.

Speed second: a URL path that led to a file is remembered with the file's real path, and
the file's ``FileEntry`` (type, validators, small body, compressed variants) is checked with
one ``stat`` per request, so a repeated request costs no path resolution, no read and no
compression.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from . import encoding
from .filebody import send_body, send_ranges
from .files import FileCache, FileEntry, not_modified
from .http import RESERVED_PREFIX, Request, Response
from .listing import render_listing
from .modmap import IMMUTABLE, ModuleVersions, send_page
from .pages import prefers_html, send_error_page
from .ranges import Unsatisfiable, if_range_matches, parse_range

log = logging.getLogger("hyper2web")

_ASSETS = Path(__file__).parent / "assets"
# Private keys by their usual names are never served.
PRIVATE_SUFFIXES = (".key", "-key.pem", ".p12", ".pfx")
SERVICE_WORKER_NAMES = frozenset({"sw.js", "service-worker.js", "serviceworker.js"})
_MAX_REMEMBERED_PATHS = 8192


@dataclass(frozen=True)
class Lookup:
    """Where a URL path leads: a file or folder listing, a redirect, or an error status."""

    status: int
    path: str = ""
    location: str = ""
    listing: bool = False
    # No symlink on the way: the path may be remembered and checked with one ``lstat``.
    direct: bool = False


class StaticFiles:
    """Serves the files under ``root``.

    ``default_file`` answers for folders; ``spa`` sends it for unknown page URLs too
    (history-API routing); ``listing`` shows folders without an index; ``early_hints``
    sends ``103`` with the page's preload links; ``sw_allowed`` is the
    ``service-worker-allowed`` scope given to service worker scripts; ``html_filter``
    rewrites HTML files before they are served (live reload injects its script).
    """

    def __init__(self, root: str | os.PathLike[str], default_file: str = "index.html", *,
                 spa: bool = False, listing: bool = True, early_hints: bool = False,
                 sw_allowed: str | None = None,
                 html_filter: Callable[[bytes], bytes] | None = None,
                 private: Iterable[str | os.PathLike[str]] = (),
                 versioned_modules: bool = False) -> None:
        self.root = os.path.realpath(root)
        # Files never served even when they lie under the root: the TLS key and
        # certificate, the routes module (``hyper2web serve .`` would expose them).
        self.private = frozenset(os.path.realpath(p) for p in private)
        self.default_file = default_file
        self.spa = spa
        self.listing = listing
        self.early_hints = early_hints
        self.sw_allowed = sw_allowed
        self.cache = FileCache(html_filter=html_filter)
        self.modules = ModuleVersions(self.root) if versioned_modules else None
        # URL path -> the file it led to, and the folders between the root and that file
        self._files: dict[str, tuple[str, tuple[str, ...]]] = {}
        # file -> its latest lstat and when that began (``time.monotonic()``); kept per file,
        # not per URL path, so every path to a file uses its newest stat
        self._stats: dict[str, tuple[os.stat_result, float]] = {}
        self._builtin_404 = (_ASSETS / "404.html").read_bytes()

    # -- URL path -> file ------------------------------------------------------------------

    def lookup(self, raw_path: str) -> Lookup:
        """Map a URL path (percent-encoded, no query) to a file under the root."""
        if not raw_path.startswith("/"):
            return Lookup(400)
        lowered = raw_path.lower()
        if "%2f" in lowered or "%5c" in lowered or "%00" in lowered or "\\" in raw_path:
            return Lookup(400)
        try:
            decoded = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
        except UnicodeDecodeError:
            return Lookup(400)
        if "\x00" in decoded or "\\" in decoded:
            return Lookup(400)
        segments = [s for s in decoded.split("/") if s]
        for index, segment in enumerate(segments):
            if segment in (".", ".."):
                return Lookup(404)
            if segment.startswith(".") and not (index == 0 and segment == ".well-known"):
                return Lookup(404)
        joined = os.path.join(self.root, *segments)
        real = os.path.realpath(joined)
        if not self._inside(real) or real in self.private or real.endswith(PRIVATE_SUFFIXES):
            return Lookup(404)
        if os.path.isdir(real):
            # The index is resolved too: an index.html that is a symlink leading out of the
            # root is no index.
            index_joined = os.path.join(real, self.default_file)
            index_real = os.path.realpath(index_joined)
            has_index = self._inside(index_real) and os.path.isfile(index_real)
            if not has_index and not self.listing:
                return Lookup(404)
            if not decoded.endswith("/"):
                # Built from the segments: ``//docs`` must not become ``//docs/``, which a
                # browser reads as another host.
                clean = "/" + "/".join(segments) + "/" if segments else "/"
                return Lookup(301, location=quote(clean, safe="/:@!$&'()*+,;=-._~"))
            if has_index:
                return Lookup(200, index_real,
                              direct=index_real == index_joined and real == joined)
            return Lookup(200, real, listing=True)
        if os.path.isfile(real):
            # ``/style.css/`` names a folder that does not exist; serving the file there
            # would make the page's relative links resolve against the wrong folder.
            if decoded.endswith("/"):
                return Lookup(404)
            return Lookup(200, real, direct=real == joined)
        return Lookup(404)

    def _inside(self, real: str) -> bool:
        return real == self.root or os.path.commonpath([self.root, real]) == self.root

    def _remembered(self, url_path: str,
                    arrived: float | None) -> tuple[str, os.stat_result] | None:
        """The file a URL path led to before, if it is still a regular file inside the root.

        Only paths without symlinks are remembered, and each answer re-proves that: the file
        and every folder between it and the root are ``lstat``ed, so a file or a folder
        replaced by a symlink (which could lead out of the root) sends the path through
        ``lookup`` again, where it is resolved and checked anew. An ``lstat`` begun after
        the request ``arrived`` is as fresh as one taken now, so requests that came in
        together (a page's assets, a burst on one connection) share those system calls,
        and every request still sees each change made before it came.
        """
        remembered = self._files.get(url_path)
        if remembered is None:
            return None
        real, folders = remembered
        known = self._stats.get(real)
        # Reused only while the cache holds that very version: a newer stat seen by a
        # request on another path to the file must not be undone by an older one.
        if known is not None and arrived is not None and known[1] > arrived \
                and self.cache.holds(real, known[0]):
            return real, known[0]
        taken = time.monotonic()
        st: os.stat_result | None
        try:
            st = os.lstat(real)
            for folder in folders:
                if not stat.S_ISDIR(os.lstat(folder).st_mode):  # a symlink now
                    st = None
                    break
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            self._files.pop(url_path, None)
            self._stats.pop(real, None)
            return None
        self._stats[real] = (st, taken)
        return real, st

    def _module_stat(self, url_path: str, path: str,
                     arrived: float | None) -> os.stat_result | None:
        """A module's ``lstat`` for an import map: checked as ``_remembered`` checks a URL
        served before (the page's own batch of module requests then reuses it)."""
        known = self._remembered(url_path, arrived)
        if known is not None:
            return known[1]
        try:
            return os.lstat(path)
        except OSError:
            return None

    def _remember(self, url_path: str, real: str) -> None:
        if len(self._files) >= _MAX_REMEMBERED_PATHS:
            self._files.clear()
            self._stats.clear()
        folders: list[str] = []
        folder = os.path.dirname(real)
        while folder != self.root and len(folder) > len(self.root):
            folders.append(folder)
            folder = os.path.dirname(folder)
        self._files[url_path] = (real, tuple(reversed(folders)))

    # -- answering -------------------------------------------------------------------------

    async def serve(self, request: Request, response: Response) -> None:
        """Answer a GET or HEAD for a static path; an unreadable file is a 403, not a crash."""
        try:
            await self._serve(request, response)
        except OSError as exc:
            if response.started:
                raise
            log.info("cannot read %s: %s", request.path, exc.strerror or exc)
            response.headers.clear()
            await send_error_page(response, 403 if isinstance(exc, PermissionError) else 404)

    async def _serve(self, request: Request, response: Response) -> None:
        url_path = request.path
        known = self._remembered(url_path, request.arrived)
        if known is not None:
            await self._send_entry(request, response, self.cache.get(*known))
            return
        found = self.lookup(url_path)
        if found.status == 200 and found.listing:
            response.update_headers((("cache-control", "no-cache"),
                                     ("content-type", "text/html; charset=utf-8")))
            await response.send(render_listing(unquote(url_path), found.path, self._inside))
            return
        if found.status == 200:
            try:
                st = os.stat(found.path)
            except OSError:
                found = Lookup(404)
            else:
                if found.direct:
                    self._remember(url_path, found.path)
                await self._send_entry(request, response, self.cache.get(found.path, st))
                return
        if found.status == 301:
            location = found.location
            if request.query_string:
                location += "?" + request.query_string
            response.set_header("location", location)
            await response.send_status_code(301)
        elif found.status == 404:
            if self.spa and self._is_page_request(request):
                index = os.path.realpath(os.path.join(self.root, self.default_file))
                index_st: os.stat_result | None
                try:
                    index_st = os.stat(index) if self._inside(index) else None
                except OSError:
                    index_st = None
                if index_st is not None and stat.S_ISREG(index_st.st_mode):
                    await self._send_entry(request, response,
                                           self.cache.get(index, index_st))
                    return
            await self.send_not_found(response)
        else:
            await send_error_page(response, found.status)

    def _is_page_request(self, request: Request) -> bool:
        """A browser navigation to a client-side route: no extension, prefers HTML."""
        path = request.path
        if path.startswith(RESERVED_PREFIX):
            return False
        last = path.rsplit("/", 1)[-1]
        if "." in last:
            return False
        return prefers_html(request.headers.get("accept", ""))

    async def _send_entry(self, request: Request, response: Response, entry: FileEntry) -> None:
        cache_control = "no-cache"
        if self.modules is not None:
            if entry.content_type.startswith("text/javascript"):
                self.modules.learn(request, entry)
                if self.modules.is_current(request, entry):
                    cache_control = IMMUTABLE
            else:
                page = self.modules.page(request, entry)
                if page is not None:
                    hints = self.early_hints and request.method == "GET"
                    stat_of = functools.partial(self._module_stat, arrived=request.arrived)
                    await send_page(request, response, entry, page,
                                    self.modules.import_map(page, stat_of),
                                    entry.preload_links() if hints else [])
                    return
        headers = request.headers
        ranges = None
        unsatisfiable = False
        range_header = headers.get("range")
        if range_header is not None and if_range_matches(headers.get("if-range"), entry.etag,
                                                          entry.last_modified):
            try:
                ranges = parse_range(range_header, entry.size)
            except Unsatisfiable:
                unsatisfiable = True

        variant = None
        if ranges is None and not unsatisfiable and entry.compressible:
            coding = encoding.choose_coding(headers.get("accept-encoding"))
            if coding is not None:
                before = entry.cost
                variant = entry.variant(coding)
                self.cache.account(entry, before)
        etag = variant.etag if variant is not None else entry.etag
        service_worker = self.sw_allowed and self._is_service_worker(request, entry)
        if service_worker:
            response.set_header("service-worker-allowed", self.sw_allowed)

        if not_modified(headers, etag, entry.mtime):
            await response.send_prepared(304, entry.headers(variant, 304, cache_control), b"")
            return

        fields = entry.headers(variant, 200, cache_control)
        body = variant.body if variant is not None else entry.body
        hints = (self.early_hints and request.method == "GET"
                 and entry.content_type.startswith("text/html"))
        if body is not None and ranges is None and not unsatisfiable and not hints:
            # The common case, a whole cached file: no header is built or checked again.
            await response.send_prepared(200, fields, body)
            return

        response.update_headers(fields)
        if unsatisfiable:  # after the preconditions, which win (RFC 9110 13.2.2)
            response.set_header("content-range", f"bytes */{entry.size}")
            response.headers.pop("content-type", None)
            response.status = 416
            await response.send(b"")
            return

        if hints:
            links = entry.preload_links()
            if links:
                await response.send_informational(103, [("link", ", ".join(links))])

        if ranges is not None:
            await send_ranges(response, entry, ranges)
        elif variant is not None:
            await send_body(response, variant.body, variant.path, 0, variant.size)
        else:
            await send_body(response, entry.body, entry.path, 0, entry.size)

    def _is_service_worker(self, request: Request, entry: FileEntry) -> bool:
        if request.headers.get("service-worker") == "script":
            return True
        return os.path.basename(entry.path) in SERVICE_WORKER_NAMES

    async def send_not_found(self, response: Response) -> None:
        """404 with the site's own ``404.html`` when it has one, else a small built-in page."""
        response.status = 404
        response.set_header("content-type", "text/html; charset=utf-8")
        response.set_header("cache-control", "no-cache")
        own = os.path.realpath(os.path.join(self.root, "404.html"))
        body = self._builtin_404
        if self._inside(own):  # a symlink leading out of the root is not the site's page
            try:
                with open(own, "rb") as fh:
                    body = fh.read()
            except OSError:
                pass
        await response.send(body)

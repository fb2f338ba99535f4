"""Versioned module URLs: a reload after an edit fetches only the modules that changed.

Without help, reloading a page built from hundreds of ES modules costs one revalidation per
module (a 304 each; about a second for 300 in Chromium), and a browser that guesses
freshness instead of asking may run an old module. The server can do better, because it
knows each module's version: a page that loads modules gets an import map, placed before
its first script, that sends each module URL under the root to the same URL with its
version (``/m.js`` -> ``/m.js?h2w=1a2b3c4d5e6f``). Answers to a versioned URL naming the
current version are immutable, so the browser keeps them and asks nothing; an edited module
gets a new version, so a new URL, and is fetched anew. Importers stay as they are: their
specifiers resolve to the unversioned URL, which the map moves.

A version is a digest of the file's ``(mtime_ns, size, inode)``, read by ``stat`` when the
page is served, so a page never names an old version, whatever the watcher saw. A request
naming any other version gets the current file with ``no-cache``. The page's own module
scripts (``<script type=module src>``, ``modulepreload``) are left out of the map: their
URLs are not mapped by the browser, and one module under two URLs would run twice. A page
with an import map of its own is left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable
from urllib.parse import quote, unquote, urljoin

from .files import FileEntry, not_modified
from .http import RESERVED_PREFIX, Request, Response

PARAM = "h2w"
IMMUTABLE = "public, max-age=31536000, immutable"
MAX_MODULES = 5000  # files named in one map; a bigger tree is mapped only in part
MAX_WALKED = 50_000  # files looked at by the first walk
_SKIPPED_FOLDERS = frozenset({"node_modules"})
_SUFFIXES = (".js", ".mjs")

_SCRIPT_TAG = re.compile(rb"<script\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.IGNORECASE)
_LINK_TAG = re.compile(rb"<link\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.IGNORECASE)
_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.DOTALL)
_ATTR = re.compile(rb"""([^\s=>/"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


def version_of(key: tuple[int, int, int]) -> str:
    """The version of a file as its ``(mtime_ns, size, inode)`` tells it."""
    return hashlib.blake2b(repr(key).encode(), digest_size=6).hexdigest()


def requested_version(query: str) -> str | None:
    """The ``h2w`` value of a query string, if it has one."""
    if PARAM not in query:
        return None
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == PARAM:
            return value
    return None


_KNOWN = "known"  # FileEntry.modules: a module version learned
_NO_MODULES = "no modules"  # FileEntry.modules: a page version that loads no module


def _lstat(url_path: str, path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _map_entry(url_path: str, version: str) -> bytes:
    """``"url":"url?h2w=version"``, as JSON inside a script element ("</" written "<\\/")."""
    text = json.dumps(url_path) + ":" + json.dumps(f"{url_path}?{PARAM}={version}")
    return text.replace("</", "<\\/").encode()


class Page:
    """What the map needs to know about one version of an HTML file."""

    __slots__ = ("at", "own")

    def __init__(self, at: int, own: frozenset[str]) -> None:
        self.at = at  # where the map goes: before the first script, or -1 for no map
        self.own = own  # URL paths the page loads as modules itself


def read_page(body: bytes, url_path: str) -> Page:
    """Where a page's map goes and which modules it names itself (-1: no map)."""
    visible = _COMMENT.sub(lambda m: b" " * len(m.group()), body)
    scripts = list(_SCRIPT_TAG.finditer(visible))
    links = [m for m in _LINK_TAG.finditer(visible) if b"modulepreload" in m.group().lower()]
    own: set[str] = set()
    uses_modules = bool(links)
    for match in scripts:
        attrs = _attributes(match.group())
        kind = attrs.get("type", "").strip().lower()
        if kind == "importmap":
            return Page(-1, frozenset())
        if kind == "module":
            uses_modules = True
            if "src" in attrs:
                own.add(_url_path(url_path, attrs["src"]))
    for match in links:
        href = _attributes(match.group()).get("href")
        if href:
            own.add(_url_path(url_path, href))
    if not uses_modules or not scripts:
        return Page(-1, frozenset())
    first = min([scripts[0].start(), *(m.start() for m in links)])
    return Page(first, frozenset(own))


def _attributes(tag: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _ATTR.finditer(tag, tag.find(b" ") + 1 if b" " in tag else len(tag)):
        name = match.group(1).decode("latin-1").lower()
        value = next((v for v in match.group(2, 3, 4) if v is not None), b"")
        found.setdefault(name, value.decode("utf-8", "replace"))
    return found


def _url_path(page: str, reference: str) -> str:
    """The path of ``reference`` resolved against the page, as the map's keys are written."""
    resolved = urljoin("https://h" + page, reference.strip())
    if not resolved.startswith("https://h/"):
        return ""  # another origin
    return quote(unquote(resolved[len("https://h"):].split("?")[0].split("#")[0]), safe="/")


class ModuleVersions:
    """The modules under a root, and the import map that versions them for a page."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._modules: dict[str, str] | None = None  # URL path -> real path, found lazily
        self._pages: dict[tuple[str, tuple[int, int, int], str], Page] = {}
        # URL path -> the lstat key and the map entry made for it
        self._entries: dict[str, tuple[tuple[int, int, int], bytes]] = {}

    # -- which modules exist ---------------------------------------------------------------

    def modules(self) -> dict[str, str]:
        """URL path -> file for the modules under the root, found by one walk on first use."""
        if self._modules is None:
            self._modules = dict(self._walk())
        return self._modules

    def _walk(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        walked = 0
        for folder, subfolders, files in os.walk(self.root):
            walked += len(files)
            if walked > MAX_WALKED:
                break
            subfolders[:] = sorted(name for name in subfolders
                                   if not name.startswith(".") and name not in _SKIPPED_FOLDERS)
            relative = os.path.relpath(folder, self.root)
            prefix = "/" if relative == "." else "/" + relative.replace(os.sep, "/") + "/"
            for name in sorted(files):
                if name.endswith(_SUFFIXES) and not name.startswith("."):
                    found.append((quote(prefix + name, safe="/"), os.path.join(folder, name)))
                    if len(found) >= MAX_MODULES:
                        return found
        return found

    def learn(self, request: Request, entry: FileEntry) -> None:
        """A module served that the walk did not see (made later, or under node_modules)."""
        if entry.modules is _KNOWN:
            return  # this version was served before: nothing new
        entry.modules = _KNOWN
        known = self.modules()
        if request.path not in known and len(known) < MAX_MODULES and \
                entry.path.endswith(_SUFFIXES) and not request.path.startswith(RESERVED_PREFIX):
            known[request.path] = entry.path

    # -- answers ---------------------------------------------------------------------------

    def is_current(self, request: Request, entry: FileEntry) -> bool:
        """True when the request names this very version: the answer may be immutable."""
        wanted = requested_version(request.query_string)
        return wanted is not None and wanted == version_of(entry.key)

    def page(self, request: Request, entry: FileEntry) -> Page | None:
        """The map facts of an HTML entry that loads modules; None for any other."""
        if entry.modules is _NO_MODULES or not entry.filtered or entry.body is None:
            return None
        # Relative module URLs resolve against the page's folder (an SPA route may differ).
        key = (entry.path, entry.key, request.path.rpartition("/")[0])
        found = self._pages.get(key)
        if found is None:
            if len(self._pages) >= 256:
                self._pages.clear()
            found = self._pages[key] = read_page(entry.body, request.path)
        if found.at < 0:
            entry.modules = _NO_MODULES  # asked once per version, whatever its URL
            return None
        return found

    def import_map(self, page: Page,
                   stat_of: Callable[[str, str], os.stat_result | None] = _lstat) -> bytes:
        """The ``<script type=importmap>`` for a page, with every module's version now.

        ``stat_of(url_path, path)`` gives a module's ``lstat`` taken now (the static files
        share theirs: see ``StaticFiles._module_stat``), None when it is gone. The map
        entry of a module whose ``lstat`` matches the last one is reused, so an unchanged
        module costs no digest and no JSON.
        """
        entries: list[bytes] = []
        gone = []
        known = self._entries
        for url_path, path in self.modules().items():
            if url_path in page.own:
                continue
            st = stat_of(url_path, path)
            if st is None:
                gone.append(url_path)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            found = known.get(url_path)
            if found is None or found[0] != key:
                found = known[url_path] = (key, _map_entry(url_path, version_of(key)))
            entries.append(found[1])
        for url_path in gone:
            self.modules().pop(url_path, None)
            known.pop(url_path, None)
        return b'<script type="importmap">{"imports":{' + b",".join(entries) + \
            b"}}</script>"


async def send_page(request: Request, response: Response, entry: FileEntry, page: Page,
                    script: bytes, hints: list[str]) -> None:
    """The page with ``script`` in place; its etag covers the map, so a 304 is never stale.

    Sent whole and uncompressed: the body differs whenever any module changes, and on
    loopback compressing it would cost more than it saves.
    """
    assert entry.body is not None
    digest = hashlib.blake2b(script, digest_size=6).hexdigest()
    etag = f'{entry.etag[:-1]}-{digest}"'
    if not_modified(request.headers, etag, entry.mtime):
        await response.send_prepared(304, _replace(entry.headers(None, 304), etag), b"")
        return
    if hints:
        await response.send_informational(103, [("link", ", ".join(hints))])
    body = entry.body[:page.at] + script + entry.body[page.at:]
    fields = _replace(entry.headers(None), etag, str(len(body)))
    await response.send_prepared(200, fields, body)


def _replace(fields: tuple[tuple[str, str], ...], etag: str,
             length: str | None = None) -> tuple[tuple[str, str], ...]:
    dropped = ("etag", "content-length", "accept-ranges")
    out = [(name, value) for name, value in fields if name not in dropped]
    out.append(("etag", etag))
    if length is not None:
        out.append(("content-length", length))
    return tuple(out)

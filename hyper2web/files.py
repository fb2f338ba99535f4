"""What the server knows about one file version: validators, body, compressed variants.

Entries are keyed by real path and checked with one ``stat`` per request against
``(mtime_ns, size, inode)``: an unchanged file costs no read, no compression and no header
formatting; an edited file gets a new entry, so a new etag, at once.
"""

from __future__ import annotations

import errno
import html
import os
import re
import stat
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import quote

from . import encoding
from .http import SMALL_FILE, Headers
from .mime import content_type_for

# Files up to SMALL_FILE are kept in memory; bigger files stream.
# Compressible files up to this size are compressed (once per version); bigger ones are not.
MAX_COMPRESS = 8 * 1024 * 1024
CACHE_BYTES = 128 * 1024 * 1024

_LINK_TAG = re.compile(rb"""<link\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
# One attribute of a tag: a name, then maybe ``=`` and a quoted or bare value. Matching
# attribute by attribute keeps a quoted value (``title="as=x"``) from passing for another.
_ATTR = re.compile(rb"""([^\s=>/"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_TOKEN_VALUE = re.compile(rb"[\w/+.-]+")
_HREF_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


def open_file(path: str) -> BinaryIO:
    """Open a cached file's path (absolute, with no symlink in it: a ``realpath``) for
    reading, refusing it if it, or a folder on its way, has become a symlink.

    Entries are made for resolved paths (no symlink at the end), and a stat is shared by
    requests that arrived together (``StaticFiles._remembered``): a symlink swapped in
    meanwhile must not be followed out of the root.
    """
    return open(path, "rb", opener=_open_no_symlink)


def _open_no_symlink(path: str, flags: int) -> int:
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))
    # O_NOFOLLOW covers the last name only. Where the system tells which file an open
    # descriptor is, a folder on the way swapped for a symlink is refused as well: the
    # file opened must be the one named.
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}") if _FD_PATHS else path
    except OSError:
        opened = path
    if opened != path and opened != f"{path} (deleted)":  # replaced since: still the one named
        os.close(fd)
        raise OSError(errno.ELOOP, "a folder on the path is now a symlink", path)
    return fd


_FD_PATHS = os.path.isdir("/proc/self/fd")


def http_date(timestamp: float) -> str:
    """An IMF-fixdate (RFC 9110 5.6.7), in English whatever the locale."""
    t = time.gmtime(timestamp)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Variant:
    """One encoding of a file: in memory, or a precompressed sibling on disk."""

    __slots__ = ("coding", "etag", "size", "body", "path")

    def __init__(self, coding: str, etag: str, size: int, body: bytes | None = None,
                 path: str = "") -> None:
        self.coding = coding
        self.etag = etag
        self.size = size
        self.body = body
        self.path = path


class FileEntry:
    """A file version: its type, validators, small body and compressed variants."""

    __slots__ = ("path", "key", "size", "content_type", "etag", "last_modified", "mtime",
                 "body", "compressible", "variants", "_links", "cost", "filtered", "_heads",
                 "modules")

    def __init__(self, path: str, st: os.stat_result) -> None:
        self.path = path
        self.key = (st.st_mtime_ns, st.st_size, st.st_ino)
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.content_type = content_type_for(path)
        # The inode is part of it: an editor that saves by rename can leave size and mtime
        # as they were, and the new file must still not match the old tag.
        self.etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"'
        self.last_modified = http_date(st.st_mtime)
        self.body: bytes | None = None
        self.compressible = (encoding.is_compressible(self.content_type)
                             and not encoding.is_compressed_name(path))
        self.variants: dict[str, Variant | None] = {}
        self._links: list[str] | None = None
        self.cost = 0
        self.filtered = False
        self._heads: dict[tuple[str, bool, str], Headers] = {}
        self.modules: object = None  # what ``modmap`` found out about this version, once

    def load_small(self) -> None:
        """Read the body into memory when the file is small."""
        if self.size <= SMALL_FILE:
            with open_file(self.path) as fh:
                self.body = fh.read(self.size + 1)
            if len(self.body) != self.size:  # changed under us: don't cache a torn read
                self.body = None
            self.cost += len(self.body or b"")

    def apply_html_filter(self, html_filter: Callable[[bytes], bytes]) -> None:
        """Serve ``html_filter(body)`` for an HTML file (live reload adds its script).

        The body then lives in memory whatever its size (up to ``MAX_COMPRESS``), and the etag
        changes, so a copy cached by the browser without the script is never reused.
        """
        if not self.content_type.startswith("text/html") or self.size > MAX_COMPRESS:
            return
        counted = len(self.body) if self.body is not None else 0  # already in self.cost
        if self.body is None:
            with open_file(self.path) as fh:
                self.body = fh.read()
        self.body = html_filter(self.body)
        self.size = len(self.body)
        self.cost += self.size - counted
        self.etag = self.etag[:-1] + '-lr"'
        self.filtered = True

    def variant(self, coding: str) -> Variant | None:
        """The body in ``coding``: a fresh precompressed sibling, else compressed once."""
        if coding in self.variants:
            return self.variants[coding]
        # A precompressed sibling lacks what a filter added to the body.
        found = None if self.filtered else self._sibling(coding)
        found = found or self._compressed(coding)
        self.variants[coding] = found
        if found is not None and found.body is not None:
            self.cost += len(found.body)
        return found

    def _sibling(self, coding: str) -> Variant | None:
        path = self.path + encoding.SIBLING_SUFFIX[coding]
        try:
            st = os.lstat(path)  # a symlink is no sibling: it could lead out of the root
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_mtime_ns < self.key[0]:
            return None  # older than the file it claims to compress: stale
        body = None
        if st.st_size <= SMALL_FILE:
            with open_file(path) as fh:
                body = fh.read()
        tag = f'"{st.st_size:x}-{st.st_mtime_ns:x}-{coding}"'
        return Variant(coding, tag, st.st_size if body is None else len(body), body, path)

    def _compressed(self, coding: str) -> Variant | None:
        if not self.compressible or self.size < encoding.MIN_SIZE or self.size > MAX_COMPRESS:
            return None
        data = self.body
        if data is None:
            with open_file(self.path) as fh:
                data = fh.read()
        packed = encoding.compress(coding, data)
        if len(packed) >= len(data):
            return None
        return Variant(coding, self.etag[:-1] + f'-{coding}"', len(packed), packed)

    def headers(self, variant: Variant | None, status: int = 200,
                cache_control: str = "no-cache") -> Headers:
        """The response header fields for this version (``variant``: its encoding), built once.

        ``status`` 200 gives the full list with the length; 304 the list a revalidation
        answer carries (no type or length, RFC 9110 section 15.4.5). Names are lower-case
        and values free of line breaks, as a ``Response`` requires.
        """
        key = (variant.coding if variant is not None else "", status == 304, cache_control)
        found = self._heads.get(key)
        if found is not None:
            return found
        fields = [] if status == 304 else [("content-type", self.content_type)]
        fields += [("cache-control", cache_control), ("x-content-type-options", "nosniff"),
                   ("last-modified", self.last_modified), ("accept-ranges", "bytes")]
        if self.compressible:
            fields.append(("vary", "accept-encoding"))
        fields.append(("etag", variant.etag if variant is not None else self.etag))
        if status != 304:
            if variant is not None:
                fields.append(("content-encoding", variant.coding))
            size = variant.size if variant is not None else self.size
            fields.append(("content-length", str(size)))
        found = self._heads[key] = tuple(fields)
        return found

    def preload_links(self) -> list[str]:
        """``link`` header values for ``<link rel=preload|modulepreload>`` in an HTML body."""
        if self._links is None:
            self._links = []
            if self.body is not None and self.content_type.startswith("text/html"):
                found = (_link_value(tag.group(0)) for tag in _LINK_TAG.finditer(self.body))
                self._links = [link for link in found if link]
        return self._links


def _link_value(tag: bytes) -> str:
    """The ``link`` header value for one ``<link ...>`` tag, or "" when it preloads nothing."""
    attrs: dict[bytes, bytes] = {}
    for m in _ATTR.finditer(tag, 5, len(tag) - 1):
        value = next((g for g in m.groups()[1:] if g is not None), b"")
        attrs.setdefault(m.group(1).lower(), value)  # the first of a repeated name counts
    rels = attrs.get(b"rel", b"").lower().split()
    if b"modulepreload" in rels:
        rel = "modulepreload"
    elif b"preload" in rels:
        rel = "preload"
    else:
        return ""
    href = html.unescape(attrs.get(b"href", b"").decode("utf-8", "replace")).strip()
    if not href or any(c in href for c in "<>\r\n"):
        return ""
    value = f"<{quote(href, safe=_HREF_SAFE)}>; rel={rel}"
    for name in (b"as", b"type"):
        if name in attrs and _TOKEN_VALUE.fullmatch(attrs[name]):
            value += f"; {name.decode()}={attrs[name].decode()}"
    if b"crossorigin" in attrs:
        mode = attrs[b"crossorigin"].strip().lower()
        value += "; crossorigin=use-credentials" if mode == b"use-credentials" else "; crossorigin"
    return value


class FileCache:
    """A bounded LRU of ``FileEntry`` by real path."""

    def __init__(self, max_bytes: int = CACHE_BYTES,
                 html_filter: Callable[[bytes], bytes] | None = None) -> None:
        self.max_bytes = max_bytes
        self.html_filter = html_filter
        self._entries: OrderedDict[str, FileEntry] = OrderedDict()
        self._bytes = 0

    def get(self, path: str, st: os.stat_result) -> FileEntry:
        """The entry for ``path`` as ``st`` describes it, built anew when the file changed."""
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        entry = self._entries.get(path)
        if entry is not None and entry.key == key:
            self._entries.move_to_end(path)
            return entry
        if entry is not None:
            self._drop(path)
        entry = FileEntry(path, st)
        entry.load_small()
        if self.html_filter is not None:
            entry.apply_html_filter(self.html_filter)
        self._entries[path] = entry
        self._bytes += entry.cost
        self._trim()
        return entry

    def holds(self, path: str, st: os.stat_result) -> bool:
        """True when the entry for ``path`` is the version ``st`` describes."""
        entry = self._entries.get(path)
        return entry is not None and entry.key == (st.st_mtime_ns, st.st_size, st.st_ino)

    def account(self, entry: FileEntry, before: int) -> None:
        """Count bytes an entry gained after it was cached (a new compressed variant)."""
        if self._entries.get(entry.path) is entry:
            self._bytes += entry.cost - before
            self._trim()

    def _drop(self, path: str) -> None:
        entry = self._entries.pop(path)
        self._bytes -= entry.cost

    def _trim(self) -> None:
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            path = next(iter(self._entries))
            self._drop(path)


def not_modified(headers: dict[str, str], etag: str, mtime: float) -> bool:
    """RFC 9110 13.1: ``if-none-match`` (weak comparison) wins over ``if-modified-since``."""
    inm = headers.get("if-none-match")
    if inm is not None:
        if inm.strip() == "*":
            return True
        bare = etag[2:] if etag.startswith("W/") else etag
        for tag in inm.split(","):
            tag = tag.strip()
            if tag.startswith("W/"):
                tag = tag[2:]
            if tag == bare:
                return True
        return False
    ims = headers.get("if-modified-since")
    if ims:
        try:
            from email.utils import parsedate_to_datetime  # rare: loaded when first used

            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(mtime) <= since
    return False

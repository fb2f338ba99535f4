"""Content-coding negotiation and compressors (brotli, zstd, gzip).

The server compresses a compressible file once per version and keeps the result, so the
level can favour size a little over speed without costing every request.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from collections.abc import Callable

# brotli and zstandard load on the first answer they compress: not on every start.
_HAVE_BROTLI = importlib.util.find_spec("brotli") is not None
_HAVE_ZSTD = importlib.util.find_spec("zstandard") is not None

# Below this size compression saves less than the header bytes it costs.
MIN_SIZE = 1024

_COMPRESSIBLE_TYPES = {
    "application/javascript",
    "application/json",
    "application/manifest+json",
    "application/wasm",
    "application/xml",
    "image/svg+xml",
    "image/x-icon",
    "text/javascript",
}


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _brotli(data: bytes) -> bytes:
    import brotli

    return bytes(brotli.compress(data, quality=6))


@functools.cache
def _zstd_compressor() -> Callable[[bytes], bytes]:
    import zstandard

    return zstandard.ZstdCompressor(level=10).compress


def _zstandard(data: bytes) -> bytes:
    return _zstd_compressor()(data)


def _available() -> dict[str, Callable[[bytes], bytes]]:
    codings: dict[str, Callable[[bytes], bytes]] = {}
    if _HAVE_BROTLI:
        codings["br"] = _brotli
    if _HAVE_ZSTD:
        codings["zstd"] = _zstandard
    codings["gzip"] = _gzip
    return codings


# In order of preference when the client rates several codings the same.
COMPRESSORS = _available()
PREFERENCE = tuple(COMPRESSORS)
# Precompressed siblings the server looks for: ``app.js.br``, ``app.js.gz``.
SIBLING_SUFFIX = {"br": ".br", "zstd": ".zst", "gzip": ".gz"}


def is_compressible(content_type: str) -> bool:
    """True for text, scripts, JSON, SVG, wasm, manifests and XML."""
    base = content_type.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in _COMPRESSIBLE_TYPES or base.endswith("+json") \
        or base.endswith("+xml")


# Names of files that are compressed already: ``app.js.gz`` is gzip data whatever its
# inner extension says, and compressing it again only costs time.
_COMPRESSED_SUFFIXES = (".gz", ".br", ".zst", ".bz2", ".xz", ".z", ".svgz", ".tgz", ".zip",
                        ".7z")


def is_compressed_name(name: str) -> bool:
    """True for file names whose last suffix says the data is compressed already."""
    return name.lower().endswith(_COMPRESSED_SUFFIXES)


def parse_qvalues(header: str) -> dict[str, float]:
    """An Accept-style header -> each named item and its q-value, names lowercased.

    ``'br;q=1.0, gzip;q=0.5, *;q=0'`` -> ``{'br': 1.0, 'gzip': 0.5, '*': 0.0}``; a q-value
    that is not a number counts as 0 (refused), and values are kept within 0..1 (RFC 9110
    section 12.4.2). Used for ``accept-encoding`` and ``accept`` alike.
    """
    result: dict[str, float] = {}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        result[name] = q
    return result


def choose_coding(header: str | None, offered: tuple[str, ...] = PREFERENCE) -> str | None:
    """The coding to use for a response, or None for identity.

    Honours q-values (``q=0`` refuses a coding, ``*`` covers unnamed ones); among equal
    q-values the order of ``offered`` decides.
    """
    if not header:
        return None
    accepted = parse_qvalues(header)
    star = accepted.get("*")
    best, best_q = None, 0.0
    for name in offered:
        q = accepted.get(name, accepted.get("x-gzip") if name == "gzip" else None)
        if q is None:
            q = star if star is not None else 0.0
        if q > best_q:
            best, best_q = name, q
    # identity is acceptable unless refused, but a coding the client names wins over it
    # unless identity itself is named (or covered by ``*``) with a higher q-value.
    identity_q = accepted.get("identity", star if star is not None else 0.0)
    if best is not None and best_q >= identity_q:
        return best
    return None


def compress(coding: str, data: bytes) -> bytes:
    """``data`` compressed with ``coding`` (one of ``PREFERENCE``)."""
    return COMPRESSORS[coding](data)

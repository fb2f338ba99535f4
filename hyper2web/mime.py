"""Content types for the files a web developer serves.

The platform's ``mimetypes`` tables differ between machines (``.js`` as
``application/javascript`` on one, missing ``.webmanifest`` on another), and a browser
refuses an ES module or a manifest served with the wrong type. So the web types are fixed
here and the platform table is only a fallback for everything else.
"""

from __future__ import annotations

import mimetypes

_WEB_TYPES: dict[str, str] = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".map": "application/json",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".xml": "application/xml",
    ".csv": "text/csv",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
}

# Types that are text even though they are not text/*: they get a charset.
_TEXTUAL = {
    "application/json",
    "application/manifest+json",
    "application/xml",
    "image/svg+xml",
    "text/javascript",
}


def content_type_for(name: str) -> str:
    """The ``content-type`` header value for a file name, with ``charset=utf-8`` on text."""
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot != -1 else ""
    ctype = _WEB_TYPES.get(ext)
    if ctype is None:
        ctype = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in _TEXTUAL:
        return ctype + "; charset=utf-8"
    return ctype

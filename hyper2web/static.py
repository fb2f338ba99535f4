"""Static files: URL path -> safe file path -> response.

Safety first: a URL path is decoded once, split into segments, and refused (4xx) when any
segment could climb out of the root (``..``), carries a NUL or a backslash, or was an encoded
slash. The joined path is then resolved with ``realpath`` and must still lie under the
root's real path, so a symlink that leads outside is refused too. Dotfiles stay hidden,
except under ``/.well-known/``.
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from .http import Request, Response
from .mime import content_type_for

log = logging.getLogger("hyper2web")

_ASSETS = Path(__file__).parent / "assets"
FILE_HEADERS = (("cache-control", "no-cache"), ("x-content-type-options", "nosniff"))


@dataclass(frozen=True)
class Lookup:
    """Where a URL path leads: a file, a redirect, or an error status."""

    status: int
    path: str = ""
    location: str = ""


class StaticFiles:
    """Serves the files under ``root``; ``default_file`` answers for folders."""

    def __init__(self, root: str | os.PathLike[str], default_file: str = "index.html") -> None:
        self.root = os.path.realpath(root)
        self.default_file = default_file
        self._builtin_404 = (_ASSETS / "404.html").read_bytes()

    def lookup(self, raw_path: str) -> Lookup:
        """Map a URL path (percent-encoded, no query) to a file under the root."""
        if not raw_path.startswith("/"):
            return Lookup(400)
        lowered = raw_path.lower()
        if "%2f" in lowered or "%5c" in lowered or "%00" in lowered or "\\" in raw_path:
            return Lookup(400)
        decoded = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
        if "\x00" in decoded or "\\" in decoded:
            return Lookup(400)
        segments = [s for s in decoded.split("/") if s]
        for index, segment in enumerate(segments):
            if segment in (".", ".."):
                return Lookup(404)
            if segment.startswith(".") and not (index == 0 and segment == ".well-known"):
                return Lookup(404)
        candidate = os.path.join(self.root, *segments)
        real = os.path.realpath(candidate)
        if real != self.root and os.path.commonpath([self.root, real]) != self.root:
            return Lookup(404)
        if os.path.isdir(real):
            index = os.path.join(real, self.default_file)
            if not os.path.isfile(index):
                return Lookup(404)
            if not decoded.endswith("/"):
                return Lookup(301, location=quote(decoded + "/", safe="/:@!$&'()*+,;=-._~"))
            return Lookup(200, index)
        if os.path.isfile(real):
            return Lookup(200, real)
        return Lookup(404)

    async def serve(self, request: Request, response: Response) -> None:
        """Answer a GET or HEAD for a static path."""
        try:
            found = self.lookup(request.path)
        except UnicodeDecodeError:
            found = Lookup(400)
        if found.status == 200:
            if await self._send(response, found.path):
                return
            found = Lookup(404)
        if found.status == 301:
            location = found.location
            if request.query_string:
                location += "?" + request.query_string
            response.status = 301
            response.set_header("location", location)
            await response.send_status_code(301)
        elif found.status == 404:
            await self.send_not_found(response)
        else:
            await send_error_page(response, found.status)

    async def _send(self, response: Response, path: str) -> bool:
        try:
            fh = open(path, "rb")
        except OSError:
            return False
        with fh:
            size = os.fstat(fh.fileno()).st_size
            response.update_headers(FILE_HEADERS)
            response.set_header("content-type", content_type_for(path))
            await response.send_open_file(fh, size)
        return True

    async def send_not_found(self, response: Response) -> None:
        """404 with the site's own ``404.html`` when it has one, else a small built-in page."""
        response.status = 404
        response.set_header("content-type", "text/html; charset=utf-8")
        response.set_header("cache-control", "no-cache")
        own = os.path.join(self.root, "404.html")
        try:
            with open(own, "rb") as fh:
                body = fh.read()
        except OSError:
            body = self._builtin_404
        await response.send(body)


_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Content Too Large", 500: "Internal Server Error"}


async def send_error_page(response: Response, status: int, detail: str = "") -> None:
    """A short HTML page for an error status."""
    reason = _REASONS.get(status, "Error")
    text = f"{status} {reason}"
    extra = f"<p>{html.escape(detail)}</p>" if detail else ""
    body = (f"<!doctype html><meta charset=utf-8><title>{text}</title>"
            f"<h1>{text}</h1>{extra}\n").encode()
    response.status = status
    response.set_header("content-type", "text/html; charset=utf-8")
    await response.send(body)

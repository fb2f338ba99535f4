"""Before measuring: every server answers the same bytes, so no figure comes from a fast
wrong answer. Also reads the etags S9 revalidates with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import benchsite
import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*
from loadgen import h1_get
from scenarios import BY_KEY, ETAGS
from servers import Paths, Server

from tests.server.h2client import HOST, h2_get


def expected_files(paths: Paths) -> dict[str, bytes]:
    """The files every server must answer byte for byte (HTML aside: see page_ok)."""
    public = paths.public
    return {
        benchsite.SCRIPT: (public / "app.js").read_bytes(),
        benchsite.LARGE: (public / "files/large.bin").read_bytes(),
        "/modules/m000.js": (public / "modules/m000.js").read_bytes(),
    }


def page_ok(name: str, got: bytes, page: bytes) -> bool:
    """The page as written; hyper2web injects its live reload client (a script tag) too."""
    return got == page or (name == "hyper2web" and b"__hyper2web__" in got)


def check_server(server: Server, h1: Server, paths: Paths) -> None:
    """HTTP/2 files, page and JSON on ``server``; the script and page over HTTP/1.1 on
    ``h1`` (the same server, or its HTTP/1.1 instance)."""
    for path, body in expected_files(paths).items():
        result = h2_get(server.port, path)
        if result.status != 200 or result.body != body:
            raise SystemExit(f"{server.name}: GET {path} gave {result.status}, "
                             f"{len(result.body)} bytes, not the file's {len(body)}")
    page = (paths.public / "index.html").read_bytes()
    result = h2_get(server.port, benchsite.PAGE)
    if result.status != 200 or not page_ok(server.name, result.body, page):
        raise SystemExit(f"{server.name}: GET {benchsite.PAGE} gave {result.status}, "
                         f"{len(result.body)} bytes")
    check_json(server, paths)
    check_h1(server.name, h1, paths, page)


def check_json(server: Server, paths: Paths) -> None:
    """The same records, as application/json."""
    records = json.loads((paths.site / "records.json").read_text())
    result = h2_get(server.port, benchsite.API)
    if result.status != 200 or json.loads(result.body) != records or \
            not (result.header("content-type") or "").startswith("application/json"):
        raise SystemExit(f"{server.name}: GET {benchsite.API} gave {result.status}, "
                         f"{result.body[:80]!r}")


def check_h1(name: str, h1: Server, paths: Paths, page: bytes) -> None:
    """What S10 asks for, and the script, over HTTP/1.1."""
    script = expected_files(paths)[benchsite.SCRIPT]
    status, got = h1_get(h1.port, benchsite.SCRIPT)
    if status != 200 or got != script:
        raise SystemExit(f"{h1.name}: GET {benchsite.SCRIPT} over HTTP/1.1 gave "
                         f"{status}, {len(got)} bytes")
    status, got = h1_get(h1.port, benchsite.PAGE)
    if status != 200 or not page_ok(name, got, page):
        raise SystemExit(f"{h1.name}: GET {benchsite.PAGE} over HTTP/1.1 gave "
                         f"{status}, {len(got)} bytes")


def check_revalidation(server: Server) -> None:
    """A 304 to the server's own etag; a server S9 skips must really send no etag."""
    etag = etag_of(server.port, benchsite.SCRIPT)
    if server.name in BY_KEY["S9"].skip:
        if etag is not None:
            raise SystemExit(f"{server.name} now sends an etag ({etag}): measure it in S9 "
                             "(take it out of S9's skip)")
        return
    if etag is None:
        raise SystemExit(f"{server.name}: no etag on {benchsite.SCRIPT}")
    ETAGS[server.name] = etag
    status = h2_get(server.port, benchsite.SCRIPT, headers=[("if-none-match", etag)]).status
    if status != 304:
        raise SystemExit(f"{server.name}: if-none-match {etag} gave {status}, not 304")


def etag_of(port: int, path: str) -> str | None:
    """The etag of ``path``, read with ``curl -k -D -`` (or the built-in client)."""
    if shutil.which("curl"):
        done = subprocess.run(["curl", "-k", "-s", "--http2", "-D", "-", "-o", os.devnull,
                               f"https://{HOST}:{port}{path}"],
                              capture_output=True, text=True, timeout=30)
        found = re.search(r"^etag: *(.+?)\r?$", done.stdout, re.M | re.I)
        if found:
            return found.group(1)
    return h2_get(port, path).header("etag")


def check_content(pairs: list[tuple[Server, Server]], paths: Paths) -> None:
    """Every (server, its HTTP/1.1 instance) pair: the same bytes, and revalidation."""
    for server, h1 in pairs:
        check_server(server, h1, paths)
        check_revalidation(server)

"""caddy and granian: how each is configured and started (the others are in servers.py).

Both serve the same site with the same certificate as the other servers, on 127.0.0.1 and
one CPU (``Server.launch`` pins them), with one process or thread serving.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*
from loadgen import h1_get
from servers import PEERS, Server, free_port, venv_script, wait_ready

from tests.server.h2client import HOST

GRANIAN_API = "api"  # the URL folder granian's static mount hands to the ASGI app


def records_json(site: Path) -> str:
    """The records as one compact line, the body nginx and caddy answer verbatim."""
    return json.dumps(json.loads((site / "records.json").read_text()), separators=(",", ":"))


class Caddy(Server):
    """caddy (the Debian package) with GOMAXPROCS=1: file_server over public/, a fixed JSON
    answer for the API route, an access log to a file, and nothing automatic (no admin
    endpoint, no automatic HTTPS, no HTTP/3 listener)."""

    def folder(self) -> Path:
        path = self.paths.scratch / "caddy"
        path.mkdir(exist_ok=True)
        return path

    def config(self, port: int) -> Path:
        records = records_json(self.paths.site)
        assert "`" not in records, "the Caddyfile quotes the JSON body with backticks"
        path = self.folder() / f"Caddyfile-{port}"
        path.write_text(f"""\
{{
  admin off
  auto_https off
  servers {{
    protocols h1 h2
  }}
}}
:{port} {{
  bind {HOST}
  tls {self.paths.cert} {self.paths.key}
  log {{
    output file {self.folder() / f'access-{port}.log'}
  }}
  root * {self.paths.public}
  @api path /api/records
  header @api Content-Type application/json
  respond @api `{records}` 200
  file_server
}}
""")
        return path

    def command(self, port: int) -> list[str]:
        return ["caddy", "run", "--config", str(self.config(port)), "--adapter", "caddyfile"]

    def env(self) -> dict[str, str]:
        # HOME (set by Server.env) is in the scratch folder: caddy's autosave and storage
        # land there.
        return {**super().env(), "GOMAXPROCS": "1"}


class Granian(Server):
    """granian (ASGI, one worker, one runtime thread): public/ served by its Rust static
    mount, ``/api/records`` by ``bench/peers/granian_app.py``.

    granian's static mount answers 404 itself for a file it does not find, never passing the
    request to the app, and a route of ``/`` joins mount and path without a separator (it
    looks for ``publicindex.html``). So the route is empty (every path) and the mount is a
    mirror of public/ made of hard links (the same files), plus ``api``: a symbolic link to
    itself. Looking up ``api/records`` there fails with ELOOP, not "not found", and granian
    hands such a path to the app. See bench/README.md.
    """

    http: str = "2"  # granian's --http

    def static_mount(self) -> Path:
        """The hard-linked mirror of public/, made once and shared by every instance."""
        mirror = self.paths.scratch / "granian-public"
        if not mirror.exists():
            shutil.copytree(self.paths.public, mirror, copy_function=os.link)
            os.symlink(GRANIAN_API, mirror / GRANIAN_API)
        return mirror

    def command(self, port: int) -> list[str]:
        return [venv_script("granian"), "--interface", "asgi", "--http", self.http,
                "--workers", "1", "--runtime-threads", "1",
                "--host", HOST, "--port", str(port),
                "--ssl-certificate", str(self.paths.cert), "--ssl-keyfile", str(self.paths.key),
                "--static-path-mount", str(self.static_mount()), "--static-path-route", "",
                "--working-dir", str(PEERS), "granian_app:app"]

    def env(self) -> dict[str, str]:
        return {**super().env(), "BENCH_SITE": str(self.paths.site)}


class GranianH1(Granian):
    """The same granian with ``--http 1``: ``--http 2`` does not answer HTTP/1.1 (ALPN h2
    only), and S10's target is set against ``granian --http 1``."""

    http = "1"

    def start(self) -> None:
        self.port = free_port()
        self.proc = self.launch(self.port)
        wait_ready(self.proc, self.port, self.name, self.logs, probe=h1_status)


def h1_status(port: int) -> int | None:
    """GET /index.html over HTTP/1.1, for a server that does not speak HTTP/2 (None while
    it is not listening yet)."""
    try:
        return h1_get(port, "/index.html")[0]
    except OSError:
        return None

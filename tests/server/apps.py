"""The site and the App the protocol tests serve: large files and handlers with known
answers (fast, slow, echo, byte patterns, a body hash)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from hyper2web import App
from hyper2web._curio import curio

BIG_SIZE = 50 * 1024 * 1024
MEDIUM_SIZE = 1024 * 1024


def _random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            digest.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


class Site:
    """A served folder: ``index.html``, ``medium.bin`` (1 MiB) and ``big.bin`` (50 MiB)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.big_size = BIG_SIZE
        (root / "index.html").write_text("<!doctype html><title>ok</title>ok")
        self.medium_sha256 = _random_file(root / "medium.bin", MEDIUM_SIZE)
        self.big_sha256 = _random_file(root / "big.bin", BIG_SIZE)
        self.medium = (root / "medium.bin").read_bytes()


def make_app(root: Path, **kwargs: Any) -> App:
    """An App over ``root`` with the handlers the protocol tests need."""
    app = App(root=root, **kwargs)
    app.calls = {"upload": 0}  # type: ignore[attr-defined]

    @app.get("fast")
    async def fast(request, response):
        await response.send(b"fast")

    @app.get("slow")
    async def slow(request, response):
        await curio.sleep(2)
        await response.send(b"slow")

    @app.get("sleep/{ms}")
    async def sleep(request, response):
        await curio.sleep(int(request.para["ms"]) / 1000)
        await response.send(b"slept " + request.para["ms"].encode())

    @app.get("echo/{text}")
    async def echo(request, response):
        await response.send(request.para["text"].encode())

    @app.get("bytes/{n}")
    async def pattern(request, response):
        size = int(request.para["n"])
        await response.send((bytes(range(251)) * (size // 251 + 1))[:size])

    @app.post("sha256")
    async def sha256(request, response):
        app.calls["upload"] += 1  # type: ignore[attr-defined]
        body = request.stream.data
        await response.send_json({"length": len(body),
                                  "sha256": hashlib.sha256(body).hexdigest()})

    return app

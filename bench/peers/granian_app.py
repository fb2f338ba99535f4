"""The granian peer's ASGI app: only ``GET /api/records``; the files are granian's.

granian serves ``public/`` itself (``--static-path-mount``, in Rust) and hands this app
only what the static mount does not answer. ``BENCH_SITE`` names the generated site
folder; ``records.json`` is serialized on each request, as starlette's ``JSONResponse``
and hyper2web's ``response.send_json`` do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SITE = Path(os.environ["BENCH_SITE"])
RECORDS = json.loads((SITE / "records.json").read_text())
JSON_HEADERS = [(b"content-type", b"application/json")]
NOT_FOUND = b"Not Found"


async def app(scope, receive, send):
    """GET /api/records answers the JSON; everything else is a 404."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["method"] == "GET" and scope["path"] == "/api/records":
        body = json.dumps(RECORDS, ensure_ascii=False, separators=(",", ":")).encode()
        headers = JSON_HEADERS
        status = 200
    else:
        body, headers, status = NOT_FOUND, [(b"content-type", b"text/plain")], 404
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive, send):
    """Nothing to set up; answer the start-up and shutdown events so granian goes on."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

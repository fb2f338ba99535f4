"""The hypercorn peer: starlette StaticFiles over the benchmark site, plus one JSON route.

``BENCH_SITE`` names the generated site folder: ``public/`` is served at ``/`` and
``records.json`` is what ``GET /api/records`` returns (serialized on each request, as
hyper2web's ``response.send_json`` does).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

SITE = Path(os.environ["BENCH_SITE"])
RECORDS = json.loads((SITE / "records.json").read_text())


async def records(request):
    return JSONResponse(RECORDS)


app = Starlette(routes=[
    Route("/api/records", records),
    Mount("/", app=StaticFiles(directory=SITE / "public", html=True)),
])

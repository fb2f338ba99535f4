"""The backend the proxy tests run behind hyper2web: a starlette app served by uvicorn,
with JSON, a server-rendered HTML page (from templates/page.html), an event stream, a
WebSocket and an upload endpoint; as a developer's own backend would be."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

TEMPLATES = Path(os.environ.get("BACKEND_TEMPLATES", "templates"))


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "from starlette", "path": request.url.path,
                         "host": request.headers.get("host"),
                         "forwarded_for": request.headers.get("x-forwarded-for")})


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse((TEMPLATES / "page.html").read_text())


async def events(request: Request) -> StreamingResponse:
    async def stream():
        yield b"data: first\n\n"
        await asyncio.sleep(1.5)
        yield b"data: second\n\n"
    return StreamingResponse(stream(), media_type="text/event-stream")


async def upload(request: Request) -> JSONResponse:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": digest.hexdigest()})


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"starlette: {text}")
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[
    Route("/api/hello", hello), Route("/app/page", page), Route("/api/events", events),
    Route("/api/upload", upload, methods=["POST"]), WebSocketRoute("/api/ws", echo),
])

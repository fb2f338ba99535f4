"""API handlers for {{title}}: `hyper2web serve` loads this file and calls setup(app).

    GET  /api/top/{count}     the best scores so far (kept in memory)
    POST /api/scores          {"name": "Ada", "score": 42}
    GET  /api/messages        the latest messages, newest first (kept in SQLite)
    POST /api/messages        {"text": "Hello"}
    WebSocket /api/messages/live
                              the list of messages, sent on connect and after each new one
"""

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from hyper2web import HTTPError

SCORES: list[dict] = []

# -- scores: kept in memory, gone when the server stops ---------------------------------------


async def top(request, response):
    """GET /api/top/{count}: the best scores so far."""
    try:
        count = int(request.para["count"])
    except ValueError:
        raise HTTPError(400, "count must be a number")
    best = sorted(SCORES, key=lambda r: r["score"], reverse=True)[:count]
    await response.send_json(best)


async def add_score(request, response):
    """POST /api/scores with {"name": ..., "score": ...}."""
    record = await request.json()
    if not isinstance(record, dict) or not isinstance(record.get("score"), int):
        raise HTTPError(400, 'send {"name": "...", "score": 123}')
    SCORES.append({"name": str(record.get("name", "anonymous"))[:40], "score": record["score"]})
    await response.send_json({"saved": True}, status=201)


# -- messages: kept in SQLite, and pushed live to every open WebSocket --------------------------
#
# sqlite3 blocks, and every connection shares one event loop: each database call goes
# through `await server.run_sync(...)` (the App's run_sync), which runs it in a worker thread.
# `await server.broadcast(sockets, text)` sends to every open socket at once; a page that
# cannot take it within a second is cut off (it reconnects) instead of delaying the others.

DATABASE = Path(__file__).with_name("data.sqlite3")
MAX_TEXT = 200
SHOWN = 20
server = None  # the App, kept by setup(app) for server.run_sync(...) and server.broadcast(...)
sockets = set()  # the open /api/messages/live WebSockets; setup(app) keeps them in app.state


def connect():
    """A connection to DATABASE, its table created on first use."""
    db = sqlite3.connect(DATABASE)
    db.row_factory = sqlite3.Row  # rows that dict(row) turns into {"id": ..., ...}
    db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
    db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, "
               "text TEXT NOT NULL, created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    return db


def latest(db):
    rows = db.execute("SELECT id, text, created FROM messages ORDER BY id DESC LIMIT ?",
                      (SHOWN,)).fetchall()
    return [dict(row) for row in rows]


def latest_messages():
    with closing(connect()) as db:
        return latest(db)


def insert_message(text):
    """Save a message; returns the latest messages, the new one first."""
    with closing(connect()) as db:
        with db:  # a transaction: committed at the end of the block
            db.execute("INSERT INTO messages (text) VALUES (?)", (text,))
        return latest(db)


async def list_messages(request, response):
    """GET /api/messages"""
    await response.send_json(await server.run_sync(latest_messages))


async def add_message(request, response):
    """POST /api/messages with {"text": "..."}: 201 and the new list, or 400 and why."""
    try:
        data = json.loads(request.body or b"")
    except ValueError:
        data = None
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        await response.send_json({"error": 'send {"text": "..."}, not empty'}, status=400)
        return
    if len(text) > MAX_TEXT:
        await response.send_json({"error": f"text is longer than {MAX_TEXT} characters"},
                                 status=400)
        return
    messages = await server.run_sync(insert_message, text.strip())
    await response.send_json(messages, status=201)
    await server.broadcast(sockets, json.dumps(messages))


async def live_messages(request, ws):
    """WebSocket /api/messages/live: the list now, then again whenever it changes."""
    await ws.accept()
    sockets.add(ws)
    try:
        await ws.send(json.dumps(await server.run_sync(latest_messages)))
        async for _ in ws:  # nothing to read: wait until the page closes the socket
            pass
    finally:
        sockets.discard(ws)


def setup(app):
    global server, sockets
    server = app
    # app.state outlives a reload of this file: the sockets opened before it stay in the
    # set the new handlers send to.
    sockets = app.state.setdefault("live_sockets", sockets)
    app.get("api/top/{count}", top)
    app.post("api/scores", add_score)
    app.get("api/messages", list_messages)
    app.post("api/messages", add_message)
    app.websocket("api/messages/live", live_messages)

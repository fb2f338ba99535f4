"""The Game's API: the top 10 of each level, a record saved at each game over, and the top
10 live over a WebSocket.

    GET  /top10/{level}   the ten best records of a level, best first
    POST /record          {"name": "Ada", "level": 1, "score": 42} -> 201 {"rank": 1, ...}
    WS   /live/{level}    the level's top 10 (JSON) at once, then again after every record

Records are kept in SQLite: records.sqlite3 beside this file, unless the environment
variable HYPER2WEB_GAME_DB names another file. The schema is made on first use, in WAL mode
(readers never wait for the writer); every query is parameterised and runs through
``app.run_sync``, in a thread, so the database never stalls the server. A records.json
left by an older version of the Game (HYPER2WEB_GAME_RECORDS, or beside this file) is
moved into the database once and renamed records.json.migrated.
"""

import datetime as dt
import json
import os
import sqlite3
import threading
from pathlib import Path

from hyper2web import HTTPError

LEVELS = (1, 2, 3)
TOP = 10
KEEP_PER_LEVEL = 100
MAX_NAME = 20
MAX_SCORE = 1_000_000
DB_ENV = "HYPER2WEB_GAME_DB"
RECORDS_ENV = "HYPER2WEB_GAME_RECORDS"  # the JSON file of older versions, migrated once
SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    level INTEGER NOT NULL,
    name TEXT NOT NULL,
    score INTEGER NOT NULL,
    date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_rank ON records (level, score DESC, id);
"""
RANKED = "ORDER BY score DESC, id"
MIGRATING = threading.Lock()  # among equal scores, the earlier record stays ahead


class BadRequest(Exception):
    """The request cannot be answered; the message says why (sent with status 400)."""


def db_path():
    return Path(os.environ.get(DB_ENV) or Path(__file__).with_name("records.sqlite3"))


def json_path():
    return Path(os.environ.get(RECORDS_ENV) or Path(__file__).with_name("records.json"))


def connect():
    """A connection to the records, the schema made and old JSON records moved in."""
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=10)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        migrate_json(db)
    except BaseException:
        db.close()
        raise
    return db


def migrate_json(db):
    """Move the records of a records.json into the database, once (requests run in
    threads: one moves it, the others find it gone)."""
    path = json_path()
    if not path.exists():
        return
    with MIGRATING:
        if path.exists():
            _move_in(db, path)


def _move_in(db, path):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return  # another worker process moved it in
    except (OSError, ValueError) as exc:
        # Never drop a file that cannot be read: the records in it would be lost.
        raise RuntimeError(f"cannot read the records in {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RuntimeError(f"{path} does not hold a JSON object of records by level")
    rows = [(level, str(r["name"]), int(r["score"]), str(r.get("date", "")))
            for level in LEVELS for r in data.get(str(level), [])]
    with db:  # one transaction: all records, or none
        db.executemany("INSERT INTO records (level, name, score, date) VALUES (?, ?, ?, ?)",
                       rows)
    os.replace(path, path.with_name(path.name + ".migrated"))


def top_ten(level):
    db = connect()
    try:
        rows = db.execute(f"SELECT name, score, date FROM records WHERE level = ? {RANKED} "
                          "LIMIT ?", (level, TOP)).fetchall()
    finally:
        db.close()
    return [{"name": name, "score": score, "date": date} for name, score, date in rows]


def save(record, date):
    """Store ``record``; returns its rank when it made the top 10, else None."""
    db = connect()
    try:
        with db:
            new_id = db.execute(
                "INSERT INTO records (level, name, score, date) VALUES (?, ?, ?, ?)",
                (record["level"], record["name"], record["score"], date)).lastrowid
            ahead = db.execute(
                "SELECT COUNT(*) FROM records WHERE level = ? AND "
                "(score > ? OR (score = ? AND id < ?))",
                (record["level"], record["score"], record["score"], new_id)).fetchone()[0]
            db.execute(f"DELETE FROM records WHERE level = ? AND id NOT IN "
                       f"(SELECT id FROM records WHERE level = ? {RANKED} LIMIT ?)",
                       (record["level"], record["level"], KEEP_PER_LEVEL))
    finally:
        db.close()
    return ahead + 1 if ahead < TOP else None


def parse_level(text):
    try:
        level = int(text)
    except ValueError:
        raise BadRequest(f"level must be a number, not {text!r}") from None
    if level not in LEVELS:
        raise BadRequest(f"there is no level {level}: levels are 1, 2 and 3")
    return level


def parse_record(body):
    """A valid record from the request body, or BadRequest saying what is wrong."""
    try:
        data = json.loads(body or b"")
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest('send a JSON object: {"name": "Ada", "level": 1, "score": 42}')
    missing = [key for key in ("name", "level", "score") if key not in data]
    if missing:
        raise BadRequest(f"missing field{'s' * (len(missing) > 1)}: {', '.join(missing)}")
    name, level, score = data["name"], data["level"], data["score"]
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name must be a non-empty string")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise BadRequest(f"name must be at most {MAX_NAME} characters")
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise BadRequest("level must be 1, 2 or 3")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= MAX_SCORE:
        raise BadRequest(f"score must be a whole number from 0 to {MAX_SCORE}")
    return {"name": name, "level": level, "score": score}


def setup(app):
    # The open live sockets of each level, kept in app.state: a reload of this file keeps
    # it, so the handlers of the new file also tell the pages whose socket opened before.
    watchers = app.state.setdefault("game.watchers", {})
    for level in LEVELS:  # a level added by the edit gets its own set
        watchers.setdefault(level, set())

    async def top10(request, response):
        """GET /top10/{level}"""
        try:
            level = parse_level(request.para["level"])
        except BadRequest as exc:
            await response.send_json({"error": str(exc)}, status=400)
            return
        await response.send_json(await app.run_sync(top_ten, level))

    async def add_record(request, response):
        """POST /record"""
        try:
            record = parse_record(request.body)
        except BadRequest as exc:
            await response.send_json({"error": str(exc)}, status=400)
            return
        date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        rank = await app.run_sync(save, record, date)
        saved = {"name": record["name"], "score": record["score"], "date": date,
                 "level": record["level"]}
        await response.send_json({"saved": saved, "rank": rank}, status=201)
        if rank is not None and watchers[record["level"]]:
            await tell(record["level"])

    async def tell(level):
        """Send the level's top 10 to every open page of that level, all at once: a page
        that cannot take it within a second is cut off (it reconnects, or polls) and
        dropped, so no page waits on a slow one."""
        text = json.dumps(await app.run_sync(top_ten, level))
        await app.broadcast(watchers[level], text)

    async def live(request, ws):
        """WS /live/{level}"""
        try:
            level = parse_level(request.para["level"])
        except BadRequest as exc:
            raise HTTPError(400, str(exc)) from None  # refuses the WebSocket
        # Listed before the first top 10 is read: a record saved meanwhile is still heard.
        watchers[level].add(ws)
        try:
            await ws.send(json.dumps(await app.run_sync(top_ten, level)))
            async for _ in ws:  # nothing is expected from the page: wait for its close
                pass
        finally:
            watchers[level].discard(ws)

    app.get("top10/{level}", top10)
    app.post("record", add_record)
    app.websocket("live/{level}", live)

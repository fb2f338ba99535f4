"""The Game's API: the top 10 of each level, and a record saved at each game over.

    GET  /top10/{level}   the ten best records of a level, best first
    POST /record          {"name": "Ada", "level": 1, "score": 42} -> 201 {"rank": 1, ...}

Records are kept in a JSON file, records.json beside this file unless the environment
variable HYPER2WEB_GAME_RECORDS names another one. Each save writes a temporary file in the
same folder and renames it over the old one (``os.replace``), so a crash mid-write never
leaves a half-written file and the records survive a restart.
"""

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

LEVELS = (1, 2, 3)
TOP = 10
KEEP_PER_LEVEL = 100
MAX_NAME = 20
MAX_SCORE = 1_000_000
RECORDS_ENV = "HYPER2WEB_GAME_RECORDS"


class BadRequest(Exception):
    """The request cannot be answered; the message says why (sent with status 400)."""


def records_path():
    return Path(os.environ.get(RECORDS_ENV) or Path(__file__).with_name("records.json"))


def load_records():
    """{level: [records, best first]}; an empty table when the file does not exist yet."""
    path = records_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {level: [] for level in LEVELS}
    except (OSError, ValueError) as exc:
        # Never overwrite a file that cannot be read: the records in it would be lost.
        raise RuntimeError(f"cannot read the records in {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RuntimeError(f"{path} does not hold a JSON object of records by level")
    return {level: list(data.get(str(level), [])) for level in LEVELS}


def save_records(table):
    """Write the table atomically: a temporary file in the same folder, then os.replace."""
    path = records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({str(level): table[level] for level in LEVELS}, indent=1)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


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


async def top10(request, response):
    """GET /top10/{level}"""
    try:
        level = parse_level(request.para["level"])
    except BadRequest as exc:
        await response.send_json({"error": str(exc)}, status=400)
        return
    await response.send_json(load_records()[level][:TOP])


async def add_record(request, response):
    """POST /record"""
    try:
        record = parse_record(request.body)
    except BadRequest as exc:
        await response.send_json({"error": str(exc)}, status=400)
        return
    table = load_records()
    entry = {"name": record["name"], "score": record["score"],
             "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    records = table[record["level"]]
    records.append(entry)
    # A stable sort: among equal scores, the earlier record stays ahead.
    records.sort(key=lambda r: -r["score"])
    del records[KEEP_PER_LEVEL:]
    save_records(table)
    place = next((i for i, r in enumerate(records) if r is entry), None)
    rank = place + 1 if place is not None and place < TOP else None
    await response.send_json({"saved": {**entry, "level": record["level"]}, "rank": rank},
                             status=201)


def setup(app):
    app.get("top10/{level}", top10)
    app.post("record", add_record)

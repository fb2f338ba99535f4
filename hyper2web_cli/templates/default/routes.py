"""API handlers for {{title}}: `hyper2web serve` loads this file and calls setup(app)."""

from hyper2web import HTTPError

SCORES: list[dict] = []


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


def setup(app):
    app.get("api/top/{count}", top)
    app.post("api/scores", add_score)

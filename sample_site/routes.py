"""The Game's API, as in the original tutorial's chapter 3: GET /top10."""

RECORDS = [
    {"name": "Ada", "score": 42},
    {"name": "Linus", "score": 37},
    {"name": "Grace", "score": 31},
]


async def top10_api(request, response):
    await response.send_json(sorted(RECORDS, key=lambda r: r["score"], reverse=True)[:10])


def setup(app):
    app.get("top10", top10_api)

"""API handlers for {{title}}: `hyper2web serve` loads this file and calls setup(app)."""


async def hello(request, response):
    """GET /api/hello: a greeting as JSON."""
    await response.send_json({"message": "Hello from routes.py"})


def setup(app):
    app.get("api/hello", hello)

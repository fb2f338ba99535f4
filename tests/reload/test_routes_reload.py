"""Saving routes.py while ``hyper2web serve`` runs: new handlers, errors, requests in flight.

Every test runs over HTTP/2 and over HTTP/1.1: the event stream and the requests to the
routes both speak the protocol of the test.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reload.livekit import (
    EVENT_TIMEOUT,
    HttpxEventStream,
    edit,
    prime_routes,
    prime_site,
    wait_output,
    wait_until,
)
from tests.support import protocol_client

Serve = Callable[..., Any]
Subscribe = Callable[..., HttpxEventStream]
# Bytecode caches written, as on a user's machine (the test environment may turn them off).
USER_ENV = {"PYTHONDONTWRITEBYTECODE": ""}

SETUP_ROUTES = """\
from pathlib import Path

from hyper2web._curio import curio

import helper

MARKS = Path(__file__).resolve().parent.parent / "marks"


async def api(request, response):
    await response.send_text("api " + helper.MESSAGE)


async def slow(request, response):
    (MARKS / "slow-started").write_text("1")
    await curio.sleep(1)
    await response.send_text("slow v1")


def setup(app):
    app.get("api", api)
    app.get("slow", slow)
"""


@pytest.fixture
def routes_project(project: Path) -> Path:
    (project / "routes.py").write_text(SETUP_ROUTES)
    (project / "helper.py").write_text('MESSAGE = "aaa"\n')
    (project.parent / "marks").mkdir()
    return project


def start(serve: Serve, subscribe: Subscribe, project: Path) -> tuple[Any, HttpxEventStream]:
    server = serve(env=USER_ENV)
    stream = subscribe(server.url)
    assert stream.next().kind == "hello"
    prime_routes(stream, project / "routes.py")
    return server, stream


def text(client: httpx.Client, server: Any, path: str) -> tuple[int, str]:
    response = client.get(server.url + path)
    return response.status_code, response.text


def test_saved_routes_answer_without_a_restart(serve: Serve, subscribe: Subscribe,
                                               client: httpx.Client,
                                               routes_project: Path) -> None:
    server, stream = start(serve, subscribe, routes_project)
    pid = server.proc.pid
    boot_id = subscribe(server.url).next().data["id"]
    assert text(client, server, "/api") == (200, "api aaa")
    assert text(client, server, "/added")[0] == 404

    source = SETUP_ROUTES.replace(
        "def setup(app):\n",
        "async def added(request, response):\n    await response.send_text('added')\n\n\n"
        "def setup(app):\n    app.get('added', added)\n")
    edit(routes_project / "routes.py", source)
    event = stream.next(EVENT_TIMEOUT)
    assert (event.kind, event.data) == ("reload", {"paths": []})
    assert text(client, server, "/added") == (200, "added")
    assert text(client, server, "/api") == (200, "api aaa")
    assert server.proc.poll() is None and server.proc.pid == pid
    assert subscribe(server.url).next().data["id"] == boot_id, "the server restarted"
    wait_output(server, "reloaded")
    assert re.search(r"reloaded \S*routes\.py \(3 handlers\)", "".join(server.output))

    # Removing a handler removes its route.
    edit(routes_project / "routes.py", SETUP_ROUTES.replace('    app.get("api", api)\n', ""))
    assert stream.next(EVENT_TIMEOUT).kind == "reload"
    assert text(client, server, "/api")[0] == 404


def test_helper_module_is_reimported(serve: Serve, subscribe: Subscribe, client: httpx.Client,
                                     routes_project: Path) -> None:
    server, stream = start(serve, subscribe, routes_project)
    for message in ("bbb", "ccc"):
        # The same size each time, saved within a second of the last import.
        edit(routes_project / "helper.py", f'MESSAGE = "{message}"\n')
        event = stream.next(EVENT_TIMEOUT)
        assert (event.kind, event.data) == ("reload", {"paths": []})
        assert text(client, server, "/api") == (200, f"api {message}")


def test_syntax_error_keeps_the_old_routes(serve: Serve, subscribe: Subscribe,
                                           client: httpx.Client, routes_project: Path) -> None:
    server, stream = start(serve, subscribe, routes_project)
    routes = routes_project / "routes.py"
    broken = SETUP_ROUTES.replace("def setup(app):", "def setup(app:")
    line = broken.splitlines().index("def setup(app:") + 1
    edit(routes, broken)
    event = stream.next(EVENT_TIMEOUT)
    assert event.kind == "error"
    message = event.data["message"]
    assert "routes.py" in message and f":{line}:" in message and "SyntaxError" in message
    # The previous routes still answer.
    assert text(client, server, "/api") == (200, "api aaa")

    # One log line with file:line, no traceback.
    wait_output(server, "routes not reloaded")
    logged = [t for t in "".join(server.output).splitlines() if "routes not reloaded" in t]
    assert len(logged) == 1
    assert re.search(rf"{re.escape(str(routes))}:{line}: SyntaxError", logged[0]), logged
    assert "Traceback" not in "".join(server.output)

    # A tab opened now learns about the error in its hello.
    late = subscribe(server.url).next()
    assert late.kind == "hello" and late.data["error"] == message

    # Saving a page while routes.py is broken reloads the page, and keeps the error.
    prime_site(stream, routes_project / "public")
    edit(routes_project / "public" / "hello.txt", "changed\n")
    assert stream.until(lambda e: "/hello.txt" in e.paths).kind == "reload"
    assert subscribe(server.url).next().data.get("error") == message

    # Fixing it reloads every tab and clears the error.
    edit(routes, SETUP_ROUTES)
    event = stream.next(EVENT_TIMEOUT)
    assert (event.kind, event.data) == ("reload", {"paths": []})
    assert "error" not in subscribe(server.url).next().data
    assert len([t for t in "".join(server.output).splitlines()
                if "routes not reloaded" in t]) == 1


@pytest.mark.parametrize(("change", "kind"), [
    (('app.get("api", api)', 'app.get("api", missing_handler)'), "NameError"),
    (("import helper\n", "import helper\nimport no_such_module_xyz\n"), "ModuleNotFoundError"),
    (("def setup(app):", "setup = 3\ndef unused(app):"), "setup is not a function"),
])
def test_runtime_errors_are_shown_too(serve: Serve, subscribe: Subscribe, client: httpx.Client,
                                      routes_project: Path, change: tuple[str, str],
                                      kind: str) -> None:
    server, stream = start(serve, subscribe, routes_project)
    edit(routes_project / "routes.py", SETUP_ROUTES.replace(*change))
    event = stream.next(EVENT_TIMEOUT)
    assert event.kind == "error"
    assert kind in event.data["message"] and "routes.py" in event.data["message"]
    assert text(client, server, "/api") == (200, "api aaa")


def test_error_in_a_helper_names_the_helper(serve: Serve, subscribe: Subscribe,
                                            client: httpx.Client, routes_project: Path) -> None:
    server, stream = start(serve, subscribe, routes_project)
    edit(routes_project / "helper.py", 'MESSAGE = "aaa\n')
    event = stream.next(EVENT_TIMEOUT)
    assert event.kind == "error"
    assert re.search(r"helper\.py:1: SyntaxError", event.data["message"]), event.data
    assert text(client, server, "/api") == (200, "api aaa")
    edit(routes_project / "helper.py", 'MESSAGE = "fix"\n')
    assert stream.next(EVENT_TIMEOUT).data == {"paths": []}
    assert text(client, server, "/api") == (200, "api fix")


def test_request_in_flight_finishes_on_the_old_routes(serve: Serve, subscribe: Subscribe,
                                                      client: httpx.Client, protocol: str,
                                                      routes_project: Path) -> None:
    server, stream = start(serve, subscribe, routes_project)
    marks = routes_project.parent / "marks"
    result: dict[str, Any] = {}

    def request() -> None:
        try:
            # A connection of its own, over the protocol of the test.
            with protocol_client(protocol, timeout=10) as other:
                response = other.get(server.url + "/slow")
            result.update(status=response.status_code, text=response.text)
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)
        result["done"] = time.monotonic()

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    wait_until(lambda: (marks / "slow-started").exists(), 5, "the slow handler never ran")
    edit(routes_project / "routes.py", SETUP_ROUTES.replace(
        '    await curio.sleep(1)\n    await response.send_text("slow v1")',
        '    await response.send_text("slow v2")'))
    assert stream.next(EVENT_TIMEOUT).kind == "reload"
    swapped = time.monotonic()
    assert text(client, server, "/slow") == (200, "slow v2")  # new requests: the new handler
    thread.join(5)
    assert result.get("status") == 200, result
    assert result["text"] == "slow v1"
    assert result["done"] > swapped, "the slow request ended before the swap: nothing tested"


DECORATED = """\
from hyper2web import Routes

routes = Routes()


@routes.get("x")
async def x(request, response):
    await response.send_text("x v1")


@routes.post("/echo")
async def echo(request, response):
    await response.send(request.stream.data)
"""


def test_decorator_form(serve: Serve, subscribe: Subscribe, client: httpx.Client,
                        project: Path) -> None:
    (project / "routes.py").write_text(DECORATED)
    server, stream = start(serve, subscribe, project)
    assert text(client, server, "/x") == (200, "x v1")
    assert client.post(server.url + "/echo", content=b"hi").content == b"hi"
    assert "(2 handlers)" in wait_output(server, "Ctrl+C")

    edit(project / "routes.py", DECORATED.replace("x v1", "x v2") +
         '\n\n@routes.get("y/{name}")\nasync def y(request, response):\n'
         '    await response.send_text("y " + request.para["name"])\n')
    assert stream.next(EVENT_TIMEOUT).data == {"paths": []}
    assert text(client, server, "/x") == (200, "x v2")
    assert text(client, server, "/y/ada") == (200, "y ada")


def test_decorators_with_setup(serve: Serve, subscribe: Subscribe, client: httpx.Client,
                               project: Path) -> None:
    (project / "routes.py").write_text(
        DECORATED + "\n\nasync def z(request, response):\n    await response.send_text('z')\n"
        "\n\ndef setup(app):\n    app.get('z', z)\n")
    server, stream = start(serve, subscribe, project)
    assert text(client, server, "/x") == (200, "x v1")
    assert text(client, server, "/z") == (200, "z")
    assert "(3 handlers)" in wait_output(server, "Ctrl+C")
    # Without the setup function, its route goes away and the decorated ones stay.
    edit(project / "routes.py", DECORATED)
    assert stream.next(EVENT_TIMEOUT).data == {"paths": []}
    assert text(client, server, "/z")[0] == 404
    assert text(client, server, "/x") == (200, "x v1")

"""``app.run_sync``: blocking work in a thread, while the one event loop serves the rest."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hyper2web import App
from tests.server.h2client import H2Client


def test_blocking_work_runs_in_a_thread_while_other_requests_are_answered(
        serve_app: Any, tmp_path: Path) -> None:
    app = App(root=tmp_path)
    release = threading.Event()
    threads: list[str] = []

    def blocking(tag: str) -> str:
        threads.append(threading.current_thread().name)
        release.wait(10)  # blocks its thread until the test lets it go
        return f"done {tag}"

    @app.get("blocking")
    async def slow(request, response):
        await response.send(await app.run_sync(blocking, "x"))

    @app.get("fast")
    async def fast(request, response):
        await response.send(b"fast")

    running = serve_app(app)
    with H2Client(running.port) as client:
        slow_id = client.request("/blocking")
        deadline = time.monotonic() + 10
        while not threads and time.monotonic() < deadline:  # the server runs in this process
            time.sleep(0.01)
        fast_result = client.get("/fast")  # answered while ``blocking`` still waits
        assert fast_result.status == 200 and not client.streams[slow_id].done
        release.set()
        client.read_until(lambda: client.streams[slow_id].ended)
        assert b"".join(client.streams[slow_id].chunks) == b"done x"
    assert threads and threads[0] != threading.main_thread().name


def test_exceptions_come_back_to_the_handler(serve_app: Any, tmp_path: Path) -> None:
    app = App(root=tmp_path)

    def fails() -> None:
        raise ValueError("from the thread")

    @app.get("fails")
    async def handler(request, response):
        with pytest.raises(ValueError, match="from the thread"):
            await app.run_sync(fails)
        await response.send(b"caught")

    running = serve_app(app)
    with H2Client(running.port) as client:
        result = client.get("/fails")
    assert (result.status, b"".join(result.chunks)) == (200, b"caught")

"""Requests run eagerly in the connection's job runner and keep the runner's task as their
own the moment they block. What a handler sees must not change either way (values and
exceptions from the kernel, cancellation, timeouts, wake-ups), and a blocked request never
holds up others."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from hyper2web import App
from hyper2web._curio import curio
from tests.server.h2client import H2Client


@pytest.fixture
def inline_app(serve_app: Any, tmp_path: Path) -> Any:
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>x")
    app = App(root=tmp_path)
    seen: dict[str, Any] = {"cancelled": threading.Event(), "finally": threading.Event(),
                            "counted": 0, "tasks": []}

    @app.get("thread")
    async def thread(request, response):
        # A result comes back from the kernel into a handler that started inline.
        value = await curio.run_in_thread(lambda: 41 + 1)
        await response.send(str(value).encode())

    @app.get("timeout")
    async def timeout(request, response):
        # An exception (the timeout) is thrown back into it, and it can go on afterwards.
        try:
            async with curio.timeout_after(0.05):
                await curio.sleep(5)
        except curio.TaskTimeout:
            await curio.sleep(0.01)
            await response.send(b"timed out, then went on")

    @app.get("split")
    async def split(request, response):
        # Headers leave with the runner's turn, the body from the task the request kept.
        response.set_header("content-type", "text/plain")
        await response.start()
        await curio.sleep(0.05)
        await response.write(b"first ")
        await curio.sleep(0.05)
        await response.write(b"second", end=True)

    @app.get("forever")
    async def forever(request, response):
        await response.start()
        try:
            await curio.sleep(60)
        except curio.CancelledError:
            seen["cancelled"].set()
            raise
        finally:
            seen["finally"].set()

    @app.get("fails-inline")
    async def fails_inline(request, response):
        raise RuntimeError("broken before blocking")

    @app.get("fails-later")
    async def fails_later(request, response):
        await curio.sleep(0.01)
        raise RuntimeError("broken after blocking")

    @app.get("exits")
    async def exits(request, response):
        raise SystemExit(3)  # a handler must not end the connection, let alone the server

    shared = curio.Event()

    @app.get("wait-shared")
    async def wait_shared(request, response):
        await shared.wait()  # checks, then waits: must not straddle the move to a task
        await response.send(b"woken")

    @app.get("set-shared")
    async def set_shared(request, response):
        await shared.set()
        await response.send(b"set")

    @app.get("quick")
    async def quick(request, response):
        await response.send(b"quick")

    @app.get("count")
    async def count(request, response):
        seen["counted"] += 1
        await response.send(b"counted")

    @app.get("whoami")
    async def whoami(request, response):
        task = await curio.current_task()
        await curio.sleep(0.01)
        # Still the same task after blocking, and never the task of another request.
        assert task is await curio.current_task()
        seen["tasks"].append(task)
        await response.send(b"me")

    running = serve_app(app)
    running.seen = seen
    return running


def test_a_value_from_the_kernel_reaches_a_resumed_handler(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        result = client.get("/thread", timeout=5)
        assert (result.status, result.body) == (200, b"42")


def test_a_timeout_is_thrown_into_a_resumed_handler(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        result = client.get("/timeout", timeout=5)
        assert (result.status, result.body) == (200, b"timed out, then went on")


def test_a_response_begun_inline_is_finished_by_its_task(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        result = client.get("/split", timeout=5)
        assert result.status == 200
        assert result.body == b"first second"


def test_a_reset_cancels_a_handler_that_moved_to_a_task(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        sid = client.request("/forever")
        client.read_until(lambda: client.streams[sid].status is not None, timeout=5)
        client.reset(sid)
        assert inline_app.seen["cancelled"].wait(5), "the handler was not cancelled"
        assert inline_app.seen["finally"].is_set()
        # The connection goes on serving.
        assert client.get("/quick", timeout=5).body == b"quick"


def test_errors_before_and_after_blocking_are_500s(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        assert client.get("/fails-inline", timeout=5).status == 500
        assert client.get("/fails-later", timeout=5).status == 500
        assert client.get("/quick", timeout=5).body == b"quick"


def test_blocked_requests_do_not_hold_up_quick_ones_in_the_same_batch(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        # One write carries all the requests, so the server reads them in one batch.
        slow = [client.request("/split", flush=False) for _ in range(10)]
        quick = [client.request("/quick", flush=False) for _ in range(10)]
        static = [client.request("/index.html", flush=False) for _ in range(10)]
        client.flush()
        client.read_until(lambda: all(client.streams[s].done for s in quick + static),
                          timeout=5)
        # Each blocked one takes 0.1 s: none is done when every quick one already is.
        assert not any(client.streams[s].done for s in slow)
        client.read_until(lambda: all(client.streams[s].done for s in slow), timeout=5)
        assert all(client.streams[s].body == b"first second" for s in slow)
        assert all(client.streams[s].body == b"quick" for s in quick)
        assert all(client.streams[s].status == 200 for s in static)


def test_sys_exit_in_a_handler_resets_only_its_stream(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        sid = client.request("/exits")
        client.read_until(lambda: client.streams[sid].done, timeout=5)
        assert client.streams[sid].reset == 2  # INTERNAL_ERROR
        assert client.get("/quick", timeout=5).body == b"quick"


def test_a_wait_and_its_wake_up_in_one_batch_are_not_lost(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        waiter = client.request("/wait-shared", flush=False)
        setter = client.request("/set-shared", flush=False)
        client.flush()  # one write: the server reads both requests in one batch
        client.read_until(lambda: client.streams[waiter].done and client.streams[setter].done,
                          timeout=5)
        assert client.streams[waiter].body == b"woken"
        assert client.streams[setter].body == b"set"


def test_many_waits_and_their_wake_up_in_one_batch_are_not_lost(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        waiters = [client.request("/wait-shared", flush=False) for _ in range(5)]
        quick = client.request("/quick", flush=False)
        setter = client.request("/set-shared", flush=False)
        client.flush()
        client.read_until(lambda: all(client.streams[s].done
                                      for s in [*waiters, quick, setter]), timeout=5)
        assert [client.streams[s].body for s in waiters] == [b"woken"] * 5
        assert client.streams[quick].body == b"quick"


def test_a_request_reset_before_its_handler_ran_never_runs_it(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        sid = client.request("/count", flush=False)
        client.conn.reset_stream(sid, 8)  # CANCEL, in the same write as the request
        client.flush()
        assert client.get("/count", timeout=5).body == b"counted"
        assert inline_app.seen["counted"] == 1
        assert client.wire_body(sid) == b""


def test_handlers_that_block_each_keep_a_task_of_their_own(inline_app: Any) -> None:
    with H2Client(inline_app.port) as client:
        sids = [client.request("/whoami", flush=False) for _ in range(6)]
        client.flush()
        client.read_until(lambda: all(client.streams[s].done for s in sids), timeout=5)
        assert [client.streams[s].body for s in sids] == [b"me"] * 6
    assert len({id(task) for task in inline_app.seen["tasks"]}) == 6


def test_a_connection_error_right_after_a_request_skips_its_handler(inline_app: Any) -> None:
    with H2Client(inline_app.port, strict=False) as client:
        client.request("/count", flush=False)
        # In the same write: a frame header announcing more than SETTINGS_MAX_FRAME_SIZE.
        client.sock.sendall(client.conn.data_to_send() + b"\x00\x40\x01\x06\x00\x00\x00\x00\x00")
        client.read_to_eof(timeout=5)
        assert [f.frame.error_code for f in client.frames_of(0x7)] == [6]  # FRAME_SIZE_ERROR
    assert inline_app.seen["counted"] == 0


def test_requests_after_the_connection_failed_in_the_same_batch_are_dropped(caplog) -> None:
    # A failed write earlier in the batch (the peer is gone) marks the connection closed;
    # the requests after it are dropped quietly, never run, never logged as errors.
    from hyper2web.server.config import ConnectionConfig
    from hyper2web.server.connection import Connection, StreamState
    from hyper2web.server.protocol import H2Protocol

    called = []

    async def handler(request, response):
        called.append(request.path)

    conn = Connection(None, ("127.0.0.1", 1), handler, ConnectionConfig(), H2Protocol)
    state = StreamState(1, {":method": "GET", ":path": "/x", ":scheme": "https"}, "2")
    conn.streams[1] = state
    conn.closed = True
    with caplog.at_level("DEBUG", logger="hyper2web"):
        curio.run(conn._dispatch(state))
    assert called == []
    assert 1 not in conn.streams
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]


def test_a_head_sent_before_a_long_wait_leaves_at_once(inline_app: Any) -> None:
    # As an event stream does: the status goes out, then the handler waits. Nothing else
    # the client sends may be needed to push the head out.
    with H2Client(inline_app.port) as client:
        client.ping()
        client.read_until(lambda: bool(client.ping_acks), timeout=5)  # settings settled
        sid = client.request("/forever")
        client.read_until(lambda: client.streams[sid].status is not None, timeout=3)
        assert client.streams[sid].status == 200
        client.reset(sid)
    assert inline_app.seen["cancelled"].wait(5)

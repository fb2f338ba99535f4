"""Floods cost the attacker, not the server: small, fast versions of the attacks that
``make stress`` runs at full size (rapid reset, empty DATA, buffered bodies)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from h2.errors import ErrorCodes

from hyper2web.server import tuning
from tests.server.apps import make_app
from tests.server.h2client import H2Client, StreamResult, h2_get

GOAWAY = 7


def counting_app(root: Any) -> Any:
    app = make_app(root)
    app.calls["count"] = 0

    @app.get("count")
    async def count(request, response):
        app.calls["count"] += 1
        await response.send(b"counted")

    return app


def reset_burst(client: H2Client, pairs: int, path: str = "/count") -> None:
    """``pairs`` requests, each reset at once, written in one go (CVE-2023-44487)."""
    client.sock.sendall(reset_pairs(client, pairs, path))


def reset_pairs(client: H2Client, pairs: int, path: str = "/count") -> bytes:
    block = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
             (":path", path)]
    data = bytearray()
    for _ in range(pairs):
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(sid, block, end_stream=True)
        client.conn.reset_stream(sid, ErrorCodes.CANCEL)
        data += client.conn.data_to_send()
    return bytes(data)


def assert_calmed(client: H2Client) -> None:
    """GOAWAY ENHANCE_YOUR_CALM, then the connection closes."""
    try:
        client.read_to_eof(timeout=5)
    except OSError:
        pass
    goaways = client.frames_of(GOAWAY)
    assert goaways and goaways[-1].frame.error_code == ErrorCodes.ENHANCE_YOUR_CALM, \
        client.frames[-5:]


def test_a_request_reset_in_its_own_batch_runs_no_handler(serve_app, big_site,
                                                            caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="hyper2web")
    app = counting_app(big_site.root)
    server = serve_app(app)
    with H2Client(server.port, strict=False) as client:
        client.get("/fast")
        reset_burst(client, 40)  # within the budget: the connection goes on
        assert client.get("/count", timeout=5).status == 200
        assert client.goaway is None
    assert app.calls["count"] == 1  # only the request that was not reset
    per_stream = [r for r in caplog.records if "stream" in r.getMessage()
                  and r.name.startswith("hyper2web")]
    assert len(per_stream) <= 1, [r.getMessage() for r in per_stream]


def test_rapid_reset_gets_enhance_your_calm(serve_app, big_site, caplog) -> None:
    caplog.set_level(logging.INFO, logger="hyper2web")
    app = counting_app(big_site.root)
    server = serve_app(app)
    bystander = H2Client(server.port)
    assert bystander.get("/fast").status == 200
    with H2Client(server.port, strict=False, timeout=5) as attacker:
        burst = reset_pairs(attacker, 4000)
        started = time.monotonic()
        try:
            attacker.sock.sendall(burst)
        except OSError:
            pass  # closed on us mid-burst: the point
        assert_calmed(attacker)
        elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed
    # Handlers ran for no reset stream; the others are still served.
    assert app.calls["count"] == 0
    assert bystander.get("/fast").status == 200
    assert h2_get(server.port, "/fast").status == 200
    bystander.close()
    lines = [r.getMessage() for r in caplog.records if "reset" in r.getMessage()]
    assert len(lines) == 1, lines  # one summary line, not one per stream


def test_resets_spread_over_time_are_fine(serve_app, big_site) -> None:
    """A browser cancelling many fetches over a session is no attacker."""
    app = counting_app(big_site.root)
    server = serve_app(app)
    with H2Client(server.port, strict=False) as client:
        for _ in range(3):
            reset_burst(client, 100)
            assert client.get("/fast").status == 200
            time.sleep(1.1)
        assert client.goaway is None


def test_empty_data_frames_keep_nothing(serve_app, big_site) -> None:
    server = serve_app(make_app(big_site.root))
    with H2Client(server.port, strict=False) as client:
        sid = client.request("/sha256", method="POST", end_stream=False)
        for _ in range(500):
            client.conn.send_data(sid, b"", end_stream=False)
        client.flush()
        client.send_body(sid, b"abc")
        result = client.wait(sid)
        assert result.status == 200
        assert b'"length":3' in result.body


@pytest.mark.parametrize("frame", ["empty DATA", "PING", "SETTINGS"])
def test_a_control_frame_flood_gets_enhance_your_calm(serve_app, big_site,
                                                      frame: str) -> None:
    server = serve_app(make_app(big_site.root))
    bystander = H2Client(server.port)
    with H2Client(server.port, strict=False) as client:
        sid = client.request("/sha256", method="POST", end_stream=False)
        data = bytearray()
        for number in range(3000):
            if frame == "empty DATA":
                client.conn.send_data(sid, b"", end_stream=False)
            elif frame == "PING":
                client.conn.ping(number.to_bytes(8, "big"))
            else:
                client.conn.update_settings({0x4: 65535 + number % 2})
            data += client.conn.data_to_send()
        try:
            client.sock.sendall(bytes(data))
        except OSError:
            pass
        assert_calmed(client)
    assert bystander.get("/fast").status == 200
    bystander.close()


@pytest.mark.parametrize("budget", [3 * 1024 * 1024])
def test_the_server_wide_body_budget_refuses_new_bodies(serve_app, big_site,
                                                         budget: int) -> None:
    app = make_app(big_site.root, max_buffered_bodies=budget)
    server = serve_app(app)
    holders = []
    # Each connection holds an unfinished 1 MiB body: three fill the budget.
    for _ in range(3):
        client = H2Client(server.port, strict=False)
        sid = client.request("/sha256", method="POST", end_stream=False)
        client.send_body(sid, b"x" * (1024 * 1024), end_stream=False)
        # The PING's answer comes after the server has taken every DATA frame before it.
        client.ping()
        client.read_until(lambda c=client: bool(c.ping_acks))
        holders.append((client, sid))
    late = H2Client(server.port, strict=False)
    sid = late.request("/sha256", method="POST", end_stream=False)
    late.send_body(sid, b"y" * (512 * 1024), end_stream=False)
    refused = late.wait(sid, timeout=5)
    assert refused.status == 503
    # A request without a body is still served, and the holders may finish.
    assert late.get("/fast").status == 200
    first, first_sid = holders[0]
    first.send_body(first_sid, b"", end_stream=True)
    assert first.wait(first_sid).status == 200
    for client, _ in holders:
        client.close()
    late.close()


def test_malformed_requests_count_as_resets(serve_app, big_site) -> None:
    """A flood of requests the server itself must reset costs the attacker the same."""
    from tests.server.test_h2_errors import (
        END_HEADERS,
        END_STREAM,
        HEADERS,
        header_block,
        raw_frame,
    )

    server = serve_app(make_app(big_site.root))
    bad = header_block([(":method", "GET"), (":scheme", "https"), (":path", "/fast")])
    with H2Client(server.port, strict=False, timeout=5) as attacker:
        attacker.read_until(lambda: any(f.type == 4 for f in attacker.frames))
        burst = b"".join(raw_frame(HEADERS, END_HEADERS | END_STREAM, sid, bad)
                         for sid in range(1, 2 * 400, 2))  # no :authority: malformed
        try:
            attacker.sock.sendall(burst)
        except OSError:
            pass
        assert_calmed(attacker)
    assert h2_get(server.port, "/fast").status == 200



def test_priority_frames_on_an_open_stream_are_a_flood_too(serve_app, big_site) -> None:
    from tests.server.test_h2_errors import raw_frame

    server = serve_app(make_app(big_site.root))
    with H2Client(server.port, strict=False) as client:
        sid = client.request("/sha256", method="POST", end_stream=False)  # stays open
        client.flush()
        frame = raw_frame(0x2, 0, sid, (0).to_bytes(4, "big") + bytes([15]))
        try:
            client.sock.sendall(frame * 3000)
        except OSError:
            pass
        assert_calmed(client)


def test_requests_with_priority_in_their_headers_are_no_flood(serve_app, big_site) -> None:
    """Browsers put priority in every request's HEADERS: that is no idle frame."""
    server = serve_app(make_app(big_site.root))
    with H2Client(server.port, strict=False) as client:
        for _ in range(15):
            ids = []
            for _ in range(100):
                sid = client.conn.get_next_available_stream_id()
                client.conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                                               (":authority", "localhost"),
                                               (":path", "/fast")],
                                         end_stream=True, priority_weight=200)
                client.streams[sid] = StreamResult(sid)
                ids.append(sid)
            client.flush()
            for sid in ids:
                assert client.wait(sid).status == 200
        assert client.goaway is None


@pytest.mark.parametrize("kind", ["WINDOW_UPDATE", "RST_STREAM", "self-dependent PRIORITY"])
def test_frames_on_a_finished_stream_are_a_flood_too(serve_app, big_site, kind: str) -> None:
    """Frames on a stream both sides have ended raise no h2 event; they still count."""
    from tests.server.test_h2_errors import raw_frame

    if not tuning.ENABLED:
        pytest.skip("counted by the tuned connection only; stock h2 reports nothing")
    server = serve_app(make_app(big_site.root))
    bystander = H2Client(server.port)
    with H2Client(server.port, strict=False) as client:
        sid = client.request("/fast")
        assert client.wait(sid).status == 200
        frame = {"WINDOW_UPDATE": raw_frame(0x8, 0, sid, (1).to_bytes(4, "big")),
                 "RST_STREAM": raw_frame(0x3, 0, sid, (8).to_bytes(4, "big")),
                 "self-dependent PRIORITY": raw_frame(0x2, 0, sid,
                                                      sid.to_bytes(4, "big") + bytes([15]))}
        try:
            client.sock.sendall(frame[kind] * 3000)
        except OSError:
            pass
        assert_calmed(client)
    assert bystander.get("/fast").status == 200
    bystander.close()

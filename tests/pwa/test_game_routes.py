"""sample_site/routes.py: GET /top10/{level}, POST /record and the live top 10, kept in
SQLite (and an older version's records.json moved in once)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import websockets

from tests.reload.livekit import wait_output
from tests.support import REPO, copy_sample_site

# Seconds a page may wait for a new record after the POST's answer: the Game promises
# one; a two-core CI machine running the whole suite gets three.
HEARD_WITHIN = 3.0


def load_game_routes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("game_routes_under_test",
                                                  REPO / "sample_site" / "routes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(http1=False, http2=True, verify=False, timeout=10) as c:
        yield c


@pytest.fixture
def game(cli_server: Callable[..., Any], tmp_path: Path) -> Callable[[], Any]:
    """``game()`` starts the sample site (again) with its records in tmp_path."""
    site = copy_sample_site(tmp_path / "sample_site")
    env = {"HYPER2WEB_GAME_DB": str(tmp_path / "data" / "records.sqlite3"),
           "HYPER2WEB_GAME_RECORDS": str(tmp_path / "data" / "records.json")}

    def start() -> Any:
        return cli_server(["serve", "public", "--port", "0", "--no-reload"], cwd=site,
                          env=env)

    return start


def post(client: httpx.Client, server: Any, body: object) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        return client.post(server.url + "/record", content=body,
                           headers={"content-type": "application/json"})
    return client.post(server.url + "/record", json=body)


def test_records_are_saved_ranked_and_survive_a_restart(game: Callable[[], Any],
                                                        client: httpx.Client,
                                                        tmp_path: Path) -> None:
    server = game()
    assert client.get(server.url + "/top10/1").json() == []

    first = post(client, server, {"name": " Ada  Lovelace ", "level": 1, "score": 42})
    assert first.status_code == 201, first.text
    assert first.headers["content-type"] == "application/json"
    body = first.json()
    assert body["rank"] == 1
    assert body["saved"]["name"] == "Ada Lovelace" and body["saved"]["level"] == 1
    for score in (10, 50, 42, 3, 7, 8, 9, 11, 12, 13, 14):
        assert post(client, server, {"name": f"p{score}", "level": 1,
                                     "score": score}).status_code == 201
    low = post(client, server, {"name": "low", "level": 1, "score": 1})
    assert low.json()["rank"] is None  # saved, but not in the top 10
    assert post(client, server, {"name": "Grace", "level": 2, "score": 5}).status_code == 201

    top = client.get(server.url + "/top10/1").json()
    assert len(top) == 10
    assert [r["score"] for r in top] == [50, 42, 42, 14, 13, 12, 11, 10, 9, 8]
    # Equal scores: the earlier record stays ahead.
    assert [r["name"] for r in top[1:3]] == ["Ada Lovelace", "p42"]
    assert set(top[0]) == {"name", "score", "date"}
    assert [r["name"] for r in client.get(server.url + "/top10/2").json()] == ["Grace"]
    assert client.get(server.url + "/top10/3").json() == []

    data = tmp_path / "data"
    assert server.stop() == 0

    again = game()
    assert client.get(again.url + "/top10/1").json() == top
    assert [r["name"] for r in client.get(again.url + "/top10/2").json()] == ["Grace"]
    with sqlite3.connect(data / "records.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        counts = dict(db.execute("SELECT level, COUNT(*) FROM records GROUP BY level"))
    assert counts == {1: 13, 2: 1}


@pytest.mark.parametrize("body, message", [
    (b"{nope", "the body is not valid JSON"),
    (b"", "the body is not valid JSON"),
    ([1, 2], "send a JSON object"),
    ({"level": 1, "score": 3}, "missing field: name"),
    ({"name": "x"}, "missing fields: level, score"),
    ({"name": "", "level": 1, "score": 3}, "name must be a non-empty string"),
    ({"name": 7, "level": 1, "score": 3}, "name must be a non-empty string"),
    ({"name": "x" * 21, "level": 1, "score": 3}, "name must be at most 20 characters"),
    ({"name": "x", "level": 4, "score": 3}, "level must be 1, 2 or 3"),
    ({"name": "x", "level": "1", "score": 3}, "level must be 1, 2 or 3"),
    ({"name": "x", "level": True, "score": 3}, "level must be 1, 2 or 3"),
    ({"name": "x", "level": 1, "score": -1}, "score must be a whole number from 0"),
    ({"name": "x", "level": 1, "score": 2.5}, "score must be a whole number from 0"),
    ({"name": "x", "level": 1, "score": False}, "score must be a whole number from 0"),
    ({"name": "x", "level": 1, "score": 10**9}, "score must be a whole number from 0"),
])
def test_invalid_records_get_400_with_a_message(body: object, message: str) -> None:
    routes = load_game_routes()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(routes.BadRequest, match=message):
        routes.parse_record(raw)


def test_invalid_requests_over_http(game: Callable[[], Any], client: httpx.Client,
                                    tmp_path: Path) -> None:
    server = game()
    for body, message in [(b"{nope", "the body is not valid JSON"),
                          ({"name": "x"}, "missing fields: level, score"),
                          ({"name": "x", "level": 1, "score": "lots"},
                           "score must be a whole number")]:
        response = post(client, server, body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert message in response.json()["error"]
    for level, message in [("abc", "level must be a number, not 'abc'"),
                           ("9", "there is no level 9: levels are 1, 2 and 3")]:
        response = client.get(server.url + f"/top10/{level}")
        assert response.status_code == 400
        assert response.json() == {"error": message}
    assert client.get(server.url + "/record").status_code == 405
    assert not (tmp_path / "data" / "records.sqlite3").exists()  # nothing was saved


def test_a_corrupt_records_file_is_never_overwritten(game: Callable[[], Any],
                                                     client: httpx.Client,
                                                     tmp_path: Path) -> None:
    records = tmp_path / "data" / "records.json"
    records.parent.mkdir()
    records.write_text("{broken")
    server = game()
    assert client.get(server.url + "/top10/1").status_code == 500
    assert post(client, server, {"name": "x", "level": 1, "score": 1}).status_code == 500
    assert records.read_text() == "{broken"
    deadline = time.monotonic() + 5
    while "cannot read the records in" not in "".join(server.output):
        assert time.monotonic() < deadline, "".join(server.output)
        time.sleep(0.05)


def test_an_older_records_json_is_moved_in_once(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    routes = load_game_routes()
    old = tmp_path / "records.json"
    monkeypatch.setenv(routes.DB_ENV, str(tmp_path / "records.sqlite3"))
    monkeypatch.setenv(routes.RECORDS_ENV, str(old))
    entries = [{"name": n, "score": s, "date": "2024-01-01T00:00:00+00:00"}
               for n, s in (("Ada", 5), ("Bob", 9), ("Cy", 5))]
    old.write_text(json.dumps({"1": entries, "2": [], "3": entries[:1]}))
    assert [(r["name"], r["score"]) for r in routes.top_ten(1)] == \
        [("Bob", 9), ("Ada", 5), ("Cy", 5)]
    assert not old.exists() and (tmp_path / "records.json.migrated").exists()
    assert routes.top_ten(3)[0]["name"] == "Ada"
    old.write_text(json.dumps({"1": entries}))  # a second file is moved in once too
    routes.top_ten(1)
    assert len(routes.top_ten(1)) == 6


def test_names_are_stored_as_given_never_as_sql(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    routes = load_game_routes()
    monkeypatch.setenv(routes.DB_ENV, str(tmp_path / "records.sqlite3"))
    monkeypatch.setenv(routes.RECORDS_ENV, str(tmp_path / "none.json"))
    name = "x'); DROP TABLE records;--"
    assert routes.save({"name": name, "level": 2, "score": 3}, "2024-01-01") == 1
    assert routes.top_ten(2)[0]["name"] == name


def test_only_the_best_hundred_of_a_level_are_kept(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    routes = load_game_routes()
    monkeypatch.setenv(routes.DB_ENV, str(tmp_path / "records.sqlite3"))
    monkeypatch.setenv(routes.RECORDS_ENV, str(tmp_path / "none.json"))
    for score in range(105):
        routes.save({"name": f"p{score}", "level": 1, "score": score}, "2024-01-01")
    with sqlite3.connect(tmp_path / "records.sqlite3") as db:
        kept = [row[0] for row in db.execute("SELECT score FROM records ORDER BY score")]
    assert kept == list(range(5, 105))


def test_every_open_page_of_a_level_hears_a_new_record(game: Callable[[], Any],
                                                       client: httpx.Client) -> None:
    server = game()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    base = f"wss://127.0.0.1:{server.url.rsplit(':', 1)[1]}/live"

    async def watch() -> tuple[list[Any], list[Any], list[Any]]:
        async with websockets.connect(f"{base}/1", ssl=ctx) as a, \
                websockets.connect(f"{base}/1", ssl=ctx) as b, \
                websockets.connect(f"{base}/2", ssl=ctx) as other:
            first = [json.loads(await ws.recv()) for ws in (a, b, other)]
            assert first == [[], [], []]
            await asyncio.to_thread(post, client, server,
                                    {"name": "Live", "level": 1, "score": 7})
            # Each page of level 1 hears it over its socket.
            heard = [json.loads(await asyncio.wait_for(ws.recv(), HEARD_WITHIN))
                     for ws in (a, b)]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(other.recv(), 0.5)
            return first, heard, []

    _, heard, _ = asyncio.run(watch())
    assert [[(r["name"], r["score"]) for r in top] for top in heard] == [[("Live", 7)]] * 2
    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(_open(f"{base}/9", ctx))
    assert refused.value.response.status_code == 400


async def _open(url: str, ctx: ssl.SSLContext) -> None:
    async with websockets.connect(url, ssl=ctx):
        pass


@pytest.mark.timeout(60)
def test_open_pages_hear_new_records_after_routes_py_is_reloaded(
        cli_server: Callable[..., Any], client: httpx.Client, tmp_path: Path) -> None:
    """A save of routes.py gives new requests new handlers, while a page's socket stays
    with the handler it opened with: the new POST handler must still tell that page."""
    site = copy_sample_site(tmp_path / "sample_site")
    server = cli_server(["serve", "public", "--port", "0"], cwd=site,
                        env={"HYPER2WEB_GAME_DB": str(tmp_path / "records.sqlite3")})
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    url = f"wss://127.0.0.1:{server.url.rsplit(':', 1)[1]}/live/1"
    routes = site / "routes.py"

    async def watch() -> list[Any]:
        async with websockets.connect(url, ssl=ctx) as before:
            assert json.loads(await before.recv()) == []
            routes.write_text(routes.read_text() + "\n# saved again\n")
            await asyncio.to_thread(wait_output, server, "reloaded")
            async with websockets.connect(url, ssl=ctx) as after:
                assert json.loads(await after.recv()) == []
                posted = await asyncio.to_thread(post, client, server,
                                                 {"name": "Kept", "level": 1, "score": 3})
                assert posted.status_code == 201
                return [json.loads(await asyncio.wait_for(ws.recv(), HEARD_WITHIN))
                        for ws in (before, after)]

    heard = asyncio.run(asyncio.wait_for(watch(), 30))
    assert [[(r["name"], r["score"]) for r in top] for top in heard] == [[("Kept", 3)]] * 2
    assert "Traceback" not in "".join(server.output)


def test_records_live_beside_routes_py_and_are_git_ignored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    routes = load_game_routes()
    monkeypatch.delenv(routes.DB_ENV, raising=False)
    monkeypatch.delenv(routes.RECORDS_ENV, raising=False)
    path = routes.db_path()
    assert path == REPO / "sample_site" / "records.sqlite3"
    for name in ("records.sqlite3", "records.sqlite3-wal", "records.sqlite3-shm",
                 "records.json", "records.json.migrated"):
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path.with_name(name))],
                                 cwd=REPO, check=False)
        assert ignored.returncode == 0, name

"""sample_site/routes.py: GET /top10/{level} and POST /record, kept in a JSON file."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support import REPO, copy_sample_site


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
    env = {"HYPER2WEB_GAME_RECORDS": str(tmp_path / "data" / "records.json")}

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
    assert [p.name for p in data.iterdir()] == ["records.json"]  # no temporary file left
    assert server.stop() == 0

    again = game()
    assert client.get(again.url + "/top10/1").json() == top
    assert [r["name"] for r in client.get(again.url + "/top10/2").json()] == ["Grace"]
    stored = json.loads((data / "records.json").read_text())
    assert set(stored) == {"1", "2", "3"} and len(stored["1"]) == 13


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
    assert not (tmp_path / "data" / "records.json").exists()  # nothing was saved


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


def test_the_file_is_replaced_atomically(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    routes = load_game_routes()
    records = tmp_path / "records.json"
    monkeypatch.setenv(routes.RECORDS_ENV, str(records))
    table = routes.load_records()
    table[1].append({"name": "Ada", "score": 1, "date": "2024-01-01T00:00:00+00:00"})
    routes.save_records(table)
    before = records.read_bytes()
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        # The new content is complete in a temporary file of the same folder before the
        # rename.
        assert Path(src).parent == tmp_path and Path(src).name.startswith(".records.json.")
        assert json.loads(Path(src).read_text())["1"][0]["name"] == "Bob"
        replaced.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(routes.os, "replace", spy)
    table[1][0]["name"] = "Bob"
    routes.save_records(table)
    assert replaced and replaced[0][1] == records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.json"]

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(routes.os, "replace", crash)
    table[1][0]["name"] = "Carol"
    with pytest.raises(OSError, match="disk full"):
        routes.save_records(table)
    assert json.loads(records.read_text())["1"][0]["name"] == "Bob"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.json"]
    assert before != records.read_bytes()


def test_records_live_beside_routes_py_and_are_git_ignored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    routes = load_game_routes()
    monkeypatch.delenv(routes.RECORDS_ENV, raising=False)
    path = routes.records_path()
    assert path == REPO / "sample_site" / "records.json"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO,
                             check=False)
    assert ignored.returncode == 0
    temp = REPO / "sample_site" / ".records.json.abc123.tmp"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(temp)], cwd=REPO, check=False)
    assert ignored.returncode == 0

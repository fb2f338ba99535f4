"""The fast path: small files from memory after one stat, big files streamed, edits seen at
once, odd names, and a remembered path that changes under the server."""

from __future__ import annotations

import builtins
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import hyper2web.files
import hyper2web.http
import hyper2web.static
from tests.server.h2client import H2Client
from tests.static.statictools import curl, h2_request, touch_later

SMALL = b"export const small = 'kept in memory';\n" * 100
BIG = os.urandom(5 * 1024 * 1024)
ODD_NAMES = {
    "été photo.txt": "/%C3%A9t%C3%A9%20photo.txt",
    "dossier é/f ü.txt": "/dossier%20%C3%A9/f%20%C3%BC.txt",
    "a+b.txt": "/a+b.txt",
    "100%.txt": "/100%25.txt",
    "what?.txt": "/what%3F.txt",
    "hash#.txt": "/hash%23.txt",
    "semi;colon.txt": "/semi;colon.txt",
    "日本語.txt": "/%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
}


class Spy:
    """Counts ``open`` in the serving modules and bytes read through the files it opened
    (``read``, or ``os.preadv`` on their descriptors), and ``stat``/``lstat`` calls on
    paths under the served folder."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.root = str(root)
        self.opened: list[str] = []
        self.reads: list[int] = []
        self.stats: list[str] = []
        for module in (hyper2web.files, hyper2web.static, hyper2web.http):
            monkeypatch.setattr(module, "open", self._open, raising=False)
        real_stat, real_lstat = os.stat, os.lstat

        def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            self._note(path)
            return real_stat(path, *args, **kwargs)

        def lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            self._note(path)
            return real_lstat(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", stat)
        monkeypatch.setattr(os, "lstat", lstat)
        self.fds: set[int] = set()
        real_preadv = os.preadv

        def preadv(fd: int, buffers: Any, *args: Any) -> int:
            count = real_preadv(fd, buffers, *args)
            if fd in self.fds:
                self.reads.append(count)
            return count

        monkeypatch.setattr(os, "preadv", preadv)

    def _note(self, path: Any) -> None:
        if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(self.root):
            self.stats.append(os.fspath(path))

    def _open(self, path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        self.opened.append(os.fspath(path))
        fh = builtins.open(path, mode, *args, **kwargs)
        self.fds.add(fh.fileno())
        spy = self

        class Counted:
            def read(self, size: int = -1) -> bytes:
                data = fh.read(size)
                spy.reads.append(len(data))
                return data

            def __getattr__(self, name: str) -> Any:
                return getattr(fh, name)

            def __enter__(self) -> Counted:
                return self

            def __exit__(self, *exc: object) -> None:
                spy.fds.discard(fh.fileno())
                fh.close()

        return Counted()

    def reset(self) -> None:
        self.opened.clear()
        self.reads.clear()
        self.stats.clear()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    (public / "docs").mkdir(parents=True)
    (public / "small.js").write_bytes(SMALL)
    (public / "big.bin").write_bytes(BIG)
    (public / "empty.txt").write_bytes(b"")
    (public / "docs" / "index.html").write_text("<!doctype html><title>Docs</title>")
    for name in ODD_NAMES:
        path = public / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n")
    return public


def test_repeated_requests_cost_one_stat_per_level_and_no_open(serve_app, root, client,
                                                               monkeypatch) -> None:
    spy = Spy(monkeypatch, root)
    server = serve_app(root=root)
    # One stat of the file, and one of each folder between it and the root: a folder
    # swapped for a symlink is seen at once (test_containment.py).
    for path, expected, stats in (("/small.js", SMALL, 1), ("/docs/", None, 2)):
        spy.reset()
        first = client.get(server.url + path)
        assert first.status_code == 200
        assert expected is None or first.content == expected
        assert len(spy.opened) == 1  # read once into memory
        variants = ({}, {"accept-encoding": "br"}, {"range": "bytes=0-9"})
        for headers in variants:  # the first br request also looks for a .br sibling
            client.get(server.url + path, headers=headers)
        for headers in variants:
            for method in ("GET", "HEAD"):
                spy.reset()
                again = client.request(method, server.url + path, headers=headers)
                assert again.status_code in (200, 206)
                assert spy.opened == [], (path, method, headers)
                assert len(spy.stats) == stats, (path, method, headers, spy.stats)


def test_requests_that_arrive_together_share_one_stat(serve_app, root, monkeypatch) -> None:
    server = serve_app(root=root)
    with H2Client(server.port) as client:
        assert client.fetch("/small.js").body == SMALL  # found and remembered
        spy = Spy(monkeypatch, root)
        results = client.batch(["/small.js"] * 8)
        assert [r.status for r in results] == [200] * 8
        assert all(r.body == SMALL for r in results)
        assert len(spy.stats) == 1, spy.stats
        # An edit made before the next request is seen by it.
        (root / "small.js").write_bytes(b"edited")
        touch_later(root / "small.js")
        spy.reset()
        assert [r.body for r in client.batch(["/small.js"] * 2)] == [b"edited"] * 2
        assert len(spy.stats) == 1, spy.stats


def test_a_cached_path_is_not_opened_through_a_symlink(root, tmp_path) -> None:
    # A stat may be shared by requests that arrived together; a symlink swapped in
    # meanwhile is then refused at open, never followed out of the root.
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    path = root / "small.js"
    with hyper2web.files.open_file(str(path)) as fh:
        assert fh.read() == SMALL
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(OSError):
        hyper2web.files.open_file(str(path))


def test_a_shared_stat_never_undoes_a_newer_version(root) -> None:
    # Two URL paths lead to one file. A request that arrived before a stat may share it,
    # but not once a request on the other path has seen (and cached) a newer version.
    static = hyper2web.static.StaticFiles(root)
    real = os.path.realpath(root / "small.js")
    static._remember("/small.js", real)
    before = time.monotonic()
    old = static._remembered("/small.js", arrived=before)
    assert old is not None
    static.cache.get(*old)
    (root / "small.js").write_bytes(b"newer")
    touch_later(root / "small.js")
    static.cache.get(real, os.stat(real))  # the other path saw the edit
    again = static._remembered("/small.js", arrived=before)
    assert again is not None
    assert again[1].st_size == len(b"newer")
    assert static.cache.get(*again).body == b"newer"


def test_cache_entries_are_keyed_by_file_version(serve_app, root, client) -> None:
    server = serve_app(root=root)
    cache = server.app.static.cache
    path = root / "small.js"
    assert client.get(server.url + "/small.js").content == SMALL
    entry = cache._entries[str(path)]
    st = os.stat(path)
    assert entry.key == (st.st_mtime_ns, st.st_size, st.st_ino)
    assert entry.body == SMALL
    client.get(server.url + "/small.js")
    assert cache._entries[str(path)] is entry  # the same version: the same entry
    path.write_bytes(SMALL + b"// more\n")
    touch_later(path)
    assert client.get(server.url + "/small.js").content == SMALL + b"// more\n"
    newer = cache._entries[str(path)]
    assert newer is not entry and newer.body == SMALL + b"// more\n"
    assert len([p for p in cache._entries if p == str(path)]) == 1


def test_big_file_streams_byte_for_byte(serve_app, root, client, monkeypatch) -> None:
    spy = Spy(monkeypatch, root)
    server = serve_app(root=root)
    digest = hashlib.sha256()
    with client.stream("GET", server.url + "/big.bin") as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(BIG))
        for chunk in r.iter_raw():
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(BIG).hexdigest()
    assert sum(spy.reads) == len(BIG)
    assert max(spy.reads) <= 256 * 1024  # read in chunks, never whole
    assert server.app.static.cache._entries[str(root / "big.bin")].body is None
    # the next GET streams again, from the file
    spy.reset()
    assert client.get(server.url + "/big.bin").content == BIG
    assert sum(spy.reads) == len(BIG)


def test_head_never_reads_a_big_file(serve_app, root, client, monkeypatch) -> None:
    spy = Spy(monkeypatch, root)
    server = serve_app(root=root)
    for _ in range(2):
        r = client.head(server.url + "/big.bin", headers={"accept-encoding": "br, gzip"})
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-length"] == str(len(BIG))
    raw = h2_request(server.port, "/big.bin", "HEAD")
    assert raw.chunks == [] and raw.header("content-length") == str(len(BIG))
    assert spy.reads == []


def test_big_file_with_curl_and_raw_h2(serve_app, root, tmp_path) -> None:
    server = serve_app(root=root)
    got = curl(server.url + "/big.bin")
    assert got.version == "2" and got.status == 200 and got.body == BIG
    raw = h2_request(server.port, "/big.bin")
    assert raw.body == BIG and len(raw.chunks) > 1


def test_empty_file(serve_app, root, client) -> None:
    server = serve_app(root=root)
    r = client.get(server.url + "/empty.txt", headers={"accept-encoding": "br, gzip"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == "0"
    assert "content-encoding" not in r.headers
    raw = h2_request(server.port, "/empty.txt")
    assert raw.status == 200 and raw.chunks == [] and raw.ended
    head = h2_request(server.port, "/empty.txt", "HEAD")
    assert head.status == 200 and head.header("content-length") == "0"
    assert curl(server.url + "/empty.txt").body == b""


@pytest.mark.parametrize("name", list(ODD_NAMES))
def test_odd_file_names(serve_app, root, client, name) -> None:
    server = serve_app(root=root)
    expected = f"content of {name}\n".encode()
    encoded = ODD_NAMES[name]
    raw = h2_request(server.port, encoded)
    assert raw.status == 200 and raw.body == expected
    got = curl(server.url + encoded)
    assert got.status == 200 and got.body == expected
    assert client.get(httpx.URL(server.url + encoded)).content == expected
    head = h2_request(server.port, encoded, "HEAD")
    assert head.status == 200 and head.header("content-length") == str(len(expected))


@pytest.mark.parametrize("path", ["/%C3%A9t%C3%A9%2Fphoto.txt", "/%FF.txt", "/a%00b.txt",
                                  "/dossier%20%C3%A9%5Cf%20%C3%BC.txt"])
def test_bad_encodings_are_refused(serve_app, root, path) -> None:
    server = serve_app(root=root)
    assert h2_request(server.port, path).status in (400, 404)


def test_file_edited_deleted_and_replaced_between_requests(serve_app, root, client) -> None:
    server = serve_app(root=root)
    url = server.url + "/small.js"
    path = root / "small.js"
    first = client.get(url)
    assert first.content == SMALL
    path.write_bytes(b"shorter\n")
    second = client.get(url)
    assert second.content == b"shorter\n" and second.headers["etag"] != first.headers["etag"]
    path.unlink()
    assert client.get(url).status_code == 404
    path.write_bytes(b"back again\n")
    assert client.get(url).content == b"back again\n"
    path.unlink()
    path.mkdir()
    r = client.get(url)
    assert r.status_code == 301 and r.headers["location"] == "/small.js/"
    os.rmdir(path)
    # replaced by rename, as editors save: same size, new inode
    tmp = root / "small.js.tmp"
    tmp.write_bytes(b"back again\n")
    before = client.get(url)
    assert before.status_code == 404
    os.replace(tmp, path)
    assert client.get(url).content == b"back again\n"


def test_same_size_edit_within_the_same_mtime(serve_app, root, client) -> None:
    """An editor saving by rename gives a new inode even when size and mtime match."""
    server = serve_app(root=root)
    path = root / "small.js"
    first = client.get(server.url + "/small.js")
    st = os.stat(path)
    other = SMALL.replace(b"kept", b"KEPT")
    tmp = root / "swap.tmp"
    tmp.write_bytes(other)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns and os.stat(path).st_size == st.st_size
    second = client.get(server.url + "/small.js")
    assert second.content == other
    assert second.headers["etag"] != first.headers["etag"]
    stale = client.get(server.url + "/small.js", headers={"if-none-match": first.headers["etag"]})
    assert stale.status_code == 200 and stale.content == other


def test_remembered_path_replaced_by_a_symlink_leading_out(serve_app, root, tmp_path,
                                                            client) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the served folder\n")
    server = serve_app(root=root)
    assert client.get(server.url + "/small.js").content == SMALL
    (root / "small.js").unlink()
    (root / "small.js").symlink_to(secret)
    r = client.get(server.url + "/small.js")
    assert r.status_code == 404
    assert b"outside the served folder" not in r.content


def test_index_symlink_leading_out_is_not_served(serve_app, root, tmp_path, client) -> None:
    secret = tmp_path / "secret.html"
    secret.write_text("outside the served folder\n")
    (root / "index.html").symlink_to(secret)
    (root / "docs" / "index.html").unlink()
    (root / "docs" / "index.html").symlink_to(secret)
    server = serve_app(root=root)
    for path in ("/", "/docs/", "/index.html", "/docs/index.html"):
        r = client.get(server.url + path)
        assert b"outside the served folder" not in r.content, path
    inside = root / "docs" / "real.html"
    inside.write_text("inside\n")
    (root / "docs" / "index.html").unlink()
    (root / "docs" / "index.html").symlink_to(inside)
    assert client.get(server.url + "/docs/").content == b"inside\n"


def test_retargeted_symlinks_serve_the_new_target(serve_app, root, client) -> None:
    """A ``current -> build-1`` link switched to ``build-2`` serves build-2 at once."""
    for build in ("build-1", "build-2"):
        (root / build).mkdir()
        (root / build / "app.js").write_text(f"// {build}\n")
        (root / build / "index.html").write_text(f"<title>{build}</title>")
    (root / "v1.js").write_text("// v1\n")
    (root / "v2.js").write_text("// v2\n")
    (root / "current").symlink_to("build-1")
    (root / "latest.js").symlink_to("v1.js")
    server = serve_app(root=root)
    for _ in range(2):
        assert client.get(server.url + "/current/app.js").text == "// build-1\n"
        assert client.get(server.url + "/current/").text == "<title>build-1</title>"
        assert client.get(server.url + "/latest.js").text == "// v1\n"
    (root / "current").unlink()
    (root / "current").symlink_to("build-2")
    (root / "latest.js").unlink()
    (root / "latest.js").symlink_to("v2.js")
    assert client.get(server.url + "/current/app.js").text == "// build-2\n"
    assert client.get(server.url + "/current/").text == "<title>build-2</title>"
    assert client.get(server.url + "/latest.js").text == "// v2\n"

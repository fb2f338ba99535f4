"""What the watcher reports: ignored files, extra patterns, polling, and its fallbacks."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import watchfiles

from hyper2web_cli import watch
from hyper2web_cli.watch import IgnoreFilter, SiteWatcher, Watcher, polling_reason
from tests.reload.livekit import (
    EVENT_TIMEOUT,
    EventStream,
    edit,
    prime_site,
    save_atomic,
    save_like_vim,
    wait_output,
    wait_until,
)

Serve = Callable[..., Any]
Events = Callable[..., EventStream]

# Files that must never cause a reload: version control, dependencies, caches, editor litter.
IGNORED = [".git/HEAD", ".git/objects/ab/cdef", "node_modules/lib/index.js",
           "__pycache__/m.cpython-312.pyc", ".venv/lib/site.py", "index.html.swp",
           ".index.html.swp", "style.css~", ".#index.html", "4913", "sub/4913",
           "sub/node_modules/x.css"]


def write_all(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def test_default_ignores(serve: Serve, events: Events, project: Path) -> None:
    public = project / "public"
    (public / "sub").mkdir()  # a new folder is a change of its own
    server = serve()
    stream = events(server.port)
    stream.next()
    prime_site(stream, public)
    write_all(public, IGNORED)
    assert stream.silent_for(1.0) == []
    edit(public / "hello.txt", "changed\n")
    event = stream.next(EVENT_TIMEOUT)
    assert (event.kind, event.paths) == ("reload", ["/hello.txt"])


def test_ignore_option_adds_patterns(serve: Serve, events: Events, project: Path) -> None:
    public = project / "public"
    for folder in ("logs", "drafts/x"):
        (public / folder).mkdir(parents=True)
    server = serve("--ignore", "*.log", "--ignore", "drafts/*")
    stream = events(server.port)
    stream.next()
    prime_site(stream, public)
    write_all(public, ["debug.log", "logs/server.log", "drafts/a.html", "drafts/x/b.html",
                       ".git/index"])
    assert stream.silent_for(1.0) == []
    write_all(public, ["notes.txt"])
    event = stream.next(EVENT_TIMEOUT)
    assert event.paths == ["/notes.txt"]


def test_site_inside_an_ignored_folder_name_is_watched(serve: Serve, events: Events,
                                                       tmp_path: Path) -> None:
    # Serving a package's docs from node_modules, or a project kept in a folder named venv.
    project = tmp_path / "node_modules" / "lib" / "venv"
    public = project / "public"
    public.mkdir(parents=True)
    (public / "index.html").write_text("<p>docs</p>")
    server = serve(cwd=project)
    stream = events(server.port)
    stream.next()
    prime_site(stream, public)
    edit(public / "index.html", "<p>docs 2</p>")
    assert stream.next(EVENT_TIMEOUT).kind == "reload"


def test_editor_save_by_rename_still_swaps_css(serve: Serve, events: Events,
                                               project: Path) -> None:
    """vim's default save: probe file 4913, rename to style.css~, write anew, drop the backup."""
    public = project / "public"
    server = serve()
    stream = events(server.port)
    stream.next()
    prime_site(stream, public)
    css = public / "style.css"
    probe = public / "4913"
    probe.write_text("")
    probe.unlink()
    backup = public / "style.css~"
    os.rename(css, backup)
    css.write_text("#t { color: blue; }\n")
    backup.unlink()
    event = stream.next(EVENT_TIMEOUT)
    assert (event.kind, event.data) == ("css", {"paths": ["/style.css"]})


@pytest.mark.parametrize("save", [edit, save_atomic, save_like_vim],
                         ids=["in place", "atomic rename", "backup rename"])
def test_one_save_is_one_reload(serve: Serve, events: Events, project: Path,
                                save: Callable[[Path, str], None]) -> None:
    """The watcher answers within milliseconds, yet a save in several steps is one event."""
    public = project / "public"
    server = serve()
    stream = events(server.port)
    stream.next()
    prime_site(stream, public)
    for number in range(3):
        save(public / "index.html", f"<!doctype html><p>{number}</p>\n")
        event = stream.next(EVENT_TIMEOUT)
        assert event.kind == "reload" and "/index.html" in event.data["paths"]
        assert stream.silent_for(0.5) == []


def test_deleted_stylesheet_reloads(serve: Serve, events: Events, project: Path) -> None:
    server = serve()
    stream = events(server.port)
    stream.next()
    prime_site(stream, project / "public")
    (project / "public" / "style.css").unlink()
    event = stream.next(EVENT_TIMEOUT)
    assert (event.kind, event.paths) == ("reload", ["/style.css"])


def test_poll_option(serve: Serve, events: Events, project: Path) -> None:
    server = serve("--poll")
    stream = events(server.port)
    stream.next()
    prime_site(stream, project / "public")
    edit(project / "public" / "style.css", "#t { color: blue; }\n")
    assert stream.next(EVENT_TIMEOUT).data == {"paths": ["/style.css"]}
    (project / "public" / "new.html").write_text("<p>new</p>")
    assert stream.next(EVENT_TIMEOUT).paths == ["/new.html"]
    write_all(project / "public", ["node_modules/x.js", "a.swp"])
    assert stream.silent_for(1.0) == []


# -- IgnoreFilter ---------------------------------------------------------------------------


@pytest.mark.parametrize("rel", IGNORED + [
    "a/.git/config", "x/__pycache__/y.pyc", "venv/bin/python", ".mypy_cache/x",
    ".pytest_cache/v", "#index.html#", "x.swo", "x.swx", "m.pyc", ".DS_Store", "a.tmp",
    "file.crdownload", "file.part", "node_modules",
])
def test_ignore_filter_defaults(rel: str) -> None:
    base = "/srv/site"
    ignore = IgnoreFilter(bases=[base])
    assert ignore.ignored(f"{base}/{rel}")
    assert not ignore(watchfiles.Change.modified, f"{base}/{rel}")


@pytest.mark.parametrize("rel", [
    "index.html", "style.css", "a/b/c.js", "49130", "x4913", "git/HEAD", "modules/x.js",
    "my.swpx", "tilde~x", "a#b", "pycache/x.py", ".well-known/security.txt", "sw.js",
    ".env.example",
])
def test_ignore_filter_keeps(rel: str) -> None:
    ignore = IgnoreFilter(bases=["/srv/site"])
    assert not ignore.ignored(f"/srv/site/{rel}")
    assert ignore(watchfiles.Change.added, f"/srv/site/{rel}")


def test_ignore_filter_extra_patterns() -> None:
    ignore = IgnoreFilter(["*.log", "drafts/*", "/build/*"], bases=["/srv/site"])
    assert ignore.ignored("/srv/site/debug.log")
    assert ignore.ignored("/srv/site/a/b/debug.log")
    assert ignore.ignored("/srv/site/drafts/post.html")
    assert ignore.ignored("/srv/site/drafts/2024/post.html")
    assert ignore.ignored("/srv/site/build/app.js")
    assert not ignore.ignored("/srv/site/posts/drafts.html")
    assert not ignore.ignored("/srv/site/log.txt")
    assert ignore.patterns[-3:] == ("*.log", "drafts/*", "/build/*")


def test_ignore_filter_judges_paths_below_the_watched_folder() -> None:
    ignore = IgnoreFilter(bases=["/home/me/node_modules/lib/.venv/site~"])
    assert not ignore.ignored("/home/me/node_modules/lib/.venv/site~/index.html")
    assert ignore.ignored("/home/me/node_modules/lib/.venv/site~/.git/HEAD")
    assert ignore.ignored("/home/me/node_modules/lib/.venv/site~/a.swp")
    # An explicit base wins; without any base, the whole path is judged.
    assert not ignore.ignored("/x/node_modules/a.js", base="/x/node_modules")
    assert IgnoreFilter().ignored("/x/node_modules/a.js")


# -- polling_reason -------------------------------------------------------------------------


MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
server:/export /mnt/nfs nfs4 rw,vers=4.2 0 0
//nas/share /mnt/share cifs rw 0 0
/dev/sdb1 /mnt/nfs/local ext4 rw 0 0
drvfs /mnt/c 9p rw 0 0
server:/space /srv/with\\040space nfs rw 0 0
tmpfs /tmp tmpfs rw 0 0
"""


@pytest.fixture
def fake_proc(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    files = {"/proc/mounts": MOUNTS, "/proc/version": "Linux version 6.1.0 (gcc)"}
    monkeypatch.setattr(watch, "_read", lambda path: files.get(path, ""))
    return files


@pytest.mark.parametrize(("path", "reason"), [
    ("/mnt/nfs/site/public", "a nfs4 file system"),
    ("/mnt/nfs", "a nfs4 file system"),
    ("/mnt/share/site", "a cifs file system"),
    ("/mnt/nfs/local/site", None),  # a local disk mounted below the NFS one
    ("/mnt/nfs2/site", None),  # a name that only starts like the mount
    ("/srv/with space/public", "a nfs file system"),
    ("/home/me/site", None),
    ("/tmp/site", None),
    ("/mnt/c/Users/me/site", "a 9p file system"),
])
def test_polling_reason_from_mounts(fake_proc: dict[str, str], path: str,
                                    reason: str | None) -> None:
    assert polling_reason(Path(path)) == reason


def test_polling_reason_on_wsl(fake_proc: dict[str, str]) -> None:
    fake_proc["/proc/version"] = "Linux version 5.15.153.1-microsoft-standard-WSL2"
    fake_proc["/proc/mounts"] = "/dev/sdc / ext4 rw 0 0\n"
    assert polling_reason(Path("/mnt/c/Users/me/site")) == "a Windows drive under WSL"
    assert polling_reason(Path("/home/me/site")) is None


def test_polling_reason_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "_read", lambda path: "")
    assert polling_reason(Path("/mnt/nfs/site")) is None


def test_site_watcher_polls_where_events_do_not_arrive(
        monkeypatch: pytest.MonkeyPatch, fake_proc: dict[str, str], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(watch, "polling_reason", lambda path: "a nfs4 file system")
    app = SimpleNamespace(live_reload=SimpleNamespace(post=lambda *a: None),
                          default_file="index.html")
    with caplog.at_level(logging.INFO, "hyper2web.watch"):
        site = SiteWatcher(app, tmp_path, tmp_path / "routes.py")
    assert [w.poll for w in site.watchers] == [True, True]
    assert "by polling" in caplog.text and "nfs4" in caplog.text
    monkeypatch.setattr(watch, "polling_reason", lambda path: None)
    assert [w.poll for w in SiteWatcher(app, tmp_path, None).watchers] == [False]


# -- running out of inotify watches ------------------------------------------------------------


def test_watch_limit_falls_back_to_polling(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[Any, ...]] = []
    batches: list[Any] = []

    def fake_watch(*paths: Any, **kwargs: Any) -> Any:
        calls.append(paths)
        raise OSError(errno.ENOSPC, "OS file watch limit reached")
        yield  # a generator, as watchfiles.watch is

    monkeypatch.setattr(watchfiles, "watch", fake_watch)
    watcher = Watcher([tmp_path], batches.append)
    with caplog.at_level(logging.INFO, "hyper2web.watch"):
        watcher.start()
        try:
            # Written until seen: the poller's first scan may come after the first write.
            deadline = time.monotonic() + 5
            count = 0
            while not batches and time.monotonic() < deadline:
                count += 1
                (tmp_path / "a.html").write_text("x" * count)
                with contextlib.suppress(AssertionError):
                    wait_until(lambda: batches, 0.5)
            assert batches, "the polling fallback saw nothing in 5 s"
        finally:
            watcher.stop()
    assert calls == [(tmp_path,)]
    assert batches[0] in ([(watchfiles.Change.added, str(tmp_path / "a.html"))],
                          [(watchfiles.Change.modified, str(tmp_path / "a.html"))])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "max_user_watches" in message and "--poll" in message and "Polling" in message


def test_watch_limit_run_once_with_fake_poller(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """Watcher._run itself: the OSError once, then the polling path, then done."""
    used: list[str] = []

    def fake_watch(*paths: Any, **kwargs: Any) -> Any:
        used.append("events")
        raise OSError(errno.ENOSPC, "inotify watch limit reached")
        yield

    def fake_poll(*args: Any, **kwargs: Any) -> Any:
        used.append("poll")
        yield {(watchfiles.Change.modified, str(tmp_path / "x.css"))}

    monkeypatch.setattr(watchfiles, "watch", fake_watch)
    monkeypatch.setattr(watch, "poll_changes", fake_poll)
    seen: list[Any] = []
    Watcher([tmp_path], seen.append)._run()
    assert used == ["events", "poll"]
    assert seen == [[(watchfiles.Change.modified, str(tmp_path / "x.css"))]]


def test_other_os_errors_stop_watching_with_one_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def fake_watch(*paths: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise OSError(errno.EACCES, "Permission denied")
        yield

    monkeypatch.setattr(watchfiles, "watch", fake_watch)
    with caplog.at_level(logging.INFO, "hyper2web.watch"):
        Watcher([tmp_path], lambda changes: None)._run()
    assert calls == [1]
    assert [r.getMessage() for r in caplog.records] == [
        "file watching stopped: [Errno 13] Permission denied"]


def test_poller_sees_quick_saves(tmp_path: Path) -> None:
    """Two saves within one second, even of the same size, are two changes."""
    page = tmp_path / "a.html"
    page.write_text("one")
    (tmp_path / "node_modules").mkdir()
    stop, ready = threading.Event(), threading.Event()
    batches: list[Any] = []

    def run() -> None:
        for batch in watch.poll_changes([tmp_path], IgnoreFilter(bases=[tmp_path]), stop,
                                        interval=0.05, ready=ready):
            batches.append(batch)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(5)
        M = watchfiles.Change.modified
        for text in ("two", "six"):
            count = len(batches)
            page.write_text(text)
            wait_until(lambda c=count: len(batches) > c, 2, f"save of {text!r} missed")
            assert batches[-1] == {(M, str(page))}
        (tmp_path / "node_modules" / "x.js").write_text("x")
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "b.css").write_text("b")
        wait_until(lambda: len(batches) > 2, 2)
        page.unlink()
        wait_until(lambda: len(batches) > 3, 2)
    finally:
        stop.set()
        thread.join(2)
    A, D = watchfiles.Change.added, watchfiles.Change.deleted
    assert batches[2] == {(A, str(tmp_path / "sub")), (A, str(tmp_path / "sub" / "b.css"))}
    assert batches[3] == {(D, str(page))}


def test_a_failing_callback_does_not_stop_the_watcher(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    def fake_watch(*paths: Any, **kwargs: Any) -> Any:
        yield {(watchfiles.Change.modified, str(tmp_path / "a"))}
        yield {(watchfiles.Change.modified, str(tmp_path / "b"))}

    seen: list[str] = []

    def callback(changes: Any) -> None:
        seen.append(changes[0][1])
        if len(seen) == 1:
            raise RuntimeError("boom")

    monkeypatch.setattr(watchfiles, "watch", fake_watch)
    Watcher([tmp_path], callback)._run()
    assert seen == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert "error while handling file changes" in caplog.text


# -- classifying a batch --------------------------------------------------------------------


class Hub:
    def __init__(self) -> None:
        self.posted: list[tuple[str, Any]] = []

    def post(self, kind: str, data: Any = None) -> None:
        self.posted.append((kind, data))


def site_watcher(root: Path) -> tuple[SiteWatcher, Hub]:
    hub = Hub()
    app = SimpleNamespace(live_reload=hub, default_file="index.html")
    return SiteWatcher(app, root, None, poll=True), hub


def test_batches_become_events(tmp_path: Path) -> None:
    root = Path(os.path.realpath(tmp_path))
    (root / "a.css").write_text("")
    (root / "docs").mkdir()
    site, hub = site_watcher(root)
    M, A, D = watchfiles.Change.modified, watchfiles.Change.added, watchfiles.Change.deleted
    site.on_site_changes([(M, str(root / "a.css"))])
    site.on_site_changes([(D, str(root / "a.css")), (A, str(root / "a.css"))])
    site.on_site_changes([(D, str(root / "gone.css"))])
    site.on_site_changes([(M, str(root / "a.css")), (M, str(root / "x.js"))])
    site.on_site_changes([(A, str(root / "docs" / "index.html"))])
    site.on_site_changes([(M, str(root / "my page.html"))])
    site.on_site_changes([(M, "/elsewhere/x.css")])
    site.on_site_changes([(M, str(root))])
    assert hub.posted == [
        ("css", {"paths": ["/a.css"]}),
        ("css", {"paths": ["/a.css"]}),
        ("reload", {"paths": ["/gone.css"]}),
        ("reload", {"paths": ["/a.css", "/x.js"]}),
        ("reload", {"paths": ["/docs/index.html", "/docs/"]}),
        ("reload", {"paths": ["/my%20page.html"]}),
    ]


def test_banner_names_what_is_watched(serve: Serve, project: Path) -> None:
    (project / "routes.py").write_text("def setup(app):\n    pass\n")
    server = serve()
    text = wait_output(server, "Ctrl+C to stop")
    assert "Reload:  watching public and routes" in text

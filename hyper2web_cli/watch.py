"""Watch the served folder and the routes module; turn changes into reload events.

``watchfiles.watch`` runs in background threads (its async API needs anyio, which does not
run on curio); where change events do not arrive (``--poll``, network drives, no inotify
watches left) a scan of the files' stat data replaces it. Each batch of changes is
classified here: stylesheets become ``css`` events, other files ``reload`` events, Python
files beside routes.py a routes re-import. Events go to the ``LiveReload`` hub through its
thread-safe ``post``.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import watchfiles

log = logging.getLogger("hyper2web.watch")

DEFAULT_IGNORES = (".git", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache",
                   ".pytest_cache", ".ruff_cache", "*.swp", "*.swx", "*.swo", "*~", ".#*",
                   "#*#", "4913", "*.pyc", ".DS_Store", "*.tmp", "*.crdownload", "*.part")
# File systems where inotify events do not arrive (network mounts, WSL's Windows drives).
_POLLED_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "drvfs", "vboxsf", "fuse.sshfs",
              "fuse.rclone", "afs", "virtiofs"}
WATCH_LIMIT_HINT = ("the system ran out of file watches; raise the limit with "
                    "'sudo sysctl fs.inotify.max_user_watches=524288' (and add it to "
                    "/etc/sysctl.conf), or use --poll. Polling instead.")

Changes = list[tuple[watchfiles.Change, str]]


class IgnoreFilter:
    """Drops paths with an ignored part: a folder name or a file name glob.

    Paths are judged relative to the watched folders (``bases``): a site served from inside
    a folder that an ignore pattern names (``node_modules/some-lib/docs``) is still watched.
    Patterns with a ``/`` match the whole relative path (``drafts/*``).
    """

    def __init__(self, patterns: Iterable[str] = (), bases: Iterable[Path | str] = ()) -> None:
        self.patterns = tuple(DEFAULT_IGNORES) + tuple(patterns)
        self.bases = tuple(os.fspath(base) for base in bases)

    def ignored(self, path: str, base: str | None = None) -> bool:
        rel = self._relative(path, base)
        parts = Path(rel).parts
        for pattern in self.patterns:
            if any(fnmatch.fnmatch(part, pattern) for part in parts):
                return True
            if "/" in pattern and fnmatch.fnmatch(Path(rel).as_posix(), pattern.strip("/")):
                return True
        return False

    def _relative(self, path: str, base: str | None) -> str:
        for folder in (base,) if base else self.bases:
            rel = os.path.relpath(path, folder)
            if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                return rel
        return path

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return not self.ignored(path)


def polling_reason(path: Path) -> str | None:
    """Why events may not arrive for ``path`` (then we poll), or None."""
    real = os.path.realpath(path)
    if real.startswith("/mnt/") and "microsoft" in _read("/proc/version").lower():
        return "a Windows drive under WSL"
    best, fstype = "", ""
    for line in _read("/proc/mounts").splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, fstype = mount, fields[2]
    if fstype in _POLLED_FS:
        return f"a {fstype} file system"
    return None


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


class Watcher:
    """Watches ``paths`` in a thread and calls ``on_changes`` with each batch."""

    def __init__(self, paths: list[Path], on_changes: Callable[[Changes], None], *,
                 ignore: Iterable[str] = (), poll: bool = False, recursive: bool = True,
                 name: str = "watch") -> None:
        self.paths = paths
        self.on_changes = on_changes
        self.filter = IgnoreFilter(ignore, bases=paths)
        self.poll = poll
        self.recursive = recursive
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hyper2web-{name}",
                                        daemon=True)
        self.ready = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        poll = self.poll
        while not self._stop.is_set():
            try:
                self._watch(poll)
                return
            except OSError as exc:
                if poll or not _is_watch_limit(exc):
                    log.error("file watching stopped: %s", exc)
                    return
                log.error("hyper2web: %s", WATCH_LIMIT_HINT)
                self.ready.clear()
                poll = True

    def _watch(self, poll: bool) -> None:
        if poll:
            batches: Iterable[set[tuple[watchfiles.Change, str]]] = poll_changes(
                self.paths, self.filter, self._stop, recursive=self.recursive,
                ready=self.ready)
        else:
            self.ready.set()
            batches = watchfiles.watch(
                *self.paths, watch_filter=self.filter, stop_event=self._stop,
                poll_delay_ms=100, debounce=400, step=4, recursive=self.recursive,
                raise_interrupt=False, ignore_permission_denied=True)
        for changes in batches:
            try:
                self.on_changes(sorted(changes, key=lambda c: c[1]))
            except Exception:
                log.exception("error while handling file changes")


# Polling compares (mtime in nanoseconds, size, inode) of every file. The poll watcher of
# watchfiles compares whole-second mtimes only, and misses a second save within a second.
POLL_INTERVAL = 0.2
Snapshot = dict[str, tuple[int, int, int] | None]


def poll_changes(paths: Iterable[Path], watch_filter: IgnoreFilter, stop: threading.Event,
                 *, recursive: bool = True, interval: float = POLL_INTERVAL,
                 ready: threading.Event | None = None,
                 ) -> Iterator[set[tuple[watchfiles.Change, str]]]:
    """Batches of changes, as ``watchfiles.watch`` yields them, found by scanning."""
    paths = list(paths)
    before = _snapshot(paths, watch_filter, recursive)
    if ready is not None:
        ready.set()
    while not stop.wait(interval):
        after = _snapshot(paths, watch_filter, recursive)
        changes = {(watchfiles.Change.deleted, path) for path in before.keys() - after.keys()}
        for path, key in after.items():
            if path not in before:
                changes.add((watchfiles.Change.added, path))
            elif key != before[path]:
                changes.add((watchfiles.Change.modified, path))
        before = after
        if changes:
            yield changes


def _snapshot(paths: list[Path], watch_filter: IgnoreFilter, recursive: bool) -> Snapshot:
    """Every file (with its stat key) and folder (None) below ``paths`` not ignored."""
    found: Snapshot = {}

    def add(path: str) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        found[path] = (st.st_mtime_ns, st.st_size, st.st_ino)

    for base in paths:
        base_path = os.fspath(base)
        if not recursive:
            try:
                entries = list(os.scandir(base_path))
            except OSError:
                continue
            for entry in entries:
                if not watch_filter.ignored(entry.path):
                    if entry.is_dir():
                        found[entry.path] = None
                    else:
                        add(entry.path)
            continue
        for folder, dirs, files in os.walk(base_path):
            dirs[:] = [d for d in dirs if not watch_filter.ignored(os.path.join(folder, d))]
            for name in dirs:
                found[os.path.join(folder, name)] = None
            for name in files:
                path = os.path.join(folder, name)
                if not watch_filter.ignored(path):
                    add(path)
    return found


def _is_watch_limit(exc: OSError) -> bool:
    text = str(exc).lower()
    return exc.errno == errno.ENOSPC or "watch limit" in text or "no space left" in text


class SiteWatcher:
    """Watches a served folder and its routes module for one ``App`` with live reload."""

    def __init__(self, app: Any, root: Path, routes_path: Path | None, *,
                 ignore: Iterable[str] = (), poll: bool = False,
                 extra: Iterable[Path] = ()) -> None:
        self.app = app
        self.hub = app.live_reload
        self.root = Path(os.path.realpath(root))
        self.routes_path = routes_path
        self.default_file = app.default_file
        if not poll:
            reason = polling_reason(self.root)
            if reason:
                log.info("watching %s by polling: it is on %s, where change events do not "
                         "arrive", root, reason)
                poll = True
        self.watchers = [Watcher([self.root], self.on_site_changes, ignore=ignore, poll=poll,
                                 name="watch-site")]
        for path in extra:
            # Folders outside the served root (a backend's templates, with --proxy): any
            # change reloads the pages, which the backend renders.
            self.watchers.append(Watcher([Path(os.path.realpath(path))], self.on_extra_changes,
                                         ignore=ignore, poll=poll, name="watch-extra"))
        if routes_path is not None:
            folder = Path(os.path.realpath(routes_path)).parent
            self.watchers.append(Watcher([folder], self.on_routes_changes, ignore=ignore,
                                         poll=poll, recursive=False, name="watch-routes"))

    def start(self) -> None:
        for watcher in self.watchers:
            watcher.start()

    def stop(self) -> None:
        for watcher in self.watchers:
            watcher.stop()

    def on_site_changes(self, changes: Changes) -> None:
        """Stylesheets edited in place are swapped; anything else reloads the page."""
        paths: list[str] = []
        only_css = True
        for change, path in changes:
            try:
                rel = Path(path).relative_to(self.root).as_posix()
            except ValueError:
                continue
            if rel == ".":
                continue  # the folder itself (polling sees its mtime change): not a page
            url = "/" + quote(rel)
            urls = [url]
            if rel == self.default_file or rel.endswith("/" + self.default_file):
                urls.append(url[: -len(quote(self.default_file))])
            paths.extend(u for u in urls if u not in paths)
            # Editors that save by renaming (vim's backup, for one) report a stylesheet as
            # deleted and added in one batch: it is deleted only if it is gone now.
            gone = change == watchfiles.Change.deleted and not os.path.exists(path)
            if not path.endswith(".css") or gone:
                only_css = False
        if paths:
            self.hub.post("css" if only_css else "reload", {"paths": paths})

    def on_extra_changes(self, changes: Changes) -> None:
        if changes:
            self.hub.post("reload", {"paths": []})

    def on_routes_changes(self, changes: Changes) -> None:
        if any(path.endswith(".py") for _, path in changes):
            self.reload_routes()

    def reload_routes(self) -> None:
        """Re-import routes.py; on failure keep the old routes and show the error."""
        from .routes import RoutesError, load_routes

        assert self.routes_path is not None
        try:
            load_routes(self.routes_path, self.app)
        except RoutesError as exc:
            log.error("hyper2web: routes not reloaded: %s", exc)
            self.hub.post("error", {"message": f"routes not reloaded: {exc}"})
            return
        count = len(self.app.router.routes)
        log.info("reloaded %s (%d handler%s)", self.routes_path, count, "" if count == 1 else "s")
        self.hub.post("reload", {"paths": []})

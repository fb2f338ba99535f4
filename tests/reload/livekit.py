"""Helpers of the live reload tests: event stream readers, file edits, bounded waits.

Every wait here has a deadline; nothing sleeps and then asserts.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.server.h2client import H2Client
from tests.support import need_tool  # noqa: F401 - used by the tests here

EVENTS_PATH = "/__hyper2web__/events"
CLIENT_PATH = "/__hyper2web__/client.js"
SCRIPT_TAG = '<script src="/__hyper2web__/client.js" defer></script>'
# A saved file must show up as an event within this time.
EVENT_TIMEOUT = 2.0


def wait_until(condition: Callable[[], Any], timeout: float, message: str = "",
               interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_output(server: Any, text: str, timeout: float = 5) -> str:
    """What a ``cli_server`` printed, once ``text`` is among it."""
    wait_until(lambda: text in "".join(server.output), timeout,
               f"{text!r} not printed within {timeout} s:\n" + "".join(server.output))
    return "".join(server.output)


def edit(path: Path, text: str) -> None:
    """Rewrite a file in place, as most editors save."""
    path.write_text(text)


# -- event streams --------------------------------------------------------------------------


@dataclass
class Event:
    kind: str
    data: Any
    raw: str = ""

    @property
    def paths(self) -> list[str]:
        return list(self.data.get("paths", [])) if isinstance(self.data, dict) else []


@dataclass
class SSEParser:
    """``text/event-stream`` blocks to events; comments and retry kept apart."""

    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    _buffer: str = ""

    def feed(self, data: bytes | str) -> None:
        self._buffer += data.decode() if isinstance(data, bytes) else data
        while "\n\n" in self._buffer:
            block, self._buffer = self._buffer.split("\n\n", 1)
            self._block(block)

    def _block(self, block: str) -> None:
        kind, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)
        if data:
            text = "\n".join(data)
            self.events.append(Event(kind, json.loads(text), block))


class EventStream:
    """``GET /__hyper2web__/events`` on a raw HTTP/2 connection (a new one, or ``client``)."""

    def __init__(self, port: int, client: H2Client | None = None) -> None:
        self.client = client if client is not None else H2Client(port, timeout=10)
        self.sid = self.client.request(EVENTS_PATH)
        self.parser = SSEParser()
        self._fed = 0
        self._taken = 0

    @property
    def stream(self) -> Any:
        return self.client.streams[self.sid]

    def _parse(self) -> int:
        chunks = self.stream.chunks
        for chunk in chunks[self._fed:]:
            self.parser.feed(chunk)
        self._fed = len(chunks)
        return len(self.parser.events) - self._taken

    def headers(self, timeout: float = 5) -> dict[str, str]:
        self.client.read_until(lambda: self.stream.status is not None, timeout)
        return dict(self.stream.headers)

    def next(self, timeout: float = EVENT_TIMEOUT) -> Event:
        """The next event; ``AssertionError`` when none arrives within ``timeout``."""
        try:
            self.client.read_until(lambda: self._parse() > 0, timeout)
        except TimeoutError:
            raise AssertionError(f"no event within {timeout} s") from None
        event = self.parser.events[self._taken]
        self._taken += 1
        return event

    def until(self, check: Callable[[Event], bool], timeout: float = EVENT_TIMEOUT) -> Event:
        """Skip events until one passes ``check``."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event within {timeout} s; saw {seen}")
            try:
                event = self.next(left)
            except AssertionError:
                raise AssertionError(
                    f"no matching event within {timeout} s; saw {seen}") from None
            if check(event):
                return event
            seen.append((event.kind, event.data))

    def silent_for(self, seconds: float) -> list[Event]:
        """The events that arrive within ``seconds`` (the test expects none)."""
        try:
            self.client.read_until(lambda: self._parse() > 0, seconds)
        except TimeoutError:
            return []
        fresh = self.parser.events[self._taken:]
        self._taken = len(self.parser.events)
        return fresh

    def close(self) -> None:
        self.client.close()


class HttpxEventStream:
    """The event stream read by httpx in a thread, as a plain HTTP client would: over
    HTTP/2, or over HTTP/1.1 with ``http2=False``."""

    def __init__(self, url: str, http2: bool = True) -> None:
        self.url = url + EVENTS_PATH
        self.events: queue.Queue[Event] = queue.Queue()
        self.response: dict[str, Any] = {}
        self.opened = threading.Event()
        self._client = httpx.Client(http1=not http2, http2=http2, verify=False, timeout=10)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        parser = SSEParser()
        try:
            with self._client.stream("GET", self.url) as r:
                self.response.update(status=r.status_code, version=r.http_version,
                                     headers=dict(r.headers))
                self.opened.set()
                for line in r.iter_lines():
                    before = len(parser.events)
                    parser.feed(line + "\n")
                    for event in parser.events[before:]:
                        self.events.put(event)
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self.opened.set()

    def next(self, timeout: float = EVENT_TIMEOUT) -> Event:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout} s (httpx)") from None

    def close(self) -> None:
        # A read in progress is not interrupted by close(); the thread ends when the server
        # closes the connection, at the latest when the test's server stops.
        self._client.close()
        self._thread.join(0.2)


# -- making sure the watchers run ---------------------------------------------------------------


def prime_site(events: EventStream, root: Path, timeout: float = 6) -> None:
    """Write a file until its event arrives: from then on the site watcher is running."""
    probe = root / "_probe.txt"
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count += 1
        probe.write_text(f"probe {count}\n")
        try:
            events.until(lambda e: "/_probe.txt" in e.paths, min(1.0, timeout))
        except AssertionError:
            continue
        # Earlier probes, written while the watcher was starting, may still report late:
        # take those events now, so the test's next event is its own.
        for _ in range(count - 1):
            try:
                events.until(lambda e: "/_probe.txt" in e.paths, 0.6)
            except AssertionError:
                break
        return
    raise AssertionError(f"the site watcher reported nothing within {timeout} s")


def prime_routes(events: EventStream, routes: Path, timeout: float = 6) -> None:
    """Re-save routes.py until the reload it causes arrives: the routes watcher runs."""
    deadline = time.monotonic() + timeout
    text = routes.read_text()
    while time.monotonic() < deadline:
        routes.write_text(text)
        try:
            events.until(lambda e: e.kind == "reload" and e.paths == [], 1.0)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the routes watcher reported nothing within {timeout} s")


def get(url: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(http2=True, verify=False, timeout=10) as client:
        response = client.get(url, **kwargs)
    assert response.http_version == "HTTP/2"
    return response

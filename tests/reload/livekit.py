"""Helpers of the live reload tests: event stream readers, file edits, bounded waits.

Every wait here has a deadline; nothing sleeps and then asserts.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hyper2web import reload as reload_module
from tests.server.h2client import H2Client
from tests.support import (
    need_tool,  # noqa: F401 - used by the tests here
    protocol_client,
)

EVENTS_PATH = "/__hyper2web__/events"
CLIENT_PATH = "/__hyper2web__/client.js"
# The client's URL carries its version (a digest of client.js), checked in test_inject.
SCRIPT_TAG = reload_module.SCRIPT_TAG.decode()
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


def save_atomic(path: Path, text: str) -> None:
    """Write a temporary file, then rename it over ``path`` (atomic saves)."""
    temporary = path.with_name(path.name + ".tmp-save")
    temporary.write_text(text)
    os.replace(temporary, path)


def save_like_vim(path: Path, text: str) -> None:
    """vim's backup save: rename to ``name~``, write anew, ``fsync``, drop the backup."""
    backup = path.with_name(path.name + "~")
    os.replace(path, backup)
    with open(path, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())  # the backup goes only after the new file is on disk
    backup.unlink()


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


class Subscription:
    """What every event stream reader offers: ``next`` (its own), ``until``, ``silent_for``."""

    def next(self, timeout: float = EVENT_TIMEOUT) -> Event:
        raise NotImplementedError

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


class EventStream(Subscription):
    """``GET /__hyper2web__/events`` on a raw HTTP/2 connection (a new one, or ``client``).

    Read in the test's own thread, frame by frame: for the tests that share the connection
    with other requests, and those that are about the file watchers (any protocol would do).
    """

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


class HttpxEventStream(Subscription):
    """The event stream read by httpx as it arrives, as a plain HTTP client would: over
    HTTP/2 (DATA frames), or over HTTP/1.1 (a chunked body), on a connection of its own.

    A thread reads the response body chunk by chunk and parses each at once; an event
    reaches ``next`` while the response is still open, else the stream was not incremental.
    The constructor waits for the response head and checks its protocol.
    """

    def __init__(self, url: str, protocol: str = "HTTP/2", open_timeout: float = 5) -> None:
        self.url = url + EVENTS_PATH
        self.protocol = protocol
        self.parser = SSEParser()
        self.status: int | None = None
        self.version: str | None = None
        self.response_headers: dict[str, str] = {}
        self.chunks: list[bytes] = []  # the body as it arrived, one read at a time
        self.error: BaseException | None = None  # what ended the reading, unless close()
        self.opened = threading.Event()
        self.ended = threading.Event()
        self._events: queue.Queue[Event] = queue.Queue()
        self._network: Any = None
        self._closing = False
        # No read timeout: the stream is meant to stay quiet between events.
        self._client = httpx.Client(http1=protocol != "HTTP/2", http2=protocol == "HTTP/2",
                                    verify=False, timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"events {protocol} {url}")
        self._thread.start()
        if not self.opened.wait(open_timeout):
            self.close()
            raise AssertionError(f"no response head within {open_timeout} s ({protocol})")
        if self.status is None or self.version != protocol:
            self.close()
            raise AssertionError(f"the event stream over {protocol} failed: "
                                 f"{self.version} {self.status} {self.error!r}")

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self.url) as response:
                self._network = response.extensions.get("network_stream")
                self.response_headers = dict(response.headers)
                self.version = response.http_version
                self.status = response.status_code
                self.opened.set()
                for chunk in response.iter_bytes():
                    self.chunks.append(chunk)
                    before = len(self.parser.events)
                    self.parser.feed(chunk)
                    for event in self.parser.events[before:]:
                        self._events.put(event)
        except BaseException as exc:  # reported by next() unless the test closed the stream
            if not self._closing:
                self.error = exc
        finally:
            self.ended.set()
            self.opened.set()

    def headers(self, timeout: float = 5) -> dict[str, str]:
        return dict(self.response_headers)

    @property
    def done(self) -> bool:
        """The response ended (or failed)."""
        return self.ended.is_set()

    def next(self, timeout: float = EVENT_TIMEOUT) -> Event:
        """The next event; ``AssertionError`` when none arrives within ``timeout``."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            ended = f"; the response ended: {self.error!r}" if self.done else ""
            raise AssertionError(
                f"no event within {timeout} s ({self.protocol}){ended}") from None

    def silent_for(self, seconds: float) -> list[Event]:
        """The events that arrive within ``seconds`` (the test expects none)."""
        try:
            fresh = [self._events.get(timeout=seconds)]
        except queue.Empty:
            return []
        while True:
            try:
                fresh.append(self._events.get_nowait())
            except queue.Empty:
                return fresh

    def close(self) -> None:
        """Close the connection now, as a closed tab does: the server sees it at once."""
        self._closing = True
        sock = self._network.get_extra_info("socket") if self._network is not None else None
        if sock is not None:
            try:
                # The plain socket's shutdown, under TLS: it wakes the reading thread (a
                # close() from this thread would not) and sends the FIN.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(2)
        self._client.close()


# -- making sure the watchers run ---------------------------------------------------------------


def prime_site(events: Subscription, root: Path, timeout: float = 6) -> None:
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


def prime_routes(events: Subscription, routes: Path, timeout: float = 6) -> None:
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


def get(url: str, protocol: str = "HTTP/2", **kwargs: Any) -> httpx.Response:
    """One request on a new connection over ``protocol`` (checked)."""
    with protocol_client(protocol, timeout=10) as client:
        return client.get(url, **kwargs)

"""Request, Response and Stream: what a handler sees, independent of the wire protocol.

A ``Response`` writes through a ``Channel``, which the HTTP/2 and the HTTP/1.1 connections
each implement, so routing, static files and handlers never know which protocol carries
them.
"""

from __future__ import annotations

import json as _json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

from .chunks import CHUNK, chunk_buffer, keep_buffer, read_into
from .exceptions import ResponseAlreadySent
from .mime import content_type_for

log = logging.getLogger("hyper2web")

# Every URL path under this prefix belongs to the server (live reload), never to the site.
RESERVED_PREFIX = "/__hyper2web__/"

# Files up to this size are read in one call on the event loop: a local read of this size
# costs less than a thread hop. Bigger files stream in chunks read in a worker thread.
SMALL_FILE = 256 * 1024
FILE_CHUNK = CHUNK

Headers = tuple[tuple[str, str], ...]

# Compact JSON; one encoder for every response (``json.dumps`` with options makes one per call).
_JSON = _json.JSONEncoder(separators=(",", ":"))

# Statuses whose responses never carry content-length.
_NO_LENGTH = frozenset({204, 304})


class Channel(Protocol):
    """What a protocol connection offers one response: the sending half of a stream."""

    async def send_head(self, status: int, headers: Sequence[tuple[str, str]],
                        end_stream: bool) -> None: ...

    async def send_data(self, data: bytes | memoryview, end_stream: bool) -> None:
        """Queue ``data``; it is copied (or sent) before this returns."""

    async def send_informational(self, status: int,
                                 headers: Sequence[tuple[str, str]]) -> None: ...


class BodySource(Protocol):
    """Where a streamed request body comes from: the protocol connection."""

    async def read(self) -> bytes:
        """The next piece of the body, as it arrives; ``b""`` once it has all arrived."""
        ...


class Stream:
    """One request's stream: its id, its header fields and, once complete, its body.

    Kept from the original API, where handlers read ``request.stream.data`` and
    ``request.stream.headers``. For a route registered with ``stream=True`` the body is
    not collected: ``async for chunk in request.stream`` reads it as it arrives (the
    original docstring's wish: "the client may send a giant file 1GB ... buffering 1GB in
    memory is kind of stupid"), and ``data`` stays empty. Iterating a collected body
    yields it whole, once, so one handler can serve both kinds.
    """

    __slots__ = ("stream_id", "headers", "data", "source")

    def __init__(self, stream_id: int, headers: dict[str, str], data: bytes = b"",
                 source: BodySource | None = None) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.data = data
        self.source = source

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self.source is None:
            if self.data:
                yield self.data
            return
        while chunk := await self.source.read():
            yield chunk

    def finalize(self) -> bytes:
        """The whole body; the body is already joined, so this only returns it."""
        return self.data


class Request:
    """A complete request: method, path, query, headers, body and route parameters."""

    __slots__ = ("stream", "para", "method", "path", "raw_path", "query_string", "client",
                 "http_version", "arrived", "_query")

    def __init__(
        self,
        stream: Stream,
        para: dict[str, str] | None = None,
        *,
        client: tuple[str, int] | None = None,
        http_version: str = "2",
        arrived: float | None = None,
    ) -> None:
        self.stream = stream
        self.para: dict[str, str] = para if para is not None else {}
        headers = stream.headers
        self.method: str = headers.get(":method", "GET")
        self.raw_path: str = headers.get(":path", "/")
        path, _, self.query_string = self.raw_path.partition("?")
        self.path: str = path
        self.client = client
        self.http_version = http_version
        # ``time.monotonic()`` when the server had read all of the request, if it tells.
        self.arrived = arrived
        self._query: dict[str, str] | None = None

    @property
    def params(self) -> dict[str, str]:
        """Route parameters, e.g. ``{'userId': '42'}`` for ``user/{userId}``."""
        return self.para

    @params.setter
    def params(self, value: dict[str, str]) -> None:
        self.para = value

    @property
    def headers(self) -> dict[str, str]:
        """Header fields by lower-case name (pseudo-headers such as ``:path`` included)."""
        return self.stream.headers

    @property
    def query(self) -> dict[str, str]:
        """The query string as a dict; for a repeated name the last value wins."""
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    @property
    def body(self) -> bytes:
        return self.stream.data

    async def json(self) -> Any:
        """The body parsed as JSON; ``HTTPError(400)`` when it is not valid JSON."""
        from .exceptions import HTTPError

        try:
            return _json.loads(self.stream.data or b"null")
        except ValueError as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path}>"


class Response:
    """The answer to one request, written through its protocol ``Channel``.

    The original API's ``send`` always ends the response; ``start``/``write``/``end`` are
    there for responses that stream (event streams, large files).
    """

    __slots__ = ("stream_id", "status", "headers", "_channel", "_head_only", "started",
                 "finished", "bytes_sent", "defaults", "html_filter")

    def __init__(
        self,
        stream_id: int,
        channel: Channel,
        *,
        head_only: bool = False,
        defaults: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.stream_id = stream_id
        self.status = 200
        self.headers: dict[str, str] = {}
        # Headers every response of the app carries (``--header``, CORS) unless the handler
        # set the same name; merged when the response starts, so ``set_headers`` keeps them.
        self.defaults = defaults
        # Applied to HTML sent with ``send_file`` (live reload injects its script).
        self.html_filter: Callable[[bytes], bytes] | None = None
        self._channel = channel
        self._head_only = head_only
        self.started = False
        self.finished = False
        self.bytes_sent = 0

    # -- headers (original API) ------------------------------------------------------------

    def set_header(self, field: str, value: Any) -> None:
        """Set one header; a later call with the same name replaces it.

        A line break or NUL in the value would let a value forge another header, so it is
        refused here (``ValueError``), once, instead of on every send.
        """
        text = str(value)
        if "\n" in text or "\r" in text or "\x00" in text:
            raise ValueError(f"header {field!r} has a line break or NUL in its value")
        name = field.lower()
        if not name or name[0] == ":" or " " in name:
            raise ValueError(f"not a header name: {field!r}")
        self.headers[name] = text

    def set_headers(self, headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Replace every header set so far with ``headers``."""
        self.headers = {}
        self.update_headers(headers)

    def update_headers(self, headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Add or replace the given headers, keeping the others."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        for field, value in items:
            self.set_header(field, value)

    # -- streaming -----------------------------------------------------------------------

    async def start(self, status: int | None = None, *, end_stream: bool = False,
                    repeated: Sequence[tuple[str, str]] = ()) -> None:
        """Send the status line and headers; the body follows with ``write``.

        ``repeated``: fields sent as given after ``headers``, for names that may appear
        more than once (``set-cookie`` relayed by the proxy).
        """
        if self.started:
            raise ResponseAlreadySent(f"stream {self.stream_id}: response already started")
        if status is not None:
            self.status = status
        self.started = True
        end = end_stream or self._head_only
        if end:
            self.finished = True
        headers = self.headers
        for name, value in self.defaults:
            if name not in headers:
                headers[name] = value
        if self.status in _NO_LENGTH:
            # RFC 9110: never on 204; on 304 a length would describe the unsent content.
            headers.pop("content-length", None)
        # ``headers`` is a public dict: names written into it directly may be mixed case,
        # which HTTP/2 forbids on the wire.
        fields = [(k if k.islower() else k.lower(), v) for k, v in headers.items()]
        if repeated:
            fields.extend(repeated)
        await self._channel.send_head(self.status, fields, end)

    async def send_informational(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """Send a 1xx response (e.g. ``103 Early Hints``) before the final one."""
        if self.started:
            raise ResponseAlreadySent(f"stream {self.stream_id}: response already started")
        if not 100 <= status <= 199 or status == 101:
            raise ValueError(f"not an informational status usable over HTTP/2: {status}")
        await self._channel.send_informational(status, list(headers))

    async def write(self, data: bytes | memoryview, *, end: bool = False) -> None:
        """Send part of the body (after ``start``); ``end=True`` closes the stream."""
        if not self.started:
            await self.start()
        if self.finished:
            if self._head_only:
                return
            raise ResponseAlreadySent(f"stream {self.stream_id}: response already ended")
        if end:
            self.finished = True
        self.bytes_sent += len(data)
        await self._channel.send_data(data, end)

    async def end(self) -> None:
        """Close the body of a streamed response."""
        if not self.started:
            await self.start()
        if not self.finished:
            await self.write(b"", end=True)

    # -- whole responses (original API) ----------------------------------------------------

    async def send(self, data: bytes | bytearray | memoryview | str = b"") -> None:
        """Send ``data`` as the whole body and end the response.

        ``bytes`` as in the original API; a ``str`` is sent as UTF-8 text (the original
        tutorial passes one). Anything else is a ``TypeError``: use ``send_json``.
        """
        if isinstance(data, str):
            data = data.encode()
            self.headers.setdefault("content-type", "text/plain; charset=utf-8")
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"response.send() takes bytes (or str), not {type(data).__name__}; "
                "use response.send_json() for objects"
            )
        self.headers["content-length"] = str(len(data))
        if not data:
            await self.start(end_stream=True)
            return
        await self.start()
        await self.write(bytes(data), end=True)

    async def send_prepared(self, status: int, headers: Headers, body: bytes) -> None:
        """Send a whole response whose header fields were built ahead of time.

        For answers served again and again (a cached file): ``headers`` must already be
        lower-case and checked, and carry the content-length. Fields set on ``headers`` of
        this response before, and the app's defaults, are added unless ``headers`` has them.
        """
        if self.started:
            raise ResponseAlreadySent(f"stream {self.stream_id}: response already started")
        self.status = status
        self.started = self.finished = True
        fields: Sequence[tuple[str, str]] = headers
        if self.headers or self.defaults:
            names = {name for name, _ in headers}
            more = [(k.lower(), v) for k, v in self.headers.items() if k.lower() not in names]
            names.update(name for name, _ in more)
            more += [(k, v) for k, v in self.defaults if k not in names]
            fields = [*headers, *more]
        if self._head_only or not body:
            await self._channel.send_head(status, fields, True)
            return
        await self._channel.send_head(status, fields, False)
        self.bytes_sent = len(body)
        await self._channel.send_data(body, True)

    async def send_text(self, text: str, status: int = 200,
                        content_type: str = "text/plain; charset=utf-8") -> None:
        """Send ``text`` encoded as UTF-8."""
        self.status = status
        self.headers["content-type"] = content_type
        await self.send(text.encode())

    async def send_json(self, obj: Any, status: int = 200) -> None:
        """Send ``obj`` as JSON with ``content-type: application/json``."""
        self.status = status
        self.headers["content-type"] = "application/json"
        await self.send(_JSON.encode(obj).encode())

    async def send_status_code(self, status_code: int) -> None:
        """Send only a status code, with an empty body."""
        self.status = int(status_code)
        self.headers["content-length"] = "0"
        await self.start(end_stream=True)

    async def send_file(self, file_path: str | os.PathLike[str]) -> None:
        """Send a file with its content type and length; 404 when it is not a file.

        Small files are read at once; large ones stream in chunks, so memory stays flat
        whatever the file's size.
        """
        path = os.fspath(file_path)
        try:
            fh = open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            await self.send_status_code(404)
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            ctype = self.headers.setdefault("content-type", content_type_for(path))
            if self.html_filter is not None and ctype.startswith("text/html"):
                await self.send(self.html_filter(fh.read()))
                return
            await self.send_open_file(fh, size)

    async def send_open_file(self, fh: Any, size: int) -> None:
        """Send ``size`` bytes from an open binary file as the body (headers set by caller)."""
        self.headers["content-length"] = str(size)
        if self._head_only or size == 0:
            await self.start(end_stream=True)
            return
        if size <= SMALL_FILE:
            await self.start()
            await self.write(fh.read(size), end=True)
            return
        await self.start()
        fd, offset, remaining = fh.fileno(), fh.tell(), size
        # Read straight into the protocol's frames where it offers them (``body_slots``),
        # else into one buffer reused from chunk to chunk (``write`` copies it).
        channel: Any = self._channel
        slots_for = getattr(channel, "body_slots", None)
        chunk = chunk_buffer()
        buffer = memoryview(chunk)
        while remaining > 0:
            want = min(len(buffer), remaining)
            slots = slots_for(want) if slots_for is not None else None
            count = await read_into(fd, [buffer[:want]] if slots is None else slots.views,
                                    offset)
            if not count:  # the file shrank while being sent: the stream cannot be honest
                raise OSError(f"file shrank while being sent ({remaining} bytes missing)")
            offset += count
            remaining -= count
            if slots is None:
                await self.write(buffer[:count], end=remaining <= 0)
                continue
            self.finished = remaining <= 0
            self.bytes_sent += count
            await channel.send_slots(slots, count, remaining <= 0)
        buffer.release()
        keep_buffer(chunk)

    def __repr__(self) -> str:
        return f"<Response {self.status} stream={self.stream_id}>"

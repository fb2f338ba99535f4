"""The clients of bench/stress.py: raw HTTP/2 attack connections, the bystander, samplers.

Attack connections use h2 (client side) to *build* frames, so bursts are cheap to write, and
read what comes back with a small frame scanner of their own (RFC 9113 framing, hpack for
statuses): an attacker breaks the rules on purpose, and h2 would stop reading at the first
frame it finds odd, before the GOAWAY or RST_STREAM we want to report. h2 is still fed what
arrives, while it accepts it, so it knows the flow-control windows.
"""

from __future__ import annotations

import math
import resource
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import h2.settings
import hpack
import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*
import servers

from tests.server.h2client import HOST, H2Client, client_context

CONTEXT = client_context()  # ALPN h2, no certificate verification
FRAME_HEADERS, FRAME_RST, FRAME_GOAWAY, FRAME_CONTINUATION = 0x1, 0x3, 0x7, 0x9
CODES = {code.value: code.name for code in h2.errors.ErrorCodes}


def code_name(code: int | None) -> str:
    return "none" if code is None else f"{CODES.get(code, 'UNKNOWN')} ({code})"


@dataclass
class FrameLog:
    """What the server sent, frame by frame: statuses, resets, GOAWAY (raw bytes in)."""

    statuses: dict[int, int] = field(default_factory=dict)  # stream -> first :status
    status_at: dict[int, float] = field(default_factory=dict)  # stream -> perf_counter
    resets: dict[int, int] = field(default_factory=dict)  # stream -> RST_STREAM code
    reset_at: dict[int, float] = field(default_factory=dict)
    goaway: int | None = None
    goaway_at: float | None = None
    data_bytes: dict[int, int] = field(default_factory=dict)
    broken: str = ""  # a frame we could not decode: scanning stopped there
    _buffer: bytearray = field(default_factory=bytearray)
    _block: bytearray = field(default_factory=bytearray)  # a header block awaiting CONTINUATION
    _decoder: hpack.Decoder = field(default_factory=hpack.Decoder)

    def scan(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        offset = 0
        while not self.broken and len(buffer) - offset >= 9:
            length = int.from_bytes(buffer[offset:offset + 3], "big")
            if len(buffer) - offset < 9 + length:
                break
            kind, flags = buffer[offset + 3], buffer[offset + 4]
            stream = int.from_bytes(buffer[offset + 5:offset + 9], "big") & 0x7FFFFFFF
            payload = bytes(buffer[offset + 9:offset + 9 + length])
            offset += 9 + length
            self._frame(kind, flags, stream, payload)
        del buffer[:offset]

    def _frame(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        now = time.perf_counter()
        if kind == 0x0:
            self.data_bytes[stream] = self.data_bytes.get(stream, 0) + len(payload)
        elif kind in (FRAME_HEADERS, FRAME_CONTINUATION):
            if kind == FRAME_HEADERS:
                padded = flags & 0x8  # PADDED: a pad length byte first, padding last
                start = (1 if padded else 0) + (5 if flags & 0x20 else 0)  # 0x20: PRIORITY
                end = len(payload) - (payload[0] if padded else 0)
                self._block[:] = payload[start:end]
            else:
                self._block += payload
            if flags & 0x4:  # END_HEADERS
                self._headers(stream, bytes(self._block), now)
        elif kind == FRAME_RST and len(payload) == 4:
            self.resets.setdefault(stream, int.from_bytes(payload, "big"))
            self.reset_at.setdefault(stream, now)
        elif kind == FRAME_GOAWAY and len(payload) >= 8 and self.goaway is None:
            self.goaway, self.goaway_at = int.from_bytes(payload[4:8], "big"), now

    def _headers(self, stream: int, block: bytes, now: float) -> None:
        try:
            fields = self._decoder.decode(block, raw=True)
        except hpack.HPACKError as exc:
            self.broken = f"hpack: {exc}"
            return
        for name, value in fields:
            if name == b":status" and stream not in self.statuses:
                self.statuses[stream] = int(value)
                self.status_at[stream] = now


class Raw:
    """One TLS connection (ALPN h2) whose frames are built with h2 and read by a FrameLog."""

    def __init__(self, port: int, *, preface: bool = True, window: int | None = None,
                 timeout: float = 10.0) -> None:
        sock = socket.create_connection((HOST, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        try:
            self.sock = CONTEXT.wrap_socket(sock, server_hostname="localhost")
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        if self.sock.selected_alpn_protocol() != "h2":
            self.sock.close()
            raise ConnectionError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}")
        self.opened_at = time.perf_counter()
        self.log = FrameLog()
        self.closed_at: float | None = None  # reading met EOF or an error
        self.send_failed_at: float | None = None
        self.error = ""
        config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                           validate_outbound_headers=False)
        self.h2 = h2.connection.H2Connection(config)
        self.tracking = preface  # h2 is fed what arrives (for flow control) once greeted
        if window is not None:
            self.h2.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        if preface:
            self.h2.initiate_connection()

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def request(self, path: str, method: str = "GET", end_stream: bool = True,
                extra: Iterable[tuple[str, str]] = ()) -> int:
        """Queue a request's HEADERS (nothing is sent yet); returns its stream id."""
        stream = self.h2.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", "https"), (":authority", "localhost"),
                   (":path", path), *extra]
        self.h2.send_headers(stream, headers, end_stream=end_stream)
        return stream

    def send(self, extra: bytes = b"") -> bool:
        """Send what h2 queued, then ``extra``; False once a write failed (reading may go on:
        a server that closes on us often left a GOAWAY in our receive buffer)."""
        data = self.h2.data_to_send() + extra
        if self.send_failed_at is not None or self.closed:
            return False
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError) as exc:
            self.send_failed_at = time.perf_counter()
            self.error = type(exc).__name__
            return False

    def receive(self, data: bytes) -> None:
        self.log.scan(data)
        if self.tracking:
            try:
                self.h2.receive_data(data)
            except (h2.exceptions.ProtocolError, ValueError):
                self.tracking = False  # the server said something h2 refuses: stop feeding

    def drain(self) -> bool:
        """Read whatever has arrived, without waiting; False once the connection is closed."""
        if self.closed:
            return False
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self._close(None)
                    return False
                self.receive(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True
        except (OSError, ssl.SSLError) as exc:
            self._close(exc)
            return False
        finally:
            if not self.closed:
                self.sock.settimeout(self.timeout)

    def read_until(self, done: Callable[[Raw], bool], seconds: float) -> None:
        """Read until ``done(self)``, the connection closes, or ``seconds`` pass."""
        deadline = time.perf_counter() + seconds
        while not self.closed and not done(self):
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self.sock.settimeout(min(left, self.timeout))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except (OSError, ssl.SSLError) as exc:
                self._close(exc)
                return
            if not data:
                self._close(None)
                return
            self.receive(data)

    def _close(self, exc: BaseException | None) -> None:
        if self.closed_at is None:
            self.closed_at = time.perf_counter()
            self.error = self.error or ("EOF" if exc is None else type(exc).__name__)
        self.sock.close()

    def close(self) -> None:
        if not self.closed:
            self.sock.close()


def open_many(count: int, make: Callable[[], Raw], threads: int = 4) -> tuple[list[Raw], str]:
    """``count`` connections made by ``make`` in a few threads: (connections, failures)."""
    made: list[Raw] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(share: int) -> None:
        for _ in range(share):
            try:
                conn = make()
            except (OSError, ssl.SSLError, h2.exceptions.ProtocolError) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                made.append(conn)

    shares = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    workers = [threading.Thread(target=worker, args=(share,), daemon=True) for share in shares]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    failed = f"{len(errors)} failed to open ({errors[0]})" if errors else ""
    return made, failed


def watch_many(conns: list[Raw], done: Callable[[Raw], bool], seconds: float,
               tick: Callable[[], None] | None = None) -> None:
    """Read from every connection until each is ``done`` or closed, or ``seconds`` pass.

    One epoll for thousands of sockets; ``tick`` runs about every half second (samples).
    """
    deadline = time.perf_counter() + seconds
    selector = selectors.DefaultSelector()
    waiting = 0
    for conn in conns:
        if not conn.closed and not done(conn):
            conn.sock.setblocking(False)
            selector.register(conn.sock, selectors.EVENT_READ, conn)
            waiting += 1
    try:
        while waiting and time.perf_counter() < deadline:
            for key, _ in selector.select(min(0.5, max(0.0, deadline - time.perf_counter()))):
                conn = key.data
                conn.drain()
                if conn.closed or done(conn):
                    selector.unregister(key.fileobj)
                    waiting -= 1
            if tick is not None:
                tick()
    finally:
        selector.close()


# ---------------------------------------------------------------------------- measuring

class Bystander(threading.Thread):
    """A normal visitor: every 250 ms a fresh TLS connection and GET /index.html."""

    PERIOD = 0.25

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.latencies: list[float] = []  # seconds, connect to full body, 200s only
        self.failures: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        next_start = time.perf_counter()
        while not self._halt.is_set():
            started = time.perf_counter()
            try:
                status = self.get()
                if status == 200:
                    self.latencies.append(time.perf_counter() - started)
                else:
                    self.failures.append(f"status {status}")
            except (OSError, ConnectionError, ssl.SSLError, h2.exceptions.ProtocolError) as exc:
                self.failures.append(type(exc).__name__)
            next_start += self.PERIOD
            self._halt.wait(max(0.0, next_start - time.perf_counter()))

    def get(self) -> int:
        """GET /index.html on a fresh connection, the way a browser would open it: with
        TCP_NODELAY (else Nagle holds the request ~40 ms behind the SETTINGS ack) and a TLS
        context made once (making one costs ~20 ms)."""
        sock = socket.create_connection((HOST, self.port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = H2Client(self.port, context=CONTEXT, sock=sock, timeout=5, handshake=True,
                              track_frames=False)
        try:
            result = connection.get("/index.html")
            if result.reset is not None:
                raise ConnectionError(f"stream reset: {result.reset}")
            return result.status or 0
        finally:
            connection.close(goaway=True)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def p99_ms(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class Sampler(threading.Thread):
    """The server's VmRSS every 50 ms; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = servers._rss_kb(pid)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            self.peak_kb = max(self.peak_kb, servers._rss_kb(self.pid))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def open_fds(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return -1


def raise_file_limit(wanted: int) -> str:
    """Raise this process's soft open-files limit towards ``wanted`` (at most the hard one).

    The server is started from here, so it inherits the raised limit too.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return f"open files: soft {soft}, hard {hard}"

"""The attacks of bench/stress.py: each prepares, attacks under ``Stress.watch`` and returns
what the attacker received, in a few words for the table. Each is bounded in time.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import h2.errors
import h2.exceptions
import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*
import servers
from hyperframe.frame import DataFrame, HeadersFrame
from stressclients import Raw, code_name, open_fds, open_many
from stressclients import watch_many as watch_all

from tests.server.h2client import h2_get

if TYPE_CHECKING:
    from stress import Stress  # the runner; imported for types only (it imports this)

BIG_FILE, BIG_FILE_SIZE = "/big.bin", 10 * 1024 * 1024
MB = 1024 * 1024
# Where attack bodies go. A POST that no route takes, to a path static files serve, is
# answered 405 before its body is read (App.early_answer), so it would hold nothing open;
# under the server's reserved prefix a POST goes the normal way (its body is read, then 404),
# which is what rows 3, 5, 7 and 8 need. Row 3 shows what /upload itself gets.
UPLOAD = "/api/upload"  # routes.py of the bench site: a POST whose body is read
CANCEL = h2.errors.ErrorCodes.CANCEL


def ms(seconds: float | None) -> str:
    return "never" if seconds is None else f"{1000 * seconds:.0f} ms"


def spread(values: list[float]) -> str:
    """'10.0-10.4 s (median 10.1)' for a list of delays."""
    if not values:
        return "-"
    return f"{min(values):.1f}-{max(values):.1f} s (median {statistics.median(values):.1f})"


# ---------------------------------------------------------------------------- the attacks

def folder_swap(stress: Stress) -> str:
    """A served folder replaced by a symlink leading out of the root, between requests: a
    cached path or file handle must not start serving the outside file."""
    swap, outside = stress.paths.public / "swap", stress.paths.scratch / "outside"
    swap.mkdir()
    outside.mkdir()
    (swap / "secret.txt").write_bytes(b"inside the root\n")
    (outside / "secret.txt").write_bytes(b"OUTSIDE THE ROOT\n")

    def three() -> list[tuple[str, bytes]]:
        found = []
        for _ in range(3):
            try:
                result = h2_get(stress.port, "/swap/secret.txt")
                status = "reset" if result.reset is not None else str(result.status)
                found.append((status, result.body))
            except (OSError, ConnectionError, h2.exceptions.ProtocolError) as exc:
                found.append((type(exc).__name__, b""))
        return found

    with stress.watch():
        before = three()
        shutil.rmtree(swap)
        swap.symlink_to(outside, target_is_directory=True)
        after = three()
    swap.unlink()
    leaked = sum(body == b"OUTSIDE THE ROOT\n" for _, body in after)
    return (f"before: {' '.join(s for s, _ in before)}; after the swap: "
            f"{' '.join(s for s, _ in after)}; outside bytes served: "
            f"{f'{leaked} of 3 times' if leaked else 'never'}")


def rapid_reset(stress: Stress) -> str:
    """CVE-2023-44487: streams opened and cancelled at once cost the server a handler each,
    unless it counts resets and closes the connection."""
    conn = Raw(stress.port)
    for _ in range(stress.sizes.pairs):
        conn.h2.reset_stream(conn.request("/index.html"), CANCEL)
    burst = conn.h2.data_to_send()
    with stress.watch():
        start = time.perf_counter()
        conn.send(burst)
        conn.read_until(lambda c: False, 10.0)
    ends = [t - start for t in (conn.closed_at, conn.send_failed_at) if t is not None]
    log = conn.log
    return (f"GOAWAY {code_name(log.goaway)} at {ms(log.goaway_at and log.goaway_at - start)}; "
            f"closed at {ms(min(ends) if ends else None)} "
            f"({conn.error or 'still open'}); {len(log.statuses)} responses, burst "
            f"{len(burst) / MB:.1f} MB")


def uploads(stress: Stress) -> str:
    """Many request bodies just under the per-request limit, never finished: what the server
    buffers must stay bounded (the process-wide body budget answers 503)."""
    size, limit = 63 * MB, 30.0
    conns, failed = open_many(stress.sizes.uploaders, lambda: Raw(stress.port))
    sent: dict[tuple[Raw, int], int] = {}
    for conn in conns:
        for _ in range(2):
            sent[(conn, conn.request(UPLOAD, "POST", end_stream=False))] = 0
        conn.send()
    payload = bytes(16384)
    with stress.watch():
        deadline = time.perf_counter() + limit
        active = dict.fromkeys(sent, True)
        while any(active.values()) and time.perf_counter() < deadline:
            moved = 0
            for conn in conns:
                conn.drain()
            for (conn, sid), going in active.items():
                if not going:
                    continue
                if sid in conn.log.statuses or sid in conn.log.resets or conn.closed or \
                        conn.send_failed_at or sent[(conn, sid)] >= size:
                    active[(conn, sid)] = False
                    continue
                try:
                    room = min(conn.h2.local_flow_control_window(sid), size - sent[(conn, sid)],
                               16 * len(payload))
                    for at in range(0, room, len(payload)):
                        conn.h2.send_data(sid, payload[:min(len(payload), room - at)])
                except h2.exceptions.ProtocolError:  # closed as far as h2 knows
                    active[(conn, sid)] = False
                    continue
                sent[(conn, sid)] += room
                moved += room
            for conn in conns:
                conn.send()
            if not moved:
                time.sleep(0.005)
        elapsed = limit - max(0.0, deadline - time.perf_counter())
    answers: Counter[str] = Counter()
    for conn, sid in sent:
        if sid in conn.log.statuses:
            answers[str(conn.log.statuses[sid])] += 1
        elif sid in conn.log.resets:
            answers[f"reset {code_name(conn.log.resets[sid])}"] += 1
        elif sent[(conn, sid)] >= size:
            answers["no answer, all 63 MB sent"] += 1
        else:
            answers[f"no answer, {'closed' if conn.closed else 'open'}"] += 1
    for conn in conns:
        conn.close()
    shown = ", ".join(f"{name}: {count}" for name, count in sorted(answers.items()))
    return (f"{UPLOAD}: {shown}; {sum(sent.values()) / MB:.0f} MB sent in {elapsed:.1f} s"
            f"{'; ' + failed if failed else ''}; POST /upload: {early_status(stress)}")


def early_status(stress: Stress) -> str:
    """What a POST to a plain path gets before any of its body is sent."""
    conn = Raw(stress.port)
    sid = conn.request("/upload", "POST", end_stream=False)
    conn.send()
    conn.read_until(lambda c: sid in c.log.statuses or sid in c.log.resets, 2.0)
    conn.close()
    if sid in conn.log.statuses:
        return f"{conn.log.statuses[sid]} before any body"
    return f"RST_STREAM {code_name(conn.log.resets[sid])}" if sid in conn.log.resets else \
        "no answer within 2 s"


def no_preface(stress: Stress) -> str:
    """TLS connections that never speak HTTP/2 hold a socket and a task each: the server
    must close them (10 s preface timeout) rather than let them pile up."""
    with stress.watch():
        conns, failed = open_many(stress.sizes.connections,
                                  lambda: Raw(stress.port, preface=False))
        watch_all(conns, lambda c: False, 15.0)
    closed = [c.closed_at - c.opened_at for c in conns
              if c.closed_at is not None and c.closed_at - c.opened_at <= 15.0]
    goaways = Counter(code_name(c.log.goaway) for c in conns if c.closed_at is not None)
    for conn in conns:
        conn.close()
    return (f"closed by the server within 15 s: {len(closed)} of {len(conns)}, "
            f"{spread(closed)} after the handshake; GOAWAY first: "
            f"{', '.join(f'{k}: {v}' for k, v in goaways.items()) or '-'}"
            f"{'; ' + failed if failed else ''}")


def stalled_requests(stress: Stress) -> str:
    """Requests whose body never comes hold a stream (and its budget) forever, unless the
    server answers 408 after its 60 s body timeout."""
    def make() -> Raw:
        conn = Raw(stress.port)
        conn.request(UPLOAD, "POST", end_stream=False)
        conn.send()
        return conn

    with stress.watch():
        conns, failed = open_many(stress.sizes.connections, make)
        watch_all(conns, lambda c: bool(c.log.statuses or c.log.resets), 70.0)
    answers = Counter(str(s) for c in conns for s in c.log.statuses.values())
    delays = [t - c.opened_at for c in conns for t in c.log.status_at.values()]
    silent = sum(1 for c in conns if not c.log.statuses and not c.log.resets)
    closed = sum(1 for c in conns if c.closed)
    for conn in conns:
        conn.close()
    return (f"answered: {', '.join(f'{k}: {v}' for k, v in answers.items()) or 'none'} "
            f"of {len(conns)}, {spread(delays)} after opening; no answer within 70 s: "
            f"{silent}; connections closed by the server: {closed}"
            f"{'; ' + failed if failed else ''}")


def slow_reader(stress: Stress) -> str:
    """Downloads the client never reads hold a file and buffers each: the server must reset
    them (60 s send timeout) and let go of the files."""
    per_conn = 100  # under SETTINGS_MAX_CONCURRENT_STREAMS (128)
    asked: dict[Raw, int] = {}  # connection -> streams it opened
    streams = stress.sizes.slow_streams
    for start in range(0, streams, per_conn):
        conn = Raw(stress.port, window=1)
        for _ in range(min(per_conn, streams - start)):
            conn.request(BIG_FILE)
        asked[conn] = min(per_conn, streams - start)
    conns = list(asked)
    fds = {"before": open_fds(stress.pid), "during": 0}

    def sample() -> None:
        fds["during"] = max(fds["during"], open_fds(stress.pid))

    with stress.watch():
        started = time.perf_counter()
        for conn in conns:
            conn.send()
        watch_all(conns, lambda c: len(c.log.resets) >= asked[c] or c.log.goaway is not None,
                  70.0, sample)
        time.sleep(1.0)
        fds["after the resets"] = open_fds(stress.pid)
    resets = Counter(code_name(code) for c in conns for code in c.log.resets.values())
    delays = [t - started for c in conns for t in c.log.reset_at.values()]
    data = sum(sum(c.log.data_bytes.values()) for c in conns)
    for conn in conns:
        conn.close()
    time.sleep(1.0)
    fds["after closing"] = open_fds(stress.pid)
    return (f"RST_STREAM: {', '.join(f'{k}: {v}' for k, v in resets.items()) or 'none'} of "
            f"{streams}, {spread(delays)}; {data} body bytes received; server open files: "
            + ", ".join(f"{k} {v}" for k, v in fds.items()))


def _trailers_without_end(conn: Raw) -> tuple[int, bytes]:
    sid = conn.request(UPLOAD, "POST", end_stream=False)
    conn.h2.send_data(sid, b"hello")
    frame = HeadersFrame(sid, data=conn.h2.encoder.encode([("x-trailer", "1")]))
    frame.flags.add("END_HEADERS")
    return sid, conn.h2.data_to_send() + frame.serialize()


def _self_dependent(conn: Raw) -> tuple[int, bytes]:
    sid = conn.h2.get_next_available_stream_id()
    conn.h2.highest_outbound_stream_id = sid  # h2 refuses to build this HEADERS: we do
    frame = HeadersFrame(sid, data=conn.h2.encoder.encode([
        (":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
        (":path", "/index.html")]), depends_on=sid, stream_weight=15)
    for flag in ("END_HEADERS", "END_STREAM", "PRIORITY"):
        frame.flags.add(flag)
    return sid, conn.h2.data_to_send() + frame.serialize()


def _short_body(conn: Raw) -> tuple[int, bytes]:
    sid = conn.request(UPLOAD, "POST", end_stream=False, extra=[("content-length", "10")])
    conn.h2.send_data(sid, b"12345", end_stream=True)
    return sid, conn.h2.data_to_send()


def _one_too_many(conn: Raw) -> tuple[int, bytes]:
    for _ in range(127):  # with the first GET: SETTINGS_MAX_CONCURRENT_STREAMS, not awaited
        conn.request("/index.html")
    return conn.request("/index.html"), conn.h2.data_to_send()


# (case, what builds it, whether a normal GET follows it on the connection)
STREAM_ERRORS: list[tuple[str, Callable[[Raw], tuple[int, bytes]], bool]] = [
    ("a content-length 10, 5 bytes", _short_body, True),
    ("b trailers without END_STREAM", _trailers_without_end, True),
    ("c depends on itself", _self_dependent, True),
    ("d 129th stream", _one_too_many, False),  # a 130th would be refused too
]


def stream_errors(stress: Stress) -> str:
    """A stream error must cost that stream only (RST_STREAM), not the connection."""
    found = []
    with stress.watch():
        for name, build, trailing in STREAM_ERRORS:
            conn = Raw(stress.port)
            conn.request("/index.html")
            bad, data = build(conn)
            if trailing:
                conn.request("/index.html")
            conn.send(data + conn.h2.data_to_send())  # in order: h2's queue is empty now
            normal = [sid for sid in conn.h2.streams if sid != bad]

            def done(c: Raw, bad: int = bad, normal: list[int] = normal) -> bool:
                answered = bad in c.log.resets or bad in c.log.statuses
                return c.log.goaway is not None or (
                    answered and all(s in c.log.statuses for s in normal))

            conn.read_until(done, 3.0)
            log = conn.log
            what = " then ".join([*([f"status {log.statuses[bad]}"] if bad in log.statuses
                                    else []),
                                  *([f"RST_STREAM {code_name(log.resets[bad])}"]
                                    if bad in log.resets else [])]) or "nothing"
            if log.goaway is not None:
                what += f", GOAWAY {code_name(log.goaway)}"
            answered = sum(s in log.statuses for s in normal)
            found.append(f"{name}: {what}, others answered {answered}/{len(normal)}")
            conn.close()
    return "; ".join(found)


def empty_data(stress: Stress) -> str:
    """Empty DATA frames cost the server a parse each and move nothing: a flood of them
    must be cut off (GOAWAY ENHANCE_YOUR_CALM), not served at full CPU."""
    return _empty_data(stress, UPLOAD)


def empty_data_answered(stress: Stress) -> str:
    """The same flood on a stream the server already answered (405) and reset: frames for
    a closed stream may slip past the counting of the open one."""
    return _empty_data(stress, "/upload")


def _empty_data(stress: Stress, path: str) -> str:
    conn = Raw(stress.port)
    sid = conn.request(path, "POST", end_stream=False)
    conn.send()
    per_write = 7000
    chunk = DataFrame(sid).serialize() * per_write  # 9 bytes each: no flags, no data
    frames = 0
    with stress.watch():
        start = time.perf_counter()
        cpu = servers._cpu_seconds(stress.pid)
        while frames < stress.sizes.empty_frames and time.perf_counter() - start < 10.0:
            if not conn.send(chunk) or not conn.drain() or conn.log.goaway is not None:
                break
            frames += per_write
        stopped = time.perf_counter()
        busy = max(0.0, settle(stress, conn) - stopped)
        conn.close()
        cpu = servers._cpu_seconds(stress.pid) - cpu
    log = conn.log
    closed = conn.closed_at or conn.send_failed_at
    return (f"GOAWAY {code_name(log.goaway)} at {ms(log.goaway_at and log.goaway_at - start)}"
            f" after about {frames:,} frames written in {stopped - start:.1f} s; closed at "
            f"{ms(closed and closed - start)}; server CPU {cpu:.2f} s, busy until "
            f"{busy:.1f} s after the sending stopped")


def settle(stress: Stress, conn: Raw, limit: float = 15.0) -> float:
    """When the server's CPU use fell under 20% (over 250 ms), reading what ``conn`` gets
    meanwhile: how long a backlog already in the server's socket buffers kept it busy."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        before = servers._cpu_seconds(stress.pid)
        conn.read_until(lambda c: False, 0.25)
        if servers._cpu_seconds(stress.pid) - before < 0.05:
            return time.perf_counter() - 0.25
    return time.perf_counter()


def post_static(stress: Stress) -> str:
    """A body sent to a file that takes none (GET/HEAD only) should be refused before it is
    read, not received in full and thrown away."""
    conn = Raw(stress.port)
    conn.read_until(lambda c: c.h2.remote_settings.initial_window_size > 65535, 2.0)
    sent, payload, at_status = 0, bytes(16384), None
    with stress.watch():
        start = time.perf_counter()
        sid = conn.request("/index.html", "POST", end_stream=False,
                           extra=[("content-length", str(100 * MB))])
        conn.send()
        while time.perf_counter() - start < 10.0 and sent < 100 * MB:
            alive = conn.drain()
            if sid in conn.log.statuses:
                at_status = sent
                break
            if not alive or sid in conn.log.resets:
                break
            try:
                room = min(conn.h2.local_flow_control_window(sid), len(payload))
                if room:
                    conn.h2.send_data(sid, payload[:room])
            except h2.exceptions.ProtocolError:
                break
            if not conn.send():
                break
            sent += room
            if not room:
                time.sleep(0.005)
        conn.read_until(lambda c: sid in c.log.statuses and sid in c.log.resets, 2.0)
    log = conn.log
    status = log.statuses.get(sid)
    written = at_status if at_status is not None else sent
    reset = f", RST_STREAM {code_name(log.resets[sid])}" if sid in log.resets else ""
    conn.close()
    return (f"status {status or 'none'} at "
            f"{ms(log.status_at.get(sid, start) - start if status else None)} after the "
            f"HEADERS (the client had written {written:,} body bytes when it read it){reset}")

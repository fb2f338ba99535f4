"""Open COUNT idle TLS + HTTP/2 connections to 127.0.0.1:PORT and keep them open.

    python bench/idle_connections.py PORT COUNT

Each connection completes the TLS handshake (ALPN h2), sends the client preface and
SETTINGS and reads the server's SETTINGS; then it sends nothing more. Connections are opened
in batches (TCP connects first, then the handshakes), so a listen backlog of 256 is never
overrun. Protocol on stdout, one line each:

    opened N FAILED [first error]   once every connection was tried
    alive N                         after a line arrives on stdin: connections that answered
                                    a PING; then every connection is closed
"""

from __future__ import annotations

import resource
import socket
import sys

import repo_path  # noqa: F401 - the repository root on sys.path, for tests.*

from tests.server.h2client import HOST, H2Client, client_context

BATCH = 50


def raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main() -> None:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    raise_file_limit(count + 256)
    context = client_context()
    connections: list[H2Client] = []
    failed, first_error = 0, ""
    for start in range(0, count, BATCH):
        sockets = []
        for _ in range(min(BATCH, count - start)):
            try:
                sockets.append(socket.create_connection((HOST, port), timeout=10))
            except OSError as exc:
                failed += 1
                first_error = first_error or f"connect: {exc}"
        for sock in sockets:
            try:
                connections.append(H2Client(port, context=context, sock=sock,
                                            handshake=True, track_frames=False))
            except (OSError, ConnectionError) as exc:
                failed += 1
                first_error = first_error or f"handshake: {exc}"
                sock.close()
    print(f"opened {len(connections)} {failed} {first_error}".rstrip(), flush=True)
    sys.stdin.readline()
    alive = 0
    for connection in connections:
        try:
            connection.ping(b"h2wbench", wait=True)
            alive += 1
        except (OSError, ConnectionError):
            pass
    print(f"alive {alive}", flush=True)
    for connection in connections:
        connection.close(goaway=True)


if __name__ == "__main__":
    main()

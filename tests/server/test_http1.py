"""HTTP/1.1 beside HTTP/2 on the same port (RFC 9112): real clients (curl --http1.1,
urllib, httpx without http2, h2load --h1), raw sockets for keep-alive, pipelining, chunked
bodies, 100-continue, bad framing and request smuggling; plain HTTP gets a redirect."""

from __future__ import annotations

import hashlib
import json
import ssl
import subprocess
import urllib.request
from typing import Any

import httpx
import pytest

from hyper2web.server.protocol import h1plain
from hyper2web.server.protocol.h11proto import H11Protocol
from tests.server.apps import make_app
from tests.server.h1raw import H1Raw, request
from tests.server.h2client import h2_get, tls_connect
from tests.support import need_tool

BODY = b"0123456789" * 1000


def test_alpn_prefers_h2_and_offers_http11(server: Any) -> None:
    for offer, chosen in ((["h2", "http/1.1"], "h2"), (["http/1.1", "h2"], "h2"),
                          (["http/1.1"], "http/1.1")):
        with tls_connect(server.port, alpn=offer) as sock:
            assert sock.selected_alpn_protocol() == chosen


def test_curl_http11_gets_files_and_handlers(server: Any) -> None:
    need_tool("curl")
    base = f"https://127.0.0.1:{server.port}"
    page = subprocess.run(["curl", "-sk", "--http1.1", "-w", "%{http_version} %{http_code}",
                           base + "/index.html"], capture_output=True, text=True, timeout=20)
    assert page.stdout.endswith("1.1 200"), page.stdout + page.stderr
    assert "<title>ok</title>" in page.stdout
    posted = subprocess.run(["curl", "-sk", "--http1.1", "--data-binary", "hello",
                             base + "/sha256"], capture_output=True, text=True, timeout=20)
    assert json.loads(posted.stdout)["sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_urllib_and_httpx_without_http2(server: Any) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{server.port}"
    with urllib.request.urlopen(url + "/echo/urllib", context=ctx, timeout=10) as answer:
        assert answer.status == 200 and answer.read() == b"urllib"
    with httpx.Client(http1=True, http2=False, verify=False, timeout=10) as client:
        for _ in range(3):  # one kept-alive connection
            response = client.get(url + "/fast")
            assert response.http_version == "HTTP/1.1"
            assert response.status_code == 200 and response.text == "fast"
        big = client.get(url + "/medium.bin")
        assert hashlib.sha256(big.content).hexdigest() == server.site.medium_sha256
        ranged = client.get(url + "/medium.bin", headers={"range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == server.site.medium[10:20]
        missing = client.get(url + "/nope.txt")
        assert missing.status_code == 404 and missing.reason_phrase == "Not Found"
        head = client.head(url + "/medium.bin")
        assert head.headers["content-length"] == str(len(server.site.medium))
        assert head.content == b""


def test_h2load_h1(server: Any) -> None:
    need_tool("h2load")
    done = subprocess.run(["h2load", "--h1", "-n", "200", "-c", "4",
                           f"https://127.0.0.1:{server.port}/fast"],
                          capture_output=True, text=True, timeout=60)
    assert "200 succeeded, 0 failed" in done.stdout.replace("  ", " ") or \
        "succeeded, 0 failed" in done.stdout, done.stdout + done.stderr
    assert "Application protocol: http/1.1" in done.stdout


def test_keep_alive_and_pipelined_requests_in_order(server: Any) -> None:
    with H1Raw(server.port) as client:
        client.send(request("GET", "/sleep/200") + request("GET", "/echo/second")
                    + request("GET", "/fast"))
        answers = [client.response() for _ in range(3)]
        assert [a.body for a in answers] == [b"slept 200", b"second", b"fast"]
        assert all(a.status == 200 for a in answers)
        client.send(request("GET", "/fast"))  # the connection is still open
        assert client.response().body == b"fast"


def test_plain_requests_are_answered_without_h11(server: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain GETs and HEADs (``h1plain``) and the requests h11 reads, pipelined on one
    connection, get the same answers; only the plain ones skip h11's parsing (``/fast``
    is answered through h11, which takes over when the answer is not a prepared one)."""
    plain: list[bytes] = []
    made = h1plain.PlainAnswer.__init__

    def counted(answer: h1plain.PlainAnswer, head: bytes, bodiless: bool) -> None:
        plain.append(head.split(b" ", 2)[1])
        made(answer, head, bodiless)

    monkeypatch.setattr(h1plain.PlainAnswer, "__init__", counted)
    with H1Raw(server.port) as client:
        client.send(request("GET", "/index.html") + request("GET", "/fast")
                    + request("HEAD", "/index.html")
                    + request("GET", "/index.html", "Connection: keep-alive"))
        answers = [client.response(head_only=n == 2) for n in range(4)]
        # Once h11 has read a request, what came with it is h11's; then plain again.
        client.send(request("GET", "/nope.txt") + request("GET", "/index.html"))
        answers += [client.response(), client.response()]
    page = (server.site.root / "index.html").read_bytes()
    assert [a.status for a in answers] == [200, 200, 200, 200, 404, 200]
    assert [a.body for a in answers] == [page, b"fast", b"", page, answers[4].body, page]
    assert answers[0].headers == answers[2].headers == answers[3].headers \
        == answers[5].headers
    expected = [b"/index.html", b"/fast", b"/index.html", b"/nope.txt", b"/index.html"]
    assert plain == (expected if H11Protocol.plain_requests else [])


def test_chunked_request_body(server: Any) -> None:
    chunks = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    with H1Raw(server.port) as client:
        client.send(request("POST", "/sha256", "Transfer-Encoding: chunked", body=chunks))
        answer = client.response()
        assert answer.status == 200
        assert json.loads(answer.body)["sha256"] == hashlib.sha256(b"hello world").hexdigest()


def test_expect_100_continue(server: Any) -> None:
    with H1Raw(server.port) as client:
        client.send(request("POST", "/sha256", "Content-Length: 5", "Expect: 100-continue"))
        interim = client.response()
        assert interim.status == 100
        client.send(b"hello")
        final = client.response()
        assert final.status == 200 and json.loads(final.body)["length"] == 5


@pytest.mark.parametrize("raw, status", [
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /fast HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /sha256 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
     b"Content-Length: 4\r\n\r\nabcd", 400),
    (b"POST /sha256 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     501),
    (b"GET /fast HTTP/1.1\r\nHost: localhost\r\nbad header\r\n\r\n", 400),
    (b"GET /fast HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
], ids=["two hosts", "content-length and chunked (smuggling)", "two content-lengths",
        "unknown coding before chunked", "no colon", "oversized head", "garbage"])
def test_bad_framing_gets_an_error_and_close(server: Any, raw: bytes, status: int) -> None:
    with H1Raw(server.port) as client:
        client.send(raw)
        answer = client.response()
        assert answer.status == status
        assert answer.header("connection") == "close"
        assert client.closed()
    assert h2_get(server.port, "/fast").status == 200


def test_a_smuggled_request_is_never_answered(server: Any) -> None:
    """The classic CL.TE attack: the hidden second request must not be served."""
    smuggled = (b"POST /sha256 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 44\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\n"
                b"Host: localhost\r\n\r\n")
    with H1Raw(server.port) as client:
        client.send(smuggled)
        answer = client.response()
        assert answer.status == 400
        assert client.closed()
        assert b"smuggled" not in answer.body


def test_http1_post_to_a_static_path_is_405_without_the_body(server: Any) -> None:
    with H1Raw(server.port) as client:
        client.send(request("POST", "/index.html", "Content-Length: 104857600"))
        answer = client.response()
        assert answer.status == 405 and answer.header("allow") == "GET, HEAD"


def test_plain_http_is_redirected_to_https(server: Any) -> None:
    with H1Raw(server.port, tls=False) as client:
        client.send(b"GET /docs/page?x=1 HTTP/1.1\r\nHost: localhost:" +
                    str(server.port).encode() + b"\r\n\r\n")
        answer = client.response()
        assert answer.status == 308
        location = f"https://localhost:{server.port}/docs/page?x=1"
        assert answer.header("location") == location
        assert location.encode() in answer.body and b"<a href=" in answer.body
    need_tool("curl")
    done = subprocess.run(["curl", "-skL", f"http://127.0.0.1:{server.port}/echo/followed"],
                          capture_output=True, text=True, timeout=20)
    assert done.stdout == "followed"


def test_http2_only_restores_the_old_behaviour(serve_app, big_site) -> None:
    running = serve_app(make_app(big_site.root, http1=False))
    with tls_connect(running.port, alpn=["http/1.1"]) as sock:
        assert sock.selected_alpn_protocol() is None
        sock.settimeout(5)
        assert sock.recv(100) == b""  # closed without an answer
    assert h2_get(running.port, "/fast").status == 200


def test_a_body_over_the_limit_is_413_before_100_continue(serve_app, big_site) -> None:
    running = serve_app(make_app(big_site.root, max_body_size=1000))
    with H1Raw(running.port) as client:
        client.send(request("POST", "/sha256", "Content-Length: 5000", "Expect: 100-continue"))
        answer = client.response()
        assert answer.status == 413  # no 100 Continue first: the body is never wanted
        assert answer.header("connection") == "close"


def test_the_absolute_form_is_served(server: Any) -> None:
    with H1Raw(server.port) as client:
        client.send(b"GET https://localhost/echo/absolute HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = client.response()
        assert answer.status == 200 and answer.body == b"absolute"


def test_the_redirect_takes_only_a_plain_host(server: Any) -> None:
    with H1Raw(server.port, tls=False) as client:
        client.send(b"GET /x HTTP/1.1\r\nHost: localhost:5000@evil.example\r\n\r\n")
        answer = client.response()
        assert answer.status == 308
        assert answer.header("location") == f"https://localhost:{server.port}/x"


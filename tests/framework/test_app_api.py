"""The original Hyper2Web API and what was added to it, over a real HTTP/2 connection."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import httpx
import pytest

from hyper2web import HTTPError, app
from hyper2web.exceptions import ResponseAlreadySent
from tests.framework.rawpath import raw_request

IDENTITY = {"accept-encoding": "identity"}


def new_app(root: Path, **kwargs) -> app.App:
    """An App as the original documentation builds one, all five arguments spelled out."""
    kwargs.setdefault("address", "localhost")
    kwargs.setdefault("auto_serve_static_file", True)
    kwargs.setdefault("default_file", "index.html")
    return app.App(port=0, root=str(root), **kwargs)


# -- registering: call form, decorator form, leading slash --------------------------------


def test_every_method_in_call_form(serve_app, site, client) -> None:
    web = new_app(site)

    def answer(text):
        async def handler(request, response):
            await response.send(text.encode())
        return handler

    assert web.get("thing", answer("got")) is not None
    web.post("thing", answer("posted"))
    web.put("thing", answer("put"))
    web.patch("thing", answer("patched"))
    web.delete("thing", answer("deleted"))
    server = serve_app(web)
    for method, text in [("GET", "got"), ("POST", "posted"), ("PUT", "put"),
                         ("PATCH", "patched"), ("DELETE", "deleted")]:
        r = client.request(method, server.url + "/thing")
        assert r.status_code == 200, method
        assert r.http_version == client.version
        assert r.text == text


def test_every_method_as_decorator(serve_app, site, client) -> None:
    web = new_app(site)

    @web.get("deco")
    async def get_deco(request, response):
        await response.send(b"get")

    @web.post("/deco")
    async def post_deco(request, response):
        await response.send(b"post " + request.stream.data)

    @web.put("deco")
    async def put_deco(request, response):
        await response.send(b"put")

    @web.patch("deco")
    async def patch_deco(request, response):
        await response.send(b"patch")

    @web.delete("deco")
    async def delete_deco(request, response):
        await response.send(b"delete")

    assert get_deco.__name__ == "get_deco"  # the decorator hands the function back
    assert callable(delete_deco)
    server = serve_app(web)
    assert client.get(server.url + "/deco").text == "get"
    assert client.post(server.url + "/deco", content=b"x").text == "post x"
    assert client.put(server.url + "/deco").text == "put"
    assert client.patch(server.url + "/deco").text == "patch"
    assert client.delete(server.url + "/deco").text == "delete"


def test_leading_slash_makes_no_difference(serve_app, site, client) -> None:
    web = new_app(site)

    async def a(request, response):
        await response.send(b"a")

    async def b(request, response):
        await response.send(b"b")

    web.get("top10", a)
    web.get("/top11", b)
    server = serve_app(web)
    assert client.get(server.url + "/top10").text == "a"
    assert client.get(server.url + "/top11").text == "b"


def test_route_wins_over_a_file_of_the_same_name(serve_app, site, client) -> None:
    web = new_app(site)

    @web.get("style.css")
    async def style(request, response):
        await response.send(b"from the route")

    server = serve_app(web)
    assert client.get(server.url + "/style.css").text == "from the route"
    assert client.get(server.url + "/app.js", headers=IDENTITY).text == \
        (site / "app.js").read_text()


# -- request -------------------------------------------------------------------------------


def test_route_parameters_in_para_and_params(serve_app, site, client) -> None:
    web = new_app(site)
    seen = {}

    @web.get("user/{userId}/name/{name}")
    async def user(request, response):
        seen["para"] = dict(request.para)
        seen["params"] = dict(request.params)
        await response.send(f"{request.para['userId']}:{request.para['name']}".encode())

    server = serve_app(web)
    r = client.get(server.url + "/user/abc/name/Albert%20W")
    assert r.text == "abc:Albert W"
    assert seen["para"] == seen["params"] == {"userId": "abc", "name": "Albert W"}
    assert client.get(server.url + "/user/abc/name").status_code == 404


def test_stream_headers_and_whole_body(serve_app, site, client) -> None:
    web = new_app(site)
    seen = {}

    @web.post("upload")
    async def upload(request, response):
        seen["headers"] = dict(request.stream.headers)
        seen["data"] = request.stream.data
        await response.send(str(len(request.stream.data)).encode())

    server = serve_app(web)
    body = bytes(range(256)) * 1200  # 300 KB: several DATA frames and window updates
    r = client.post(server.url + "/upload?x=1", content=body, headers={"X-Test": "yes"})
    assert r.status_code == 200
    assert r.text == str(len(body))
    assert isinstance(seen["data"], bytes)
    assert seen["data"] == body
    assert seen["headers"]["x-test"] == "yes"
    assert seen["headers"][":method"] == "POST"
    assert seen["headers"][":path"] == "/upload?x=1"


def test_request_method_path_query_headers(serve_app, site, client) -> None:
    web = new_app(site)
    seen = {}

    @web.get("search/{kind}")
    async def search(request, response):
        seen.update(method=request.method, path=request.path, query=dict(request.query),
                    agent=request.headers.get("user-agent"),
                    custom=request.headers.get("x-custom"))
        await response.send(b"ok")

    server = serve_app(web)
    r = client.get(server.url + "/search/books?q=h2%20server&page=2&empty=",
                   headers={"X-Custom": "1"})
    assert r.status_code == 200
    assert seen == {"method": "GET", "path": "/search/books",
                    "query": {"q": "h2 server", "page": "2", "empty": ""},
                    "agent": client.headers["user-agent"], "custom": "1"}


def test_request_json_and_send_json(serve_app, site, client) -> None:
    web = new_app(site)

    @web.post("echo")
    async def echo(request, response):
        data = await request.json()
        await response.send_json({"got": data, "n": len(data["items"])}, status=201)

    server = serve_app(web)
    r = client.post(server.url + "/echo", json={"items": [1, 2, "é"]})
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["content-length"] == str(len(r.content))
    assert r.json() == {"got": {"items": [1, 2, "é"]}, "n": 3}


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b'{"a": 1'])
def test_bad_json_is_400(serve_app, site, client, body) -> None:
    web = new_app(site)
    called = []

    @web.post("echo")
    async def echo(request, response):
        data = await request.json()
        called.append(data)
        await response.send_json(data)

    server = serve_app(web)
    r = client.post(server.url + "/echo", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert called == []


# -- response --------------------------------------------------------------------------------


def test_send_bytes_sets_content_length(serve_app, site, client) -> None:
    web = new_app(site)

    @web.get("bytes")
    async def raw(request, response):
        await response.send(b"\x00\x01binary\xff")

    @web.get("nothing")
    async def nothing(request, response):
        await response.send(b"")

    server = serve_app(web)
    r = client.get(server.url + "/bytes")
    assert r.content == b"\x00\x01binary\xff"
    assert r.headers["content-length"] == "9"
    r = client.get(server.url + "/nothing")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"


def test_send_str_is_utf8(serve_app, site, client) -> None:
    web = new_app(site)

    @web.get("text")
    async def text(request, response):
        await response.send("some data é")

    server = serve_app(web)
    r = client.get(server.url + "/text")
    assert r.status_code == 200
    assert r.content == "some data é".encode()
    assert r.headers["content-length"] == str(len("some data é".encode()))
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("value", [{"a": 1}, 42, None, ["x"]])
def test_send_of_other_types_is_a_500_and_a_clear_log(serve_app, site, client, caplog,
                                                       value) -> None:
    web = new_app(site)

    @web.get("wrong")
    async def wrong_type(request, response):
        await response.send(value)

    server = serve_app(web)
    with caplog.at_level(logging.INFO, logger="hyper2web"):
        r = client.get(server.url + "/wrong")
    assert r.status_code == 500
    errors = [rec for rec in caplog.records if rec.exc_info]
    assert len(errors) == 1
    assert errors[0].exc_info[0] is TypeError
    assert "wrong_type" in errors[0].getMessage()
    assert f"not {type(value).__name__}" in str(errors[0].exc_info[1])
    assert "TypeError" in caplog.text


def test_send_text(serve_app, site, client) -> None:
    web = new_app(site)

    @web.get("t")
    async def t(request, response):
        await response.send_text("héllo", status=202)

    server = serve_app(web)
    r = client.get(server.url + "/t")
    assert r.status_code == 202
    assert r.text == "héllo"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == str(len("héllo".encode()))


def test_send_file(serve_app, site, client, tmp_path) -> None:
    private = tmp_path / "report.json"
    private.write_text('{"ok": true}')
    web = new_app(site)

    @web.get("report")
    async def report(request, response):
        await response.send_file(str(private))

    @web.get("page")
    async def page(request, response):
        await response.send_file(site / "docs" / "index.html")

    @web.get("missing")
    async def missing(request, response):
        await response.send_file(str(tmp_path / "nope.bin"))

    server = serve_app(web)
    r = client.get(server.url + "/report")
    assert r.status_code == 200
    assert r.json() == {"ok": True}
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["content-length"] == str(private.stat().st_size)
    r = client.get(server.url + "/page")
    assert r.text == (site / "docs" / "index.html").read_text()
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert client.get(server.url + "/missing").status_code == 404


def test_send_file_large(serve_app, site, client, tmp_path) -> None:
    blob = bytes(range(251)) * 4000  # ~1 MB: streamed in chunks
    (tmp_path / "big.bin").write_bytes(blob)
    web = new_app(site)

    @web.get("big")
    async def big(request, response):
        await response.send_file(str(tmp_path / "big.bin"))

    server = serve_app(web)
    r = client.get(server.url + "/big")
    assert r.headers["content-length"] == str(len(blob))
    assert r.content == blob


@pytest.mark.parametrize("code", [200, 201, 204, 404, 418])
def test_send_status_code(serve_app, site, client, code) -> None:
    web = new_app(site)

    @web.delete("item/{id}")
    async def remove(request, response):
        await response.send_status_code(code)

    server = serve_app(web)
    r = client.delete(server.url + "/item/3")
    assert r.status_code == code
    assert r.content == b""


def test_set_header_set_headers_update_headers(serve_app, site, client) -> None:
    web = new_app(site)

    @web.get("one")
    async def one(request, response):
        response.set_header("X-Number", 5)
        response.set_header("Content-Type", "text/csv")
        await response.send(b"a,b")

    @web.get("replaced")
    async def replaced(request, response):
        response.set_header("x-gone", "1")
        response.set_headers({"x-a": "1", "x-b": "2"})
        await response.send(b"r")

    @web.get("updated")
    async def updated(request, response):
        response.set_header("x-kept", "1")
        response.update_headers({"x-a": "1"})
        response.update_headers([("x-b", "2"), ("x-a", "3")])
        await response.send(b"u")

    server = serve_app(web)
    r = client.get(server.url + "/one")
    assert r.headers["x-number"] == "5"
    assert r.headers["content-type"] == "text/csv"
    r = client.get(server.url + "/replaced")
    assert "x-gone" not in r.headers
    assert (r.headers["x-a"], r.headers["x-b"]) == ("1", "2")
    assert r.headers["content-length"] == "1"
    r = client.get(server.url + "/updated")
    assert (r.headers["x-kept"], r.headers["x-a"], r.headers["x-b"]) == ("1", "3", "2")


def test_http_error(serve_app, site, client, caplog) -> None:
    web = new_app(site)

    @web.get("teapot")
    async def teapot(request, response):
        raise HTTPError(418, "short and <stout>")

    @web.get("forbidden")
    async def forbidden(request, response):
        raise HTTPError(403)

    server = serve_app(web)
    with caplog.at_level(logging.INFO, logger="hyper2web"):
        r = client.get(server.url + "/teapot")
        assert client.get(server.url + "/forbidden").status_code == 403
    assert r.status_code == 418
    assert "short and &lt;stout&gt;" in r.text
    assert r.headers["content-length"] == str(len(r.content))
    assert not [rec for rec in caplog.records if rec.exc_info]


# -- handler mistakes ---------------------------------------------------------------------------


def test_handler_exception_is_500_and_one_traceback(serve_app, site, client, caplog) -> None:
    web = new_app(site)

    @web.get("boom")
    async def explode(request, response):
        response.set_header("x-half-done", "1")
        raise RuntimeError("kaboom-1234")

    server = serve_app(web)
    with caplog.at_level(logging.DEBUG, logger="hyper2web"):
        r = client.get(server.url + "/boom")
        again = client.get(server.url + "/index.html", headers=IDENTITY)
    assert r.status_code == 500
    assert "x-half-done" not in r.headers
    assert "kaboom-1234" not in r.text  # the page shows no internals
    assert again.status_code == 200  # the server lives on
    tracebacks = [rec for rec in caplog.records if rec.exc_info]
    assert len(tracebacks) == 1
    assert tracebacks[0].name == "hyper2web"
    assert tracebacks[0].exc_info[0] is RuntimeError
    assert "explode" in tracebacks[0].getMessage()
    assert caplog.text.count("Traceback") == 1
    assert caplog.text.count("RuntimeError: kaboom-1234") == 1


def test_handler_without_response_is_500_naming_it(serve_app, site, client, caplog) -> None:
    web = new_app(site)

    @web.get("silent")
    async def forgot_to_answer(request, response):
        return None

    server = serve_app(web)
    with caplog.at_level(logging.INFO, logger="hyper2web"):
        r = client.get(server.url + "/silent")
    assert r.status_code == 500
    named = [rec for rec in caplog.records if "forgot_to_answer" in rec.getMessage()]
    assert len(named) == 1
    assert named[0].levelno >= logging.ERROR


def test_other_method_on_a_route_is_405(serve_app, site, client) -> None:
    web = new_app(site)

    @web.post("form")
    async def form(request, response):
        await response.send(b"ok")

    @web.get("page")
    async def page(request, response):
        await response.send(b"page")

    @web.put("page")
    async def put_page(request, response):
        await response.send(b"put")

    server = serve_app(web)
    r = client.get(server.url + "/form")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    r = client.delete(server.url + "/page")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD, PUT"


def test_get_route_answers_head(serve_app, site, client) -> None:
    web = new_app(site)
    calls = []

    @web.get("data")
    async def data(request, response):
        calls.append(request.method)
        response.set_header("x-data", "1")
        await response.send(b"twelve bytes")

    server = serve_app(web)
    r = client.head(server.url + "/data")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "12"
    assert r.headers["x-data"] == "1"
    assert calls == ["HEAD"]


def test_routes_work_with_static_serving_off(serve_app, site, client) -> None:
    web = new_app(site, auto_serve_static_file=False)

    @web.get("api")
    async def api(request, response):
        await response.send_json([1])

    server = serve_app(web)
    assert client.get(server.url + "/api").json() == [1]
    for path in ("/", "/index.html", "/style.css"):
        assert client.get(server.url + path).status_code == 404, path


def test_many_requests_on_one_connection(serve_app, site, client) -> None:
    web = new_app(site)

    @web.get("n/{i}")
    async def n(request, response):
        await response.send(request.para["i"].encode())

    server = serve_app(web)
    for i in range(50):
        assert client.get(f"{server.url}/n/{i}").text == str(i)


# -- binding -----------------------------------------------------------------------------------


def test_default_address_is_localhost_only(serve_app, site, client) -> None:
    web = app.App(root=str(site))
    assert web.address == "localhost"
    server = serve_app(web)
    addresses = {s.getsockname()[0] for s in web.server.sockets}
    assert addresses
    assert addresses <= {"127.0.0.1", "::1"}
    assert "0.0.0.0" not in addresses and "::" not in addresses
    r = client.get(f"https://127.0.0.1:{server.port}/", headers=IDENTITY)
    assert r.status_code == 200
    assert r.text == (site / "index.html").read_text()


def _non_loopback_ipv4() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_default_address_is_not_reachable_from_outside(serve_app, site) -> None:
    outside = _non_loopback_ipv4()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    server = serve_app(app.App(root=str(site)))
    with pytest.raises(OSError):
        socket.create_connection((outside, server.port), timeout=2).close()


def test_all_interfaces_when_asked(serve_app, site, client) -> None:
    web = app.App(address="0.0.0.0", root=str(site))
    server = serve_app(web)
    assert {s.getsockname()[0] for s in web.server.sockets} == {"0.0.0.0"}
    r = client.get(f"https://127.0.0.1:{server.port}/", headers=IDENTITY)
    assert r.status_code == 200
    assert r.text == (site / "index.html").read_text()
    assert web.url == f"https://localhost:{server.port}/"


def test_json_body_of_send_json_is_compact_utf8(serve_app, site) -> None:
    web = new_app(site)

    @web.get("j")
    async def j(request, response):
        await response.send_json({"name": "é", "list": [1, 2]})

    server = serve_app(web)
    with httpx.Client(http2=True, verify=False) as c:
        r = c.get(server.url + "/j")
    assert r.http_version == "HTTP/2"
    assert json.loads(r.content.decode("utf-8")) == {"name": "é", "list": [1, 2]}


# -- mistakes after the response started ---------------------------------------------------


def test_failure_after_start_resets_the_stream(serve_app, site, client, caplog) -> None:
    web = new_app(site)

    @web.get("partial")
    async def half_way(request, response):
        await response.start()
        await response.write(b"part of a body")
        raise RuntimeError("failed mid-body")

    server = serve_app(web)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="hyper2web"):
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(server.url + "/partial")
        elapsed = time.monotonic() - started
        assert client.get(server.url + "/style.css").status_code == 200
    assert elapsed < 3, "the client was left waiting for the end of the stream"
    tracebacks = [rec for rec in caplog.records if rec.exc_info]
    assert len(tracebacks) == 1
    assert tracebacks[0].exc_info[0] is RuntimeError
    assert "half_way" in tracebacks[0].getMessage()


def test_http_error_after_start_resets_the_stream(serve_app, site, client, caplog) -> None:
    web = new_app(site)

    @web.get("late")
    async def too_late(request, response):
        await response.start()
        raise HTTPError(400, "too late for a status")

    server = serve_app(web)
    with caplog.at_level(logging.DEBUG, logger="hyper2web"), \
            pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url + "/late")
    named = [rec for rec in caplog.records if "too_late" in rec.getMessage()]
    assert len(named) == 1
    assert named[0].levelno >= logging.ERROR
    assert len([rec for rec in caplog.records if rec.exc_info]) <= 1


def test_second_send_keeps_the_first_response(serve_app, site, client, caplog) -> None:
    web = new_app(site)

    @web.get("twice")
    async def send_twice(request, response):
        await response.send(b"first")
        await response.send(b"second")

    server = serve_app(web)
    with caplog.at_level(logging.DEBUG, logger="hyper2web"):
        r = client.get(server.url + "/twice")
    assert r.status_code == 200
    assert r.content == b"first"
    # The second send fails after the first answer has left (over HTTP/1.1 it is written
    # at once), so its log line may follow the client's read.
    deadline = time.monotonic() + 5
    while not [rec for rec in caplog.records if rec.exc_info] and time.monotonic() < deadline:
        time.sleep(0.01)
    tracebacks = [rec for rec in caplog.records if rec.exc_info]
    assert len(tracebacks) == 1
    assert tracebacks[0].exc_info[0] is ResponseAlreadySent
    assert "send_twice" in tracebacks[0].getMessage()


@pytest.mark.parametrize("code", [204, 304])
def test_no_content_length_on_bodiless_statuses(serve_app, site, code) -> None:
    web = new_app(site)

    @web.get("empty")
    async def empty(request, response):
        await response.send_status_code(code)

    server = serve_app(web)
    r = raw_request(server.port, "/empty")
    assert r.status == code
    assert "content-length" not in r.headers
    assert r.body == b""


# -- routes with characters that travel percent-encoded ------------------------------------


@pytest.mark.parametrize("registered", ["café", "/café", "/caf%C3%A9", "/caf%c3%a9"])
@pytest.mark.parametrize("sent", ["/caf%C3%A9", "/caf%c3%a9", "/caf%C3%a9"])
def test_non_ascii_routes(serve_app, site, registered, sent) -> None:
    web = new_app(site)

    async def cafe(request, response):
        await response.send(b"coffee")

    web.get(registered, cafe)
    server = serve_app(web)
    r = raw_request(server.port, sent)
    assert (r.status, r.body) == (200, b"coffee")


def test_routes_with_spaces_and_parameters(serve_app, site, client) -> None:
    web = new_app(site)

    @web.get("my page/{name}")
    async def page(request, response):
        await response.send(request.para["name"].encode())

    @web.get("/menü/{item}/preis")
    async def price(request, response):
        await response.send(request.para["item"].encode())

    server = serve_app(web)
    r = client.get(server.url + "/my%20page/J%C3%BCrgen")
    assert (r.status_code, r.text) == (200, "Jürgen")
    r = client.get(server.url + "/men%C3%BC/k%C3%A4se/preis")
    assert (r.status_code, r.text) == (200, "käse")
    r = client.get(server.url + "/men%C3%BC/a%2Fb/preis")
    assert (r.status_code, r.text) == (200, "a/b")


def test_unreserved_characters_may_arrive_encoded(serve_app, site) -> None:
    web = new_app(site)

    @web.get("top10")
    async def top10(request, response):
        await response.send(b"some data")

    server = serve_app(web)
    r = raw_request(server.port, "/%74op10")
    assert (r.status, r.body) == (200, b"some data")


def test_empty_post_body_is_empty_bytes(serve_app, site, client) -> None:
    web = new_app(site)
    seen = []

    @web.post("empty")
    async def empty(request, response):
        seen.append(request.stream.data)
        await response.send(b"ok")

    server = serve_app(web)
    assert client.post(server.url + "/empty").text == "ok"
    assert seen == [b""]


def test_missing_root_stops_up_with_one_line(tmp_path, cert_pair, caplog, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    web = app.App(port=0, root=str(tmp_path / "no-such-folder"), certfile=cert_pair[0],
                  keyfile=cert_pair[1])
    with caplog.at_level(logging.INFO, logger="hyper2web"), pytest.raises(SystemExit) as exc:
        web.up()
    assert exc.value.code == 1
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "no-such-folder" in errors[0].getMessage()
    assert not errors[0].exc_info

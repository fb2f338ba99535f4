"""The event stream: ``GET /__hyper2web__/events``, as browsers subscribe to it.

Tests that take ``subscribe`` or ``client`` run over HTTP/2 and over HTTP/1.1 (where the
stream is a chunked body); ``events`` is a raw HTTP/2 connection.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from hyper2web.reload import LiveReload
from tests.reload.livekit import (
    CLIENT_PATH,
    EVENT_TIMEOUT,
    EVENTS_PATH,
    SCRIPT_TAG,
    EventStream,
    HttpxEventStream,
    edit,
    prime_site,
    wait_until,
)

Serve = Callable[..., Any]
Events = Callable[..., EventStream]
Subscribe = Callable[..., HttpxEventStream]


def test_page_and_events_share_one_http2_connection(serve: Serve, events: Events) -> None:
    server = serve()
    stream = events(server.port)
    client = stream.client
    # The page on the same connection, while the event stream stays open.
    page = client.get("/", timeout=5)
    assert page.status == 200
    assert SCRIPT_TAG.encode() in page.body
    headers = stream.headers()
    assert headers[":status"] == "200"
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-store"
    assert page.stream_id != stream.sid and client.streams[page.stream_id] is page
    assert not stream.stream.done, "the event stream ended with the page"

    hello = stream.next()
    assert hello.kind == "hello"
    assert re.fullmatch(r"[0-9a-f]{12}", hello.data["id"]), hello.data
    assert "error" not in hello.data
    assert stream.parser.retry == 500
    # A second page request on the same connection still works with the stream open.
    assert client.get("/style.css", timeout=5).status == 200


def test_the_event_stream_answer(serve: Serve, subscribe: Subscribe,
                                 client: httpx.Client) -> None:
    server = serve()
    stream = subscribe(server.url)
    assert stream.status == 200
    headers = stream.headers()
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-store"
    if stream.protocol == "HTTP/1.1":
        assert headers.get("transfer-encoding") == "chunked", headers
        assert "content-length" not in headers
    hello = stream.next()
    assert hello.kind == "hello"
    assert re.fullmatch(r"[0-9a-f]{12}", hello.data["id"]), hello.data
    assert "error" not in hello.data
    assert stream.parser.retry == 500
    assert not stream.done, "the event stream ended after its first event"
    # Pages load meanwhile (on another connection over HTTP/1.1), with the script in them.
    page = client.get(server.url + "/")
    assert page.status_code == 200 and SCRIPT_TAG in page.text
    assert client.get(server.url + "/style.css").status_code == 200
    assert not stream.done


def test_css_edit_sends_css_event(serve: Serve, subscribe: Subscribe, project: Path) -> None:
    server = serve()
    stream = subscribe(server.url)
    assert stream.next().kind == "hello"
    prime_site(stream, project / "public")
    edit(project / "public" / "style.css", "#t { color: blue; }\n")
    event = stream.next(EVENT_TIMEOUT)
    assert (event.kind, event.data) == ("css", {"paths": ["/style.css"]})


def test_html_edit_sends_reload_with_the_folder_url(serve: Serve, subscribe: Subscribe,
                                                    project: Path) -> None:
    server = serve()
    stream = subscribe(server.url)
    stream.next()
    prime_site(stream, project / "public")
    edit(project / "public" / "index.html", "<p>two</p>")
    event = stream.next(EVENT_TIMEOUT)
    assert event.kind == "reload"
    assert sorted(event.paths) == ["/", "/index.html"]

    # index.html of a sub folder also names the folder's URL. The folder is created first
    # and its own event awaited: a file written into a folder the watcher has not started
    # watching yet may not be reported on its own (the folder's event reloads the page).
    (project / "public" / "docs").mkdir()
    stream.until(lambda e: any(p.startswith("/docs") for p in e.paths))
    edit(project / "public" / "docs" / "index.html", "<p>docs</p>")
    event = stream.until(lambda e: "/docs/index.html" in e.paths)
    assert event.kind == "reload" and "/docs/" in event.paths


def test_js_edit_reloads_and_css_with_html_reloads(serve: Serve, subscribe: Subscribe,
                                                   project: Path) -> None:
    server = serve()
    stream = subscribe(server.url)
    stream.next()
    prime_site(stream, project / "public")
    edit(project / "public" / "app.js", "console.log(2);\n")
    event = stream.next()
    assert (event.kind, event.paths) == ("reload", ["/app.js"])
    # A stylesheet saved together with a page: the page must reload.
    edit(project / "public" / "style.css", "#t { color: green; }\n")
    edit(project / "public" / "hello.txt", "changed\n")
    kinds = {stream.next().kind}
    # The two saves may come as one batch or two; a lone css event must not be all.
    more = stream.silent_for(0.5)
    kinds |= {e.kind for e in more}
    assert "reload" in kinds


def test_two_subscribers_on_two_connections_both_get_the_event(
        serve: Serve, events: Events, subscribe: Subscribe, project: Path) -> None:
    server = serve()
    first = events(server.port)  # raw HTTP/2
    second = subscribe(server.url)  # httpx, over the protocol of the test
    assert first.next().kind == "hello"
    hello = second.next(5)
    assert hello.kind == "hello"
    assert hello.data["id"] == first.parser.events[0].data["id"]
    prime_site(first, project / "public")
    second.until(lambda e: "/_probe.txt" in e.paths)
    edit(project / "public" / "style.css", "#t { color: blue; }\n")
    for stream in (first, second):
        # The second stream may still hold the events of earlier probes: skip those.
        event = stream.until(lambda e: e.kind == "css")
        assert (event.kind, event.data) == ("css", {"paths": ["/style.css"]})


def test_server_restart_changes_the_boot_id(serve: Serve, subscribe: Subscribe) -> None:
    server = serve()
    one = subscribe(server.url).next().data["id"]
    again = subscribe(server.url).next().data["id"]
    assert one == again, "one server, one boot id"
    server.stop(signal.SIGINT)
    other = serve()
    assert subscribe(other.url).next().data["id"] != one


def test_heartbeat_comments(serve_app: Callable[..., Any], project: Path,
                            subscribe: Subscribe) -> None:
    hub = LiveReload(heartbeat=0.2)
    running = serve_app(root=project / "public", live_reload=hub)
    stream = subscribe(running.url)
    assert stream.next().kind == "hello"
    wait_until(lambda: (stream.silent_for(0.05), len(stream.parser.comments) >= 3)[1], 2,
               f"fewer than 3 pings in 2 s: {stream.parser.comments}")
    assert set(stream.parser.comments) == {": ping"}
    # Events posted from another thread arrive between the pings.
    hub.post("css", {"paths": ["/x.css"]})
    assert stream.next().data == {"paths": ["/x.css"]}
    assert hub.subscribers == 1


def test_closed_streams_unsubscribe(serve_app: Callable[..., Any], project: Path,
                                    subscribe: Subscribe) -> None:
    hub = LiveReload(heartbeat=0.2)
    running = serve_app(root=project / "public", live_reload=hub)
    streams = [subscribe(running.url) for _ in range(3)]
    for stream in streams:
        assert stream.next().kind == "hello"
    assert hub.subscribers == 3
    for stream in streams:
        stream.close()
    wait_until(lambda: hub.subscribers == 0, 3,
               f"{hub.subscribers} subscribers left after their connections closed")


def test_stop_with_open_event_streams_is_prompt(serve: Serve, subscribe: Subscribe) -> None:
    server = serve()
    streams = [subscribe(server.url) for _ in range(2)]
    for stream in streams:
        assert stream.next().kind == "hello"
    started = time.monotonic()
    assert server.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 5
    for stream in streams:
        wait_until(lambda stream=stream: stream.done, 5, "an event stream outlived the server")


def test_no_reload_turns_everything_off(serve: Serve, project: Path,
                                       client: httpx.Client) -> None:
    server = serve("--no-reload")
    assert client.get(server.url + EVENTS_PATH).status_code == 404
    assert client.get(server.url + CLIENT_PATH).status_code == 404
    page = client.get(server.url + "/")
    assert page.status_code == 200
    assert "__hyper2web__" not in page.text
    assert page.text == (project / "public" / "index.html").read_text()
    assert "Reload:" not in "".join(server.output)


def test_client_script_is_javascript(serve: Serve, client: httpx.Client) -> None:
    server = serve()
    response = client.get(server.url + CLIENT_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in response.text and EVENTS_PATH in response.text
    assert int(response.headers["content-length"]) == len(response.content)


def test_reserved_prefix_is_never_a_static_file(serve: Serve, project: Path,
                                                client: httpx.Client) -> None:
    shadow = project / "public" / "__hyper2web__"
    shadow.mkdir()
    (shadow / "x").write_text("from the site")
    (shadow / "client.js").write_text("alert('site')")
    for options in ((), ("--no-reload",)):
        server = serve(*options)
        for path in ("/__hyper2web__/x", "/__hyper2web__/", "/__hyper2web__/events/x"):
            response = client.get(server.url + path)
            assert response.status_code == 404, (options, path)
            assert "from the site" not in response.text
        script = client.get(server.url + CLIENT_PATH)
        assert "alert('site')" not in script.text
        server.stop()


def test_head_of_the_event_stream(serve: Serve, client: httpx.Client) -> None:
    server = serve()
    response = client.head(server.url + EVENTS_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content == b""

"""The live reload script in HTML pages: where it goes, where it never goes, and the headers.

The tests of served pages take ``client``: they run over HTTP/2 and over HTTP/1.1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyper2web import App
from hyper2web.reload import LiveReload, inject_script
from tests.reload.livekit import SCRIPT_TAG

TAG = SCRIPT_TAG.encode()


# -- inject_script ------------------------------------------------------------------------------


@pytest.mark.parametrize(("html", "expected"), [
    # before </head>, else </body>, else at the end
    (b"<html><head><title>x</title></head><body>b</body></html>",
     b"<html><head><title>x</title>@</head><body>b</body></html>"),
    (b"<p>no head</p></body></html>", b"<p>no head</p>@</body></html>"),
    (b"<p>fragment</p>", b"<p>fragment</p>@"),
    (b"", b"@"),
    # tags in any case, with space before ">"
    (b"<HEAD></HEAD ><BODY></BODY>", b"<HEAD>@</HEAD ><BODY></BODY>"),
    (b"<body>x</BODY\n>", b"<body>x@</BODY\n>"),
    # the first real </head>, not the one in a comment
    (b"<head><!-- </head> --></head>", b"<head><!-- </head> -->@</head>"),
    (b"<!--</head>--><p>x</p></body>", b"<!--</head>--><p>x</p>@</body>"),
    # comments that end at once, or with --!>
    (b"<head><!--></head>", b"<head><!-->@</head>"),
    (b"<head><!---></head>", b"<head><!--->@</head>"),
    (b"<head><!-- a --!></head>", b"<head><!-- a --!>@</head>"),
    # scripts, styles, textareas, titles, templates: their text is not markup
    (b"<head><script>var s = '</head>';</script></head>",
     b"<head><script>var s = '</head>';</script>@</head>"),
    (b'<head><script type="module">x("</body>")</script ></head>',
     b'<head><script type="module">x("</body>")</script >@</head>'),
    (b"<head><style>/* </head> */</style></head>", b"<head><style>/* </head> */</style>@</head>"),
    (b"<body><textarea></body></head></textarea></body>",
     b"<body><textarea></body></head></textarea>@</body>"),
    (b"<head><title></head></title></head>", b"<head><title></head></title>@</head>"),
    (b"<body><template></body></template></body>",
     b"<body><template></body></template>@</body>"),
    (b"<SCRIPT>'</head>'</SCRIPT></head>", b"<SCRIPT>'</head>'</SCRIPT>@</head>"),
    # a custom element whose name starts with "script" is not a script
    (b"<head><script-loader></script-loader></head>",
     b"<head><script-loader></script-loader>@</head>"),
    (b"<head><scripts></scripts></head>", b"<head><scripts></scripts>@</head>"),
    # only "</head>" in a script and no other place: before </body>
    (b"<script>'</head>'</script><p>x</p></body>", b"<script>'</head>'</script><p>x</p>@</body>"),
    # a page cut inside a comment or a script: before it, not inside it
    (b"<p>x</p><!-- unclosed </head>", b"<p>x</p>@<!-- unclosed </head>"),
    (b"<p>x</p><script>let a = '</body>'", b"<p>x</p>@<script>let a = '</body>'"),
])
def test_inject_script(html: bytes, expected: bytes) -> None:
    assert inject_script(html, b"@") == expected


def test_inject_script_default_tag() -> None:
    assert inject_script(b"<head></head>") == b"<head>" + TAG + b"</head>"
    assert re.fullmatch(rb'<script src="/__hyper2web__/client\.js\?v=[0-9a-f]{12}" defer>'
                        rb'</script>', TAG)


def test_inject_script_only_once() -> None:
    html = b"<head></head><body></body></html><head></head></body>"
    assert inject_script(html).count(TAG) == 1


# -- served pages ---------------------------------------------------------------------------


PAGE = b"<!doctype html><html><head><title>T</title></head><body><p>page</p></body></html>"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    root.mkdir()
    (root / "index.html").write_bytes(PAGE)
    (root / "bodyonly.html").write_bytes(b"<p>x</p></body>")
    (root / "bare.html").write_bytes(b"<p>bare</p>")
    (root / "tricky.html").write_bytes(
        b"<head><!-- </head> --><script>'</head>'</script></head><body></body>")
    for name in ("a.js", "a.css", "a.txt", "a.json", "a.svg"):
        (root / name).write_bytes(b"x </head> </body>\n")
    (root / "big.html").write_bytes(b"<head></head><body>" + b"x" * 400_000 + b"</body>")
    (root / "sub").mkdir()
    (root / "sub" / "page.html").write_bytes(PAGE)
    return root


def make_app(root: Path, reload: bool) -> App:
    app = App(root=root, port=0, live_reload=LiveReload() if reload else None)

    async def page(request: Any, response: Any) -> None:
        await response.send_file(root / "sub" / "page.html")

    async def text(request: Any, response: Any) -> None:
        await response.send_file(root / "a.txt")

    app.get("page", page)
    app.get("text", text)
    return app


@pytest.fixture
def servers(serve_app: Callable[..., Any], site: Path) -> tuple[Any, Any]:
    """The same folder served with and without live reload."""
    return serve_app(make_app(site, True)), serve_app(make_app(site, False))


def fetch(client: httpx.Client, port: int, path: str, method: str = "GET",
          headers: tuple[tuple[str, str], ...] = ()) -> httpx.Response:
    """A request without accept-encoding: the body as it is on the wire."""
    request = client.build_request(method, f"https://localhost:{port}{path}",
                                   headers=dict(headers))
    del request.headers["accept-encoding"]
    response = client.send(request)
    assert "content-encoding" not in response.headers, response.headers
    return response


@pytest.mark.parametrize(("path", "expected"), [
    ("/", inject_script(PAGE)),
    ("/index.html", inject_script(PAGE)),
    ("/bodyonly.html", b"<p>x</p>" + TAG + b"</body>"),
    ("/bare.html", b"<p>bare</p>" + TAG),
    ("/tricky.html",
     b"<head><!-- </head> --><script>'</head>'</script>" + TAG + b"</head><body></body>"),
    ("/page", inject_script(PAGE)),  # response.send_file of an .html file
])
def test_html_gets_the_script(servers: tuple[Any, Any], client: httpx.Client, path: str,
                              expected: bytes) -> None:
    live, _ = servers
    result = fetch(client, live.port, path)
    assert result.status_code == 200
    assert result.content == expected
    assert result.content.count(TAG) == 1
    assert int(result.headers["content-length"]) == len(result.content)
    assert result.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/a.js", "/a.css", "/a.txt", "/a.json", "/a.svg", "/text"])
def test_other_types_are_untouched(servers: tuple[Any, Any], client: httpx.Client,
                                   path: str) -> None:
    live, _ = servers
    result = fetch(client, live.port, path)
    assert result.status_code == 200
    assert result.content == b"x </head> </body>\n"
    assert int(result.headers["content-length"]) == len(result.content)


@pytest.mark.parametrize("path", ["/", "/bodyonly.html", "/tricky.html", "/page", "/big.html"])
def test_without_reload_pages_are_untouched(servers: tuple[Any, Any], client: httpx.Client,
                                            path: str) -> None:
    _, plain = servers
    result = fetch(client, plain.port, path)
    assert result.status_code == 200
    assert b"__hyper2web__" not in result.content
    assert int(result.headers["content-length"]) == len(result.content)


def test_etag_differs_from_the_plain_one(servers: tuple[Any, Any], client: httpx.Client) -> None:
    live, plain = servers
    for path in ("/", "/index.html", "/big.html"):
        live_tag = fetch(client, live.port, path).headers.get("etag")
        plain_tag = fetch(client, plain.port, path).headers.get("etag")
        assert live_tag and plain_tag and live_tag != plain_tag, path
        # A copy cached without the script is not revalidated as current.
        again = fetch(client, live.port, path, headers=(("if-none-match", plain_tag),))
        assert again.status_code == 200 and TAG in again.content
        cached = fetch(client, live.port, path, headers=(("if-none-match", live_tag),))
        assert cached.status_code == 304


@pytest.mark.parametrize("path", ["/", "/bodyonly.html", "/page", "/big.html", "/a.css"])
def test_head_has_the_get_length(servers: tuple[Any, Any], client: httpx.Client,
                                 path: str) -> None:
    live, _ = servers
    got = fetch(client, live.port, path)
    head = fetch(client, live.port, path, method="HEAD")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert int(head.headers["content-length"]) == len(got.content)


def test_large_page_gets_the_script(servers: tuple[Any, Any], site: Path,
                                    client: httpx.Client) -> None:
    live, _ = servers
    result = fetch(client, live.port, "/big.html")
    original = (site / "big.html").read_bytes()
    assert result.content == b"<head>" + TAG + original[6:]
    assert int(result.headers["content-length"]) == len(original) + len(TAG)


def test_compressed_page_has_the_script(servers: tuple[Any, Any], client: httpx.Client) -> None:
    live, _ = servers
    for coding in ("gzip", "br"):
        response = client.get(f"https://localhost:{live.port}/big.html",
                              headers={"accept-encoding": coding})
        assert response.headers.get("content-encoding") == coding
        assert response.content.count(TAG) == 1


def test_precompressed_sibling_is_not_served_without_the_script(
        servers: tuple[Any, Any], site: Path, client: httpx.Client) -> None:
    import gzip

    (site / "index.html").write_bytes(PAGE * 20)  # large enough to compress
    sibling = site / "index.html.gz"
    sibling.write_bytes(gzip.compress(PAGE * 20))
    stat = (site / "index.html").stat()
    os.utime(sibling, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # fresh, not stale
    live, _ = servers
    response = client.get(f"https://localhost:{live.port}/index.html",
                          headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.content.count(TAG) == 1


def test_edited_page_is_injected_again(servers: tuple[Any, Any], site: Path,
                                       client: httpx.Client) -> None:
    live, _ = servers
    first = fetch(client, live.port, "/")
    (site / "index.html").write_bytes(PAGE.replace(b"page", b"edited"))
    second = fetch(client, live.port, "/")
    assert second.content == inject_script(PAGE.replace(b"page", b"edited"))
    assert second.headers.get("etag") != first.headers.get("etag")


def test_cli_no_reload_injects_nothing(serve: Callable[..., Any], project: Path,
                                       client: httpx.Client) -> None:
    live, plain = serve(), serve("--no-reload")
    page = (project / "public" / "index.html").read_bytes()
    assert fetch(client, live.port, "/").content == inject_script(page)
    assert fetch(client, plain.port, "/").content == page

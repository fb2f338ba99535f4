"""The live reload script in HTML pages: where it goes, where it never goes, and the headers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hyper2web import App
from hyper2web.reload import LiveReload, inject_script
from tests.reload.livekit import SCRIPT_TAG, H2Client, get

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
    assert TAG == b'<script src="/__hyper2web__/client.js" defer></script>'


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


def fetch(port: int, path: str, method: str = "GET",
          headers: tuple[tuple[str, str], ...] = ()) -> Any:
    """Raw HTTP/2 GET without accept-encoding: the body as it is on the wire."""
    with H2Client(port, timeout=10) as client:
        return client.get(path, method=method, headers=headers)


@pytest.mark.parametrize(("path", "expected"), [
    ("/", inject_script(PAGE)),
    ("/index.html", inject_script(PAGE)),
    ("/bodyonly.html", b"<p>x</p>" + TAG + b"</body>"),
    ("/bare.html", b"<p>bare</p>" + TAG),
    ("/tricky.html",
     b"<head><!-- </head> --><script>'</head>'</script>" + TAG + b"</head><body></body>"),
    ("/page", inject_script(PAGE)),  # response.send_file of an .html file
])
def test_html_gets_the_script(servers: tuple[Any, Any], path: str, expected: bytes) -> None:
    live, _ = servers
    result = fetch(live.port, path)
    assert result.status == 200
    assert result.body == expected
    assert result.body.count(TAG) == 1
    assert int(result.header("content-length")) == len(result.body)
    assert result.header("content-type").startswith("text/html")


@pytest.mark.parametrize("path", ["/a.js", "/a.css", "/a.txt", "/a.json", "/a.svg", "/text"])
def test_other_types_are_untouched(servers: tuple[Any, Any], path: str) -> None:
    live, _ = servers
    result = fetch(live.port, path)
    assert result.status == 200
    assert result.body == b"x </head> </body>\n"
    assert int(result.header("content-length")) == len(result.body)


@pytest.mark.parametrize("path", ["/", "/bodyonly.html", "/tricky.html", "/page", "/big.html"])
def test_without_reload_pages_are_untouched(servers: tuple[Any, Any], site: Path,
                                            path: str) -> None:
    _, plain = servers
    result = fetch(plain.port, path)
    assert result.status == 200
    assert b"__hyper2web__" not in result.body
    assert int(result.header("content-length")) == len(result.body)


def test_etag_differs_from_the_plain_one(servers: tuple[Any, Any]) -> None:
    live, plain = servers
    for path in ("/", "/index.html", "/big.html"):
        live_tag = fetch(live.port, path).header("etag")
        plain_tag = fetch(plain.port, path).header("etag")
        assert live_tag and plain_tag and live_tag != plain_tag, path
        # A copy cached without the script is not revalidated as current.
        again = fetch(live.port, path, headers=(("if-none-match", plain_tag),))
        assert again.status == 200 and TAG in again.body
        assert fetch(live.port, path, headers=(("if-none-match", live_tag),)).status == 304


@pytest.mark.parametrize("path", ["/", "/bodyonly.html", "/page", "/big.html", "/a.css"])
def test_head_has_the_get_length(servers: tuple[Any, Any], path: str) -> None:
    live, _ = servers
    got = fetch(live.port, path)
    head = fetch(live.port, path, method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.header("content-length") == got.header("content-length")
    assert int(head.header("content-length")) == len(got.body)


def test_large_page_gets_the_script(servers: tuple[Any, Any], site: Path) -> None:
    live, _ = servers
    result = fetch(live.port, "/big.html")
    original = (site / "big.html").read_bytes()
    assert result.body == b"<head>" + TAG + original[6:]
    assert int(result.header("content-length")) == len(original) + len(TAG)


def test_compressed_page_has_the_script(servers: tuple[Any, Any]) -> None:
    live, _ = servers
    for coding in ("gzip", "br"):
        response = get(f"https://localhost:{live.port}/big.html",
                       headers={"accept-encoding": coding})
        assert response.headers.get("content-encoding") == coding
        assert response.content.count(TAG) == 1


def test_precompressed_sibling_is_not_served_without_the_script(
        servers: tuple[Any, Any], site: Path) -> None:
    import gzip

    (site / "index.html").write_bytes(PAGE * 20)  # large enough to compress
    sibling = site / "index.html.gz"
    sibling.write_bytes(gzip.compress(PAGE * 20))
    stat = (site / "index.html").stat()
    os.utime(sibling, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # fresh, not stale
    live, _ = servers
    response = get(f"https://localhost:{live.port}/index.html",
                   headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.content.count(TAG) == 1


def test_edited_page_is_injected_again(servers: tuple[Any, Any], site: Path) -> None:
    live, _ = servers
    first = fetch(live.port, "/")
    (site / "index.html").write_bytes(PAGE.replace(b"page", b"edited"))
    second = fetch(live.port, "/")
    assert second.body == inject_script(PAGE.replace(b"page", b"edited"))
    assert second.header("etag") != first.header("etag")


def test_cli_no_reload_injects_nothing(serve: Callable[..., Any], project: Path) -> None:
    live, plain = serve(), serve("--no-reload")
    page = (project / "public" / "index.html").read_bytes()
    assert fetch(live.port, "/").body == inject_script(page)
    assert fetch(plain.port, "/").body == page

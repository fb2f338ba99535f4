"""Nothing outside the root is ever served, whatever ``:path`` a client sends.

httpx normalizes ``..`` away, so these requests go through ``rawpath``, which sends the
``:path`` byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.framework.rawpath import raw_request

SECRET = b"TOP-SECRET-do-not-serve"


@pytest.fixture
def guarded(serve_app, site: Path):
    """A site next to a secret file and folder, with symlinks that lead out of the root."""
    outside = site.parent
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "private").mkdir()
    (outside / "private" / "index.html").write_bytes(SECRET)
    (outside / "private" / "key.txt").write_bytes(SECRET)
    (site / "out.txt").symlink_to(outside / "secret.txt")
    (site / "outdir").symlink_to(outside / "private", target_is_directory=True)
    (site / "docs" / "up").symlink_to(outside, target_is_directory=True)
    (site / "inside.css").symlink_to(site / "style.css")
    server = serve_app(root=site)
    server.outside = outside
    return server


def assert_refused(port: int, path: str) -> None:
    for method in ("GET", "HEAD"):
        r = raw_request(port, path, method)
        assert 400 <= r.status < 500, (path, method, r.status)
        assert SECRET not in r.body, path
        assert b"root:" not in r.body, path


TRAVERSALS = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/docs/../../secret.txt",
    "/docs/./../../secret.txt",
    "/./../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/docs/%2e%2e/%2e%2e/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/docs%2f..%2f..%2fsecret.txt",
    "/%252e%252e/secret.txt",
    "/..\\secret.txt",
    "/docs\\..\\..\\secret.txt",
    "/\\..\\secret.txt",
    "/..%5csecret.txt",
    "/..%5Csecret.txt",
    "/docs%5c..%5c..%5csecret.txt",
    "/index.html%00",
    "/%00/../secret.txt",
    "/secret.txt%00.html",
    "/../secret.txt%00",
    "//etc/passwd",
    "///etc/passwd",
    "/%2fetc/passwd",
    "/%2Fetc%2Fpasswd",
    "../secret.txt",
    "secret.txt",
    "/out.txt",
    "/outdir/",
    "/outdir",
    "/outdir/key.txt",
    "/docs/up/secret.txt",
    "/docs/up/private/key.txt",
    "/docs/up/public/../secret.txt",
    "/..",
    "/docs/..",
    "/docs/../..",
    "/.",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_refused(guarded, path) -> None:
    assert_refused(guarded.port, path)


def test_absolute_path_of_the_secret_is_refused(guarded) -> None:
    secret = str(guarded.outside / "secret.txt")
    assert_refused(guarded.port, "/" + secret)
    assert_refused(guarded.port, secret)


@pytest.mark.parametrize("path", ["/index.html\x00", "/\x00/../secret.txt", "/..\x00/secret.txt"])
def test_raw_nul_byte_is_refused(guarded, path) -> None:
    """A raw NUL makes the header block malformed: a 4xx, or the connection is refused."""
    try:
        r = raw_request(guarded.port, path)
    except ConnectionError:
        return
    assert 400 <= r.status < 500
    assert SECRET not in r.body


def test_symlink_loop_is_404_not_a_hang(serve_app, site) -> None:
    (site / "loop").symlink_to(site / "loop")
    (site / "a").symlink_to(site / "b")
    (site / "b").symlink_to(site / "a")
    server = serve_app(root=site)
    for path in ("/loop", "/loop/", "/a", "/b/x.txt"):
        assert raw_request(server.port, path).status == 404, path


def test_secret_file_is_really_there(guarded) -> None:
    """The refusals above are not an accident of a missing file."""
    assert (guarded.outside / "secret.txt").read_bytes() == SECRET
    assert os.path.realpath(guarded.app.root + "/out.txt") == \
        str((guarded.outside / "secret.txt").resolve())


def test_raw_client_still_gets_ordinary_files(guarded, site) -> None:
    r = raw_request(guarded.port, "/style.css", headers=[("accept-encoding", "identity")])
    assert r.status == 200
    assert r.body == (site / "style.css").read_bytes()


def test_symlink_inside_the_root_is_served(guarded, site) -> None:
    r = raw_request(guarded.port, "/inside.css", headers=[("accept-encoding", "identity")])
    assert r.status == 200
    assert r.body == (site / "style.css").read_bytes()


@pytest.fixture
def dotted(serve_app, site: Path):
    (site / ".git").mkdir()
    (site / ".git" / "config").write_text("[core] secret")
    (site / "docs" / ".hidden").write_text("hidden")
    (site / ".hidden-dir").mkdir()
    (site / ".hidden-dir" / "index.html").write_text("hidden index")
    (site / ".well-known").mkdir()
    (site / ".well-known" / "security.txt").write_text("Contact: mailto:a@example.com\n")
    (site / ".well-known" / "assetlinks.json").write_text("[]")
    return serve_app(root=site)


@pytest.mark.parametrize("path", [
    "/.env", "/.git/config", "/.git/", "/.git", "/docs/.hidden", "/.hidden-dir/",
    "/.hidden-dir/index.html", "/%2eenv", "/%2Egit/config", "/docs/%2ehidden",
    "/.well-known/../.env",
])
def test_dotfiles_are_hidden(dotted, path) -> None:
    for method in ("GET", "HEAD"):
        r = raw_request(dotted.port, path, method)
        assert r.status == 404, (path, method, r.status)
        assert b"SECRET" not in r.body and b"secret" not in r.body
        assert b"hidden" not in r.body


def test_well_known_is_served(dotted, client) -> None:
    r = client.get(dotted.url + "/.well-known/security.txt")
    assert r.status_code == 200
    assert r.text == "Contact: mailto:a@example.com\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = client.get(dotted.url + "/.well-known/assetlinks.json")
    assert r.status_code == 200
    assert r.json() == []

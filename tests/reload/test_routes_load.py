"""``load_routes`` itself: both forms, helper modules, quick edits, and what it reports."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyper2web import App
from hyper2web_cli.routes import RoutesError, find_routes, load_routes


def write(path: Path, text: str) -> None:
    path.write_text(text)


def same_second_edit(path: Path, text: str) -> None:
    """Rewrite ``path`` keeping its size and whole-second mtime: a save within a second."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def routes_of(app: App) -> list[tuple[str, str]]:
    return sorted(app.router.routes)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "public").mkdir()
    return tmp_path


@pytest.fixture(autouse=True)
def like_a_user(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Bytecode caches written, as for a user (the test environment may turn them off)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    before = list(sys.path)
    yield
    sys.path[:] = before


def test_setup_form(folder: Path) -> None:
    write(folder / "routes.py", "async def a(q, s): pass\n"
                                "def setup(app):\n    app.get('a', a)\n    app.post('/b', a)\n")
    app = App(root=folder / "public")
    module = load_routes(folder / "routes.py", app)
    assert routes_of(app) == [("GET", "/a"), ("POST", "/b")]
    assert module.__file__ == str(folder / "routes.py")
    assert find_routes(folder / "public") == (folder / "routes.py").resolve()


def test_decorator_form(folder: Path) -> None:
    write(folder / "routes.py",
          "from hyper2web import Routes\nroutes = Routes()\napi = Routes()\n"
          "@routes.get('x')\nasync def x(q, s): pass\n"
          "@api.post('/y/{id}')\nasync def y(q, s): pass\n")
    app = App(root=folder / "public")
    load_routes(folder / "routes.py", app)
    assert routes_of(app) == [("GET", "/x"), ("POST", "/y/{id}")]


def test_decorators_and_setup_together(folder: Path) -> None:
    write(folder / "routes.py",
          "from hyper2web import Routes\nroutes = Routes()\n"
          "@routes.get('x')\nasync def x(q, s): pass\n"
          "def setup(app):\n    app.get('z', x)\n")
    app = App(root=folder / "public")
    load_routes(folder / "routes.py", app)
    assert routes_of(app) == [("GET", "/x"), ("GET", "/z")]


def test_reload_replaces_routes(folder: Path) -> None:
    routes = folder / "routes.py"
    write(routes, "async def a(q, s): pass\ndef setup(app):\n    app.get('old', a)\n")
    app = App(root=folder / "public")
    load_routes(routes, app)
    write(routes, "async def a(q, s): pass\ndef setup(app):\n    app.get('new', a)\n")
    load_routes(routes, app)
    assert routes_of(app) == [("GET", "/new")]


def test_quick_edit_of_routes_is_seen(folder: Path) -> None:
    routes = folder / "routes.py"
    write(routes, "def setup(app):\n    app.get('aaa', print)\n")
    app = App(root=folder / "public")
    load_routes(routes, app)
    same_second_edit(routes, "def setup(app):\n    app.get('bbb', print)\n")
    load_routes(routes, app)
    assert routes_of(app) == [("GET", "/bbb")]


def test_quick_edit_of_a_helper_is_seen(folder: Path) -> None:
    write(folder / "helper_mod.py", "NAME = 'aaa'\n")
    write(folder / "routes.py",
          "import helper_mod\ndef setup(app):\n    app.get(helper_mod.NAME, print)\n")
    app = App(root=folder / "public")
    load_routes(folder / "routes.py", app)
    assert routes_of(app) == [("GET", "/aaa")]
    same_second_edit(folder / "helper_mod.py", "NAME = 'bbb'\n")
    load_routes(folder / "routes.py", app)
    assert routes_of(app) == [("GET", "/bbb")]
    same_second_edit(folder / "helper_mod.py", "NAME = 'ccc'\n")
    load_routes(folder / "routes.py", app)
    assert routes_of(app) == [("GET", "/ccc")]


def test_helper_package_is_reimported(folder: Path) -> None:
    package = folder / "helpers_pkg"
    package.mkdir()
    write(package / "__init__.py", "")
    write(package / "names.py", "NAME = 'one'\n")
    write(folder / "routes.py",
          "from helpers_pkg import names\ndef setup(app):\n    app.get(names.NAME, print)\n")
    app = App(root=folder / "public")
    load_routes(folder / "routes.py", app)
    write(package / "names.py", "NAME = 'two-longer'\n")
    load_routes(folder / "routes.py", app)
    assert routes_of(app) == [("GET", "/two-longer")]


@pytest.mark.parametrize(("source", "line", "kind"), [
    ("def setup(app):\n    app.get('a', print)\n\ndef broken(:\n", 4, "SyntaxError"),
    ("import no_such_module_here\ndef setup(app): pass\n", 1, "ModuleNotFoundError"),
    ("def setup(app):\n    x = 1\n    app.get('a', undefined_name)\n", 3, "NameError"),
    ("def setup(app):\n    app.get('a', 42)\n", 2, "TypeError"),
])
def test_errors_name_file_and_line_and_keep_old_routes(folder: Path, source: str, line: int,
                                                       kind: str) -> None:
    routes = folder / "routes.py"
    write(routes, "async def a(q, s): pass\ndef setup(app):\n    app.get('ok', a)\n")
    app = App(root=folder / "public")
    load_routes(routes, app)
    write(routes, source)
    with pytest.raises(RoutesError) as caught:
        load_routes(routes, app)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{routes}:{line}: {kind}"), message
    assert routes_of(app) == [("GET", "/ok")]


def test_error_in_a_helper_names_the_helper(folder: Path) -> None:
    write(folder / "helper_bad.py", "X = 1\nY = 1 +\n")
    write(folder / "routes.py", "import helper_bad\ndef setup(app): pass\n")
    with pytest.raises(RoutesError, match=r"helper_bad\.py:2: SyntaxError"):
        load_routes(folder / "routes.py", App(root=folder / "public"))


def test_module_without_routes(folder: Path) -> None:
    write(folder / "routes.py", "X = 1\n")
    with pytest.raises(RoutesError, match="defines no setup"):
        load_routes(folder / "routes.py", App(root=folder / "public"))

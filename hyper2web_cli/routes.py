"""Find and load the user's ``routes.py``: the module that adds API handlers to the app.

Two forms, usable together. A ``setup(app)`` function that registers handlers::

    async def top10(request, response):
        await response.send_json([...])

    def setup(app):
        app.get("top10", top10)

or decorators on a module-level ``Routes``::

    from hyper2web import Routes
    routes = Routes()

    @routes.get("top10")
    async def top10(request, response): ...

It is loaded as a fresh module (not through ``sys.modules``), so the folder it lives in
needs no ``__init__.py`` and its name clashes with nothing. Loading again (after an edit)
also forgets the modules imported from its folder, so a helper module beside it is
re-imported too, and swaps the app's routes only once everything imported cleanly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

ROUTES_FILE = "routes.py"


class RoutesError(Exception):
    """routes.py could not be loaded; the message names the file and line."""


def find_routes(root: Path) -> Path | None:
    """``routes.py`` beside the served folder (the project folder), if there is one."""
    candidate = root.resolve().parent / ROUTES_FILE
    return candidate if candidate.is_file() else None


def load_routes(path: Path, app: Any) -> ModuleType:
    """Import ``path`` and register its routes in place of the app's current ones.

    ``RoutesError`` (one line with file:line) says what went wrong; the app's routes are
    then left as they were.
    """
    modules: list[ModuleType] = []
    _forget_modules_in(path.resolve().parent)
    app.replace_routes(lambda target: modules.append(_register(path, target)))
    return modules[0]


def _forget_modules_in(folder: Path) -> None:
    """Drop the modules imported from ``folder``, and their bytecode caches.

    A cache is trusted when its source has the same whole-second mtime and size: an edit
    within a second of the last import, keeping the size, would bring the old code back.
    """
    prefix = str(folder) + "/"
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None) or ""
        if filename.startswith(prefix) and "site-packages" not in filename:
            del sys.modules[name]
            cached = getattr(module, "__cached__", None)
            if cached:
                with contextlib.suppress(OSError):
                    os.unlink(cached)


def _register(path: Path, app: Any) -> ModuleType:
    from hyper2web import Routes

    name = f"hyper2web_routes_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RoutesError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise RoutesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)  # so routes.py can import modules beside it
    try:
        # Compiled from the source every time, never from a bytecode cache (see above).
        code = compile(source, str(path), "exec", dont_inherit=True)
        sys.modules[name] = module  # as an import would: dataclasses, pickle look it up
        exec(code, module.__dict__)
        setup = getattr(module, "setup", None)
        declared = [v for v in vars(module).values() if isinstance(v, Routes)]
        if setup is None and not declared:
            raise RoutesError(f"{path}: defines no setup(app) function and no Routes() "
                              "to register routes")
        if setup is not None and not callable(setup):
            raise RoutesError(f"{path}: setup is not a function")
        for routes in declared:
            app.include(routes)
        if setup is not None:
            setup(app)
    except RoutesError:
        sys.modules.pop(name, None)
        raise
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise RoutesError(f"{exc.filename}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise RoutesError(f"{_where(exc, path)}: {type(exc).__name__}: {exc}") from None
    return module


def _where(exc: BaseException, path: Path) -> str:
    """``file:line`` of the deepest frame in the user's folder, else of the deepest frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    folder = str(path.resolve().parent)
    mine = [f for f in frames if f.filename.startswith(folder)] or frames
    if not mine:
        return str(path)
    return f"{mine[-1].filename}:{mine[-1].lineno}"

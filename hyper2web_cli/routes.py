"""Find and load the user's ``routes.py``: the module that adds API handlers to the app.

The module defines ``setup(app)`` and registers its handlers there::

    async def top10(request, response):
        await response.send_json([...])

    def setup(app):
        app.get("top10", top10)

It is loaded as a fresh module (not through ``sys.modules``), so the folder it lives in
needs no ``__init__.py`` and its name clashes with nothing.
"""

from __future__ import annotations

import importlib.util
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
    """Import ``path`` and call its ``setup(app)``; ``RoutesError`` says what went wrong."""
    name = f"hyper2web_routes_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RoutesError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)  # so routes.py can import modules beside it
    try:
        spec.loader.exec_module(module)
        setup = getattr(module, "setup", None)
        if setup is None:
            raise RoutesError(f"{path}: defines no setup(app) function to register routes")
        if not callable(setup):
            raise RoutesError(f"{path}: setup is not a function")
        setup(app)
    except RoutesError:
        raise
    except SyntaxError as exc:
        raise RoutesError(f"{exc.filename}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    except Exception as exc:
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

"""hyper2web: a fast HTTPS + HTTP/2 development server and framework for PWAs.

The public names are loaded on first use (PEP 562), so a part that needs none of them,
such as the sans-IO protocol classes in ``hyper2web.server.protocol``, imports only what
it uses, and ``hyper2web --help`` starts without loading the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import App
    from .exceptions import HTTPError
    from .http import Request, Response, Stream
    from .router import Routes
    from .websocket import WebSocket

__version__ = "0.1.0"

__all__ = ["App", "HTTPError", "Request", "Response", "Routes", "Stream", "WebSocket",
           "__version__"]

_HOMES = {"App": ".app", "HTTPError": ".exceptions", "Request": ".http",
          "Response": ".http", "Stream": ".http", "Routes": ".router",
          "WebSocket": ".websocket"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hyper2web' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value

"""hyper2web: a fast HTTPS + HTTP/2 development server and framework for PWAs."""

from __future__ import annotations

from .app import App
from .exceptions import HTTPError
from .http import Request, Response, Stream
from .router import Routes

__version__ = "0.1.0"

__all__ = ["App", "HTTPError", "Request", "Response", "Routes", "Stream", "__version__"]

"""Exceptions of hyper2web.

The original names (``DifferentStreamIdException``, ``RouteNotRegisteredException``) are kept
so code written for the original framework still imports them.
"""

from __future__ import annotations


class Hyper2WebError(Exception):
    """Base class of every error hyper2web raises on purpose."""


class HTTPError(Hyper2WebError):
    """Raise inside a handler to answer with ``status`` and a short text body."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


class StreamClosed(Hyper2WebError):
    """The peer reset the stream or closed the connection; nothing more can be sent."""


class WebSocketClosed(StreamClosed):
    """The WebSocket is closed: ``code`` and ``reason`` are the close frame's (1006 when
    the connection ended without one)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class ServerStopping(StreamClosed):
    """The server is shutting down: a tunnel (a WebSocket) learns it from its reads, so
    it can say goodbye (close code 1001) before the connection closes."""


class ResponseAlreadySent(Hyper2WebError):
    """A handler tried to send a second response on the same stream."""


class ServerError(Hyper2WebError):
    """A problem the person starting the server can fix (port in use, missing folder...).

    Its message is one line meant to be shown as is, without a traceback.
    """


class PortInUse(ServerError):
    """The port is taken by another program on one of the addresses to bind."""


class CertificateError(ServerError):
    """Certificates are missing, unreadable or do not match."""


class DifferentStreamIdException(Hyper2WebError):
    """Kept from the original API so code that imports it still runs; never raised.

    Each HTTP/2 stream gets its own ``Request`` here, so data cannot reach the wrong one.
    """


class RouteNotRegisteredException(Hyper2WebError):
    """Kept from the original API; the router answers 404/405 instead of raising it."""

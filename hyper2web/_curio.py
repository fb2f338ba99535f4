"""The one place that imports curio.

curio 1.6 (the newest release) does not import on Python 3.12+: ``curio/channel.py``
reads ``multiprocessing.connection.CHALLENGE`` (now private) and ``curio/ssl.py``
decorates with ``functools.wraps(ssl.wrap_socket)`` (removed). Upstream issue:
https://github.com/dabeaz/curio/issues/367. Until a release fixes it, we supply what
curio expects while it is imported, and take the ``ssl.wrap_socket`` placeholder away
again so no other code mistakes it for the real, removed function. Every other module
imports curio from here, so a fixed curio needs no change anywhere else.

curio is first imported as it is: a fixed release then needs nothing. Only when that
fails (on 3.12+) are the half-imported modules forgotten and the import made again with
the shim. Asking for curio's version instead would load ``importlib.metadata``, about
15 ms of every start on 3.12+.
"""

from __future__ import annotations

import ssl
import sys


def _import_with_shim():
    import multiprocessing.connection as mpc

    for public, private in (
        ("CHALLENGE", "_CHALLENGE"),
        ("WELCOME", "_WELCOME"),
        ("FAILURE", "_FAILURE"),
        ("MESSAGE_LENGTH", "_MD5ONLY_MESSAGE_LENGTH"),
    ):
        if not hasattr(mpc, public):
            setattr(mpc, public, getattr(mpc, private))

    added_wrap_socket = not hasattr(ssl, "wrap_socket")
    if added_wrap_socket:

        def wrap_socket(*args, **kwargs):  # pragma: no cover - never called
            raise AttributeError("ssl.wrap_socket was removed in Python 3.12")

        ssl.wrap_socket = wrap_socket  # type: ignore[attr-defined,unused-ignore]
    try:
        import curio as module
    finally:
        if added_wrap_socket:
            del ssl.wrap_socket  # type: ignore[attr-defined,unused-ignore]
    return module


def _import_as_is():
    import curio as module

    return module


def _forget_curio() -> None:
    """Drop what a failed import left: the retry runs every curio module afresh."""
    for name in [name for name in sys.modules if name.partition(".")[0] == "curio"]:
        del sys.modules[name]


def _load(as_is=_import_as_is, shimmed=_import_with_shim, version=sys.version_info):
    """curio as it is when it imports; else, on Python 3.12+, with the shim."""
    try:
        return as_is()
    except (AttributeError, ImportError):
        if version < (3, 12):
            raise
        _forget_curio()
        return shimmed()


curio = _load()

__all__ = ["curio"]

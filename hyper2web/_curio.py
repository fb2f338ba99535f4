"""The one place that imports curio.

curio 1.6 (the newest release) does not import on Python 3.12+: ``curio/channel.py``
reads ``multiprocessing.connection.CHALLENGE`` (now private) and ``curio/ssl.py``
decorates with ``functools.wraps(ssl.wrap_socket)`` (removed). Upstream issue:
https://github.com/dabeaz/curio/issues/367. Until a release fixes it, we supply what
curio expects while it is imported, and take the ``ssl.wrap_socket`` placeholder away
again so no other code mistakes it for the real, removed function. Every other module
imports curio from here, so a fixed curio needs no change anywhere else.
"""

from __future__ import annotations

import ssl
import sys

# The last curio release known to need the shim; a newer one is imported as is.
_SHIMMED_CURIO = (1, 6)


def _curio_version() -> tuple[int, ...]:
    # Imported here: only Python 3.12+ asks, and the import costs start-up time.
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("curio")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return _SHIMMED_CURIO
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _needs_shim() -> bool:
    return sys.version_info >= (3, 12) and _curio_version() <= _SHIMMED_CURIO


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


if _needs_shim():
    curio = _import_with_shim()
else:
    import curio  # type: ignore[no-redef]

__all__ = ["curio"]

"""A faster equivalent of one of h2's inbound header checks, installed at import.

RFC 9113 section 8.2.1 forbids some characters in received field names and values. h2
checks them byte by byte in Python, which made it the costliest single step of a small
request (about 7% of the CPU time in ``make profile`` S1), and a browser's long ``cookie``
and ``user-agent`` values cost more still. The same rules as regular expressions run in C;
a field they flag is handed to h2's own check, so what is refused, and the error raised,
are exactly h2's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable
from typing import Any

import h2.utilities

# Names: 0x00-0x20, A-Z, 0x7f-0xff anywhere, or a colon after the first byte.
_BAD_NAME = re.compile(rb"[\x00-\x20A-Z\x7f-\xff]|(?<=.):", re.DOTALL)
# Values: NUL, LF or CR anywhere, or space / tab at either end.
_BAD_VALUE = re.compile(rb"[\x00\n\r]|\A[ \t]|[ \t]\Z")

_h2_check: Callable[..., Any] | None = getattr(h2.utilities, "_reject_illegal_characters",
                                               None)


def reject_illegal_characters(headers: Iterable[Any],
                              flags: Any) -> Generator[Any, None, None]:
    """h2's ``_reject_illegal_characters`` with its loops in the regular expression engine."""
    check = _h2_check
    assert check is not None
    bad_name = _BAD_NAME.search
    bad_value = _BAD_VALUE.search
    for header in headers:
        if bad_name(header[0]) or (header[1] and bad_value(header[1])):
            yield from check([header], flags)  # raises h2's ProtocolError
            continue
        yield header


def install() -> bool:
    """Put the fast check in h2's place; False (nothing changed) for an h2 without it."""
    if _h2_check is None or not callable(_h2_check):
        return False
    h2.utilities._reject_illegal_characters = reject_illegal_characters
    return True

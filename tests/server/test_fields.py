"""``fields.request_headers``: decoding and joining of received fields, and its memory."""

from __future__ import annotations

import pytest

from hyper2web.server import fields
from hyper2web.server.fields import MalformedRequest, request_headers

BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
        (b":path", b"/")]


def test_fields_become_a_dict_of_str() -> None:
    headers = request_headers([*BASE, (b"accept", b"*/*"), (b"cookie", b"a=1"),
                               (b"cookie", b"b=2"), (b"accept", b"text/html"),
                               (b"x-utf8", "café".encode()), (b"x-latin", b"caf\xe9")])
    assert headers == {":method": "GET", ":scheme": "https", ":authority": "localhost",
                       ":path": "/", "accept": "*/*, text/html", "cookie": "a=1; b=2",
                       "x-utf8": "café", "x-latin": "café"}


def test_a_remembered_field_is_still_checked_in_its_block() -> None:
    request_headers([*BASE, (b"accept", b"*/*")])  # remembered now
    with pytest.raises(MalformedRequest, match="after a regular field"):
        request_headers([(b"accept", b"*/*"), *BASE])


def test_memory_of_fields_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fields, "MAX_REMEMBERED", 50)
    for number in range(200):
        request_headers([*BASE, (b"x-n", str(number).encode())])
    assert len(fields._checked) <= 50
    request_headers([*BASE, (b"x-long", b"v" * 5000)])  # too long to remember
    assert (b"x-long", b"v" * 5000) not in fields._checked


def test_credentials_are_not_remembered() -> None:
    request_headers([*BASE, (b"authorization", b"Bearer secret"), (b"cookie", b"sid=1")])
    assert (b"authorization", b"Bearer secret") not in fields._checked
    assert (b"cookie", b"sid=1") not in fields._checked

"""The faster inbound header check refuses exactly what h2's own check refuses."""

from __future__ import annotations

import random

import h2.exceptions
import pytest

from hyper2web.server import h2_speedups

FIELDS = [
    (b":path", b"/"), (b":authority", b"localhost:5000"), (b"accept", b"*/*"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"), (b"x-empty", b""),
    (b"X-Upper", b"1"), (b"bad name", b"1"), (b"na\x7fme", b"1"), (b"caf\xc3\xa9", b"1"),
    (b"a:b", b"1"), (b"::", b"1"), (b":", b""), (b"x", b"a\x00b"), (b"x", b"a\nb"),
    (b"x", b"a\rb"), (b"x", b" lead"), (b"x", b"trail\t"), (b"x", b"\t"), (b"x", b"in side"),
    (b"x", b"\xff\xfe"), (b"cookie", b"a=1; b=2"), (b"\x00", b"v"), (b"x\n", b"v"),
]


def outcome(check, field):
    try:
        return ("ok", list(check([field], None)))
    except h2.exceptions.ProtocolError as exc:
        return ("refused", str(exc))


@pytest.mark.parametrize("field", FIELDS, ids=[repr(f) for f in FIELDS])
def test_same_outcome_as_h2(field: tuple[bytes, bytes]) -> None:
    original = h2_speedups._h2_check
    assert outcome(h2_speedups.reject_illegal_characters, field) == outcome(original, field)


def test_same_outcome_on_random_fields() -> None:
    rng = random.Random(9113)
    alphabet = bytes(range(256))
    for _ in range(3000):
        name = bytes(rng.choice(b"abcxyz-:" + alphabet) for _ in range(rng.randint(1, 6)))
        value = bytes(rng.choice(b"abc \t" + alphabet) for _ in range(rng.randint(0, 6)))
        field = (name, value)
        assert outcome(h2_speedups.reject_illegal_characters, field) == \
            outcome(h2_speedups._h2_check, field), field


def test_installed_in_h2() -> None:
    import h2.utilities

    import hyper2web.server.h2  # noqa: F401 - installs on import

    assert h2.utilities._reject_illegal_characters is h2_speedups.reject_illegal_characters

"""Fixtures of the framework tests: an HTTP/2 httpx client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


def _must_be_h2(response: httpx.Response) -> None:
    assert response.http_version == "HTTP/2", response.http_version


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An httpx client that speaks HTTP/2 only, trusts the test certificate and never
    follows redirects; every response is checked to have come over HTTP/2."""
    with httpx.Client(http1=False, http2=True, verify=False, timeout=10,
                      follow_redirects=False,
                      event_hooks={"response": [_must_be_h2]}) as c:
        yield c

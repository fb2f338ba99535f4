"""Fixtures of the static serving tests: an HTTP/2 httpx client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


def _must_be_h2(response: httpx.Response) -> None:
    assert response.http_version == "HTTP/2", response.http_version


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP/2-only httpx client that trusts the test certificate, follows no redirect
    and asks for no content coding unless a test sets ``accept-encoding`` itself."""
    with httpx.Client(http1=False, http2=True, verify=False, timeout=15,
                      follow_redirects=False, headers={"accept-encoding": "identity"},
                      event_hooks={"response": [_must_be_h2]}) as c:
        yield c

"""Fixtures of the static serving tests: an httpx client for each protocol.

Every test that takes ``client`` runs twice, over HTTP/2 and over HTTP/1.1: static files
are served by the same code on both, and must answer the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import PROTOCOLS, protocol_client


@pytest.fixture(params=PROTOCOLS)
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """Asks for no content coding unless a test sets ``accept-encoding`` itself."""
    with protocol_client(request.param, timeout=15,
                         headers={"accept-encoding": "identity"}) as c:
        yield c

"""Fixtures of the framework tests: an httpx client for each protocol.

Every test that takes ``client`` runs twice, over HTTP/2 and over HTTP/1.1: the App API,
routes and handlers behave the same on both.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import PROTOCOLS, protocol_client


@pytest.fixture(params=PROTOCOLS)
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with protocol_client(request.param, timeout=10) as c:
        yield c

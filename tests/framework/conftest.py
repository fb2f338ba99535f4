"""Fixtures of the framework tests: an httpx client for each protocol, and the stdlib
backend the proxy tests forward to.

Every test that takes ``client`` runs twice, over HTTP/2 and over HTTP/1.1: the App API,
routes and handlers behave the same on both.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.framework.proxykit import Backend, BackendServer, serve_backend
from tests.support import PROTOCOLS, protocol_client


@pytest.fixture(params=PROTOCOLS)
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with protocol_client(request.param, timeout=10) as c:
        yield c


@pytest.fixture
def backend_server() -> Iterator[BackendServer]:
    with serve_backend(Backend) as server:
        yield server

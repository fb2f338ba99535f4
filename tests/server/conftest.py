"""Fixtures of the protocol tests: a site with large files and an App with test handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.server.apps import Site, make_app


@pytest.fixture(scope="session")
def big_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return Site(tmp_path_factory.mktemp("public"))


@pytest.fixture
def server(serve_app: Callable[..., Any], big_site: Site) -> Any:
    """A running App over ``big_site`` with the test handlers."""
    running = serve_app(make_app(big_site.root))
    running.site = big_site
    return running

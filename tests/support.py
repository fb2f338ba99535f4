"""Helpers every test folder shares.

A plain module rather than ``conftest.py``: each test folder has a ``conftest.py`` of its
own, and only one module named ``conftest`` can be imported at a time. ``tests/`` is on
``sys.path`` because of the root conftest, so ``from support import ...`` works everywhere.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
URL_RE = re.compile(r"https://(?:localhost|\[[0-9a-f:]+\]|[\d.]+):(\d+)/")


def need_tool(name: str) -> str:
    """The path of an external tool; in CI a missing tool fails, elsewhere it skips."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: see .ci/run)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path

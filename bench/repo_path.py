"""Puts the repository root on ``sys.path``, once.

Bench scripts run as ``python bench/SCRIPT.py``: only bench/ is on ``sys.path``. They share
the test suite's HTTP/2 client, ``tests.server.h2client``; a module that imports it imports
this one first (``import repo_path`` sorts before the first-party ``from tests...``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

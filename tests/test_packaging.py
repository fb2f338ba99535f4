"""The wheel builds without a deprecation warning and carries what users' tools need."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import REPO


def test_the_wheel_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    # A copy of the source, so the build leaves nothing (build/, *.egg-info) in the checkout.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".venvs", "build", "dist", "*.egg-info", "__pycache__",
        ".pytest_cache", ".ruff_cache", ".mypy_cache", "tests", "bench", "*.pem", "*.key"))
    out = tmp_path / "dist"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps",
                           "--wheel-dir", str(out), str(source)],
                          capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    warned = [line for line in log.splitlines() if "deprecat" in line.lower()]
    assert not warned, "\n".join(warned)

    wheel = next(out.glob("hyper2web-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert "hyper2web/py.typed" in names  # editors see the public API's types
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "hyper2web_cli/templates/default/public/index.html" in names
    text = metadata.decode()
    assert "License-Expression: MIT" in text
    assert "Classifier: License ::" not in text

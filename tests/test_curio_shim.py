"""curio is imported through hyper2web._curio only, and its 3.12+ shim leaves no trace."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys

import pytest

from tests.support import REPO

IMPORT_CURIO = re.compile(r"^\s*(import curio|from curio\b)", re.MULTILINE)


def test_only_the_shim_imports_curio() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for package in ("hyper2web", "hyper2web_cli")
        for path in (REPO / package).rglob("*.py")
        if path.name != "_curio.py" and IMPORT_CURIO.search(path.read_text())
    ]
    assert offenders == []


@pytest.mark.skipif(sys.version_info < (3, 12), reason="ssl.wrap_socket exists before 3.12")
def test_no_wrap_socket_left_behind() -> None:
    import hyper2web  # noqa: F401
    from hyper2web._curio import curio

    assert curio.run  # curio imported and usable
    assert not hasattr(ssl, "wrap_socket")


def test_fresh_interpreter_imports_and_runs_curio() -> None:
    code = (
        "import ssl, hyper2web\n"
        "from hyper2web._curio import curio\n"
        "async def main():\n"
        "    await curio.sleep(0)\n"
        "    return 7\n"
        "assert curio.run(main) == 7\n"
        "import sys\n"
        "assert sys.version_info < (3, 12) or not hasattr(ssl, 'wrap_socket')\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_shim_is_a_no_op_before_312_or_with_a_fixed_curio(monkeypatch) -> None:
    from hyper2web import _curio

    monkeypatch.setattr(_curio, "_curio_version", lambda: (1, 7))
    assert _curio._needs_shim() is False
    monkeypatch.setattr(_curio, "_curio_version", lambda: (1, 6))
    assert _curio._needs_shim() is (sys.version_info >= (3, 12))

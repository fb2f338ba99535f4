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


def test_a_curio_that_imports_as_is_gets_no_shim() -> None:
    from hyper2web import _curio

    fixed = object()

    def shimmed() -> object:
        raise AssertionError("the shim ran")

    assert _curio._load(lambda: fixed, shimmed, (3, 13)) is fixed


def test_a_failed_import_is_forgotten_and_made_again_with_the_shim() -> None:
    """What curio 1.6 does on 3.12+: its import fails half-way, leaving submodules."""
    from hyper2web import _curio

    def fails() -> object:
        sys.modules["curio.half"] = type(sys)("curio.half")
        raise AttributeError("module 'multiprocessing.connection' has no attribute 'CHALLENGE'")

    shimmed = object()
    ours = {name: module for name, module in sys.modules.items()
            if name.partition(".")[0] == "curio"}
    try:
        assert _curio._load(fails, lambda: shimmed, (3, 12)) is shimmed
        assert not [name for name in sys.modules if name.partition(".")[0] == "curio"]
        with pytest.raises(AttributeError):  # before 3.12 a failure is a real one
            _curio._load(fails, lambda: shimmed, (3, 11))
    finally:
        sys.modules.pop("curio.half", None)
        sys.modules.update(ours)  # this process's curio, forgotten by the test


def test_starting_needs_no_package_metadata() -> None:
    """Asking for curio's version would load importlib.metadata (about 15 ms on 3.12+)."""
    code = "import sys, hyper2web_cli.cli; print('importlib.metadata' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr

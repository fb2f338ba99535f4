"""Start-up stays quick: what ``serve --cert/--key`` never needs is not imported."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_loads_without_cryptography() -> None:
    # Loading cryptography's x509 costs about a tenth of start-up; only making or reading
    # certificates needs it, and those import it themselves.
    code = "import sys, hyper2web_cli.cli; print('cryptography' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"

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


def test_what_only_some_answers_or_commands_need_loads_on_first_use() -> None:
    """brotli and zstandard (a compressed answer), tomllib (a config file), zipfile (the
    templates of ``init``), h11 and wsproto (an HTTP/1.1 or WebSocket client)."""
    lazy = ["brotli", "zstandard", "tomllib", "zipfile", "h11", "wsproto"]
    code = ("import sys, hyper2web_cli.cli, hyper2web.app; "
            f"print([name for name in {lazy!r} if name in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_compression_still_works_after_loading_late() -> None:
    from hyper2web import encoding

    text = b"hyper2web " * 400
    for name in ("br", "zstd", "gzip"):
        packed = encoding.COMPRESSORS[name](text)
        assert isinstance(packed, bytes) and len(packed) < len(text)

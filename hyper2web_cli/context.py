"""Click settings every command shares: ``-h`` as well as ``--help``, help 100 columns wide.

They live in a module of their own so that the group (``cli.py``) and the command modules
(``serve.py``) can all use them without importing one another.
"""

from __future__ import annotations

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

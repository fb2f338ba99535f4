"""The generated site every server serves: the same files, the same JSON, the same certificate.

    SITE/public/index.html         2 KB page                      (S1)
    SITE/public/app.js             30 KB script                   (S2, S9)
    SITE/public/files/large.bin    1 MB of random bytes           (S3)
    SITE/public/modules/index.html a page importing 150 modules   (S5)
    SITE/public/modules/mNNN.js    150 small ES modules
    SITE/records.json              the API's records              (S6)
    SITE/routes.py                 hyper2web's GET /api/records
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PAGE_SIZE = 2 * 1024
SCRIPT_SIZE = 30 * 1024
LARGE_SIZE = 1024 * 1024
MODULES = 150

PAGE = "/index.html"
SCRIPT = "/app.js"
LARGE = "/files/large.bin"
MODULE_PAGE = "/modules/index.html"
API = "/api/records"

ROUTES_PY = '''\
"""GET /api/records: the records in records.json, serialized on each request; POST
/api/upload: the size of the (buffered) request body, for make stress."""

import json
from pathlib import Path

RECORDS = json.loads((Path(__file__).parent / "records.json").read_text())


async def records(request, response):
    await response.send_json(RECORDS)


async def upload(request, response):
    await response.send_json({"size": len(request.stream.data)})


def setup(app):
    app.get("api/records", records)
    app.post("api/upload", upload)
'''


def _pad(text: str, size: int, filler: str) -> str:
    """``text`` with ``filler`` lines inserted before its last line, to ``size`` bytes."""
    head, _, tail = text.rpartition("\n")
    head += "\n"
    while len(head) + len(tail) + len(filler) <= size:
        head += filler
    head += " " * (size - len(head) - len(tail) - 1) + "\n"
    return head + tail


def records() -> list[dict[str, object]]:
    """About 1 KB of JSON; no quote, backslash or dollar sign (nginx returns it verbatim)."""
    names = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances",
             "Edsger", "Radia", "Donald", "Barbara L", "Alan", "Katherine", "John", "Hedy"]
    return [{"id": number, "name": name, "score": 1000 - 37 * number,
             "level": number % 7 + 1, "active": number % 3 != 0}
            for number, name in enumerate(names, 1)]


def module_text(number: int) -> str:
    following = f'import {{ value as next }} from "./m{number + 1:03d}.js";\n' \
        if number + 1 < MODULES else "const next = 0;\n"
    body = "".join(f"// module {number}, line {line}: a small piece of an application\n"
                   for line in range(4))
    return (f"{following}{body}export const value = next + {number};\n"
            f"export function describe() {{ return `module {number}: ${{value}}`; }}\n")


def make_site(folder: Path) -> Path:
    """Write the site into ``folder`` (created); returns ``folder``."""
    public = folder / "public"
    (public / "files").mkdir(parents=True)
    (public / "modules").mkdir()
    paragraph = ("    <p>hyper2web benchmark page: a small HTML document with a heading, "
                 "some text and a script.</p>\n")
    page = ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>bench</title>\n<script src=\"/app.js\" defer></script>\n</head>\n"
            "<body>\n  <h1>Benchmark</h1>\n</body>\n</html>")
    (public / "index.html").write_text(_pad(page, PAGE_SIZE, paragraph))
    script = "\"use strict\";\nconsole.log(\"bench\", 0);"
    function = "function f(a, b) { return a.map((x, i) => x * b + i).filter(Boolean); }\n"
    (public / "app.js").write_text(_pad(script, SCRIPT_SIZE, function))
    (public / "files" / "large.bin").write_bytes(os.urandom(LARGE_SIZE))
    imports = "".join(f'  <script type="module" src="m{n:03d}.js"></script>\n'
                      for n in range(MODULES))
    (public / "modules" / "index.html").write_text(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>modules</title>\n{imports}</head>\n<body>\n  <h1>Modules</h1>\n</body>\n"
        "</html>\n")
    for number in range(MODULES):
        (public / "modules" / f"m{number:03d}.js").write_text(module_text(number))
    (folder / "records.json").write_text(json.dumps(records(), separators=(",", ":")))
    (folder / "routes.py").write_text(ROUTES_PY)
    return folder


def module_paths() -> list[str]:
    """The URL paths of one module-heavy page load: the page, then its modules."""
    return [MODULE_PAGE, *(f"/modules/m{n:03d}.js" for n in range(MODULES))]

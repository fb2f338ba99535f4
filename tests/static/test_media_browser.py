"""Headless Chromium against the static server: a <video> seeking in a served webm, compressed
scripts, client-side routes, folder listings and a service worker's scope."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.static.statictools import CHROMIUM_ARGS
from tests.support import launched_chromium

RECORD = """async () => {
  const canvas = document.createElement('canvas');
  canvas.width = 160; canvas.height = 120;
  const g = canvas.getContext('2d');
  const recorder = new MediaRecorder(canvas.captureStream(30),
                                     {mimeType: 'video/webm;codecs=vp8'});
  const chunks = [];
  recorder.ondataavailable = e => chunks.push(e.data);
  let frame = 0;
  const draw = () => {
    g.fillStyle = `hsl(${frame * 9 % 360}, 80%, 50%)`;
    g.fillRect(0, 0, 160, 120);
    g.fillStyle = '#fff';
    g.fillText(String(frame++), 10, 60);
  };
  draw();
  const timer = setInterval(draw, 33);
  recorder.start(100);
  await new Promise(r => setTimeout(r, 1500));
  await new Promise(r => { recorder.onstop = r; recorder.stop(); });
  clearInterval(timer);
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}"""

SEEK = """async (target) => {
  const v = document.querySelector('video');
  if (v.readyState < 1) await new Promise((ok, fail) => {
    v.onloadedmetadata = ok;
    v.onerror = () => fail(new Error('media error ' + (v.error && v.error.code)));
  });
  v.currentTime = target;
  await new Promise(r => v.onseeked = r);
  // A MediaRecorder file names no duration: Chromium knows it once it has read the last
  // cluster, which on a busy machine can come after the seek.
  if (!isFinite(v.duration))
    await new Promise(r => { v.ondurationchange = r; setTimeout(r, 5000); });
  return {duration: v.duration, time: v.currentTime, ready: v.readyState,
          seekable: v.seekable.length ? v.seekable.end(0) : 0, error: v.error};
}"""


class Collect(logging.Handler):
    """The server's access log lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium(timeout=15000, args=CHROMIUM_ARGS) as instance:
        yield instance


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(ignore_https_errors=True)
    tab = context.new_page()
    tab.set_default_timeout(10000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    public.mkdir()
    (public / "blank.html").write_text("<!doctype html><title>blank</title>")
    return public


@pytest.mark.timeout(60)
def test_video_seeks_in_a_served_webm(serve_app, root, page) -> None:
    server = serve_app(root=root)
    page.goto(server.url + "/blank.html")
    clip = base64.b64decode(page.evaluate(RECORD))
    assert clip[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a webm file
    (root / "clip.webm").write_bytes(clip)
    (root / "play.html").write_text(
        "<!doctype html><title>play</title><video src='clip.webm' muted preload=auto></video>")

    media: list[tuple[int, dict[str, str], str | None]] = []
    page.on("response", lambda r: media.append((r.status, r.headers, r.request.headers.get(
        "range"))) if r.url.endswith("/clip.webm") else None)
    access = logging.getLogger("hyper2web.access")
    log = Collect()
    level = access.level
    access.addHandler(log)
    access.setLevel(logging.INFO)
    try:
        page.goto(server.url + "/play.html")
        result = page.evaluate(SEEK, 0.9)
    finally:
        access.removeHandler(log)
        access.setLevel(level)
    assert result["error"] is None
    assert 1.0 < result["duration"] < 3.0
    assert abs(result["time"] - 0.9) < 0.05
    assert result["ready"] >= 2  # the frame at the new position is decoded
    assert result["seekable"] > 1.0

    assert media, "the browser never fetched the clip"
    for status, headers, asked in media:
        assert asked is not None and asked.startswith("bytes=")
        assert status == 206
        first, last = asked[6:].split("-")
        start = int(first)
        end = int(last) if last else len(clip) - 1
        assert headers["content-range"] == f"bytes {start}-{end}/{len(clip)}"
        assert headers["content-type"] == "video/webm"
    logged = [line for line in log.lines if "/clip.webm" in line]
    assert logged and all(" 206 " in line for line in logged), logged


def test_compressed_scripts_run(serve_app, root, page) -> None:
    values = ", ".join(str(i * 7 % 1000) for i in range(5000))
    (root / "big.js").write_text(f"window.values = [{values}];\nwindow.ready = true;\n")
    (root / "index.html").write_text(
        "<!doctype html><title>js</title><script src='/big.js'></script>")
    server = serve_app(root=root)
    encodings = {}
    page.on("response", lambda r: encodings.__setitem__(
        r.url.rsplit("/", 1)[-1], r.headers.get("content-encoding")))
    page.goto(server.url + "/")
    assert page.evaluate("window.ready && window.values.length") == 5000
    assert page.evaluate("window.values.reduce((a, b) => a + b, 0)") == sum(
        i * 7 % 1000 for i in range(5000))
    assert encodings["big.js"] in ("br", "zstd")
    assert encodings[""] is None  # the page is under 1 KB


def test_client_side_routes(serve_app, root, page) -> None:
    (root / "index.html").write_text(
        "<!doctype html><title>Shell</title><div id=out></div>"
        "<script type=module src='/main.js'></script>")
    (root / "main.js").write_text(
        "const r = await fetch('/api/items');\n"
        "document.getElementById('out').textContent = location.pathname + ' ' + r.status;\n")
    server = serve_app(root=root, spa=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(server.url + "/settings/profile")
    assert response.status == 200
    assert page.title() == "Shell"
    page.wait_for_function("document.getElementById('out').textContent !== ''")
    # the module loaded as a script (not the shell), and fetch() of a missing URL is a 404
    assert page.locator("#out").inner_text() == "/settings/profile 404"
    assert errors == []
    missing = page.goto(server.url + "/missing.js")
    assert missing.status == 404


def test_listing_links_in_the_browser(serve_app, root, page) -> None:
    (root / "files" / "sous dossier").mkdir(parents=True)
    (root / "files" / "a b é.txt").write_text("unicode and spaces\n")
    (root / "files" / "sous dossier" / "inner.txt").write_text("inner\n")
    server = serve_app(root=root)
    page.goto(server.url + "/files")  # redirected to the folder's URL
    assert page.url == server.url + "/files/"
    assert page.title() == "Index of /files/"
    page.click("text=a b é.txt")
    page.wait_for_url("**/a%20b%20%C3%A9.txt")
    assert page.locator("body").inner_text().strip() == "unicode and spaces"
    page.go_back()
    page.click("text=sous dossier/")
    page.wait_for_url("**/sous%20dossier/")
    page.click("text=inner.txt")
    assert page.locator("body").inner_text().strip() == "inner"
    page.go_back()
    page.click("text=../")
    page.wait_for_url(server.url + "/files/")


@pytest.mark.parametrize("allowed", ["/", None])
def test_service_worker_scope(serve_app, root, page, allowed) -> None:
    (root / "js").mkdir()
    (root / "js" / "sw.js").write_text(
        "self.addEventListener('install', () => self.skipWaiting());\n")
    server = serve_app(root=root, sw_allowed=allowed)
    page.goto(server.url + "/blank.html")
    outcome = page.evaluate("""async () => {
      try {
        const reg = await navigator.serviceWorker.register('/js/sw.js', {scope: '/'});
        return 'registered ' + new URL(reg.scope).pathname;
      } catch (e) { return e.name; }
    }""")
    assert outcome == ("registered /" if allowed else "SecurityError")

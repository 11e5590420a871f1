"""Open an HTML page in headless Chromium and report what the browser made of it.

Used by the report's browser test and to take its screenshots. No driver library is
needed: a copy of the page with a small checking script appended is opened with
``chromium --headless --dump-dom``; the script waits until every ``<audio>`` has loaded its
metadata (or failed) and every ``<img>`` has loaded (or failed), then writes what it found
as JSON into the DOM, which ``--dump-dom`` prints. The copy sits next to the page, so the
page's relative links resolve as they do for a reader.

Install the browser with ``make browser`` (the Debian package ``chromium``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHECK_ID = "spokenlm-browser-check"

#: waits for every media element and image, then writes the findings into the DOM
CHECK_SCRIPT = """
<pre id="%(id)s"></pre>
<script>
(function () {
  var audios = Array.from(document.querySelectorAll('audio'));
  var images = Array.from(document.querySelectorAll('img'));
  function settled() {
    return audios.filter(function (a) { return a.readyState >= 1 || a.error; }).length
      + images.filter(function (i) { return i.complete; }).length;
  }
  function report() {
    var total = audios.length + images.length, done = settled();
    document.getElementById('%(id)s').textContent = JSON.stringify({
      pending: total - done, title: document.title,
      audio: audios.map(function (a) {
        return {src: a.currentSrc.slice(0, 120), duration: a.duration,
                ready_state: a.readyState, error: a.error ? a.error.code : null};
      }),
      images: images.map(function (i) {
        return {alt: i.alt, complete: i.complete, width: i.naturalWidth,
                height: i.naturalHeight};
      }),
      sections: Array.from(document.querySelectorAll('section')).map(function (s) {
        return {id: s.id, top: s.getBoundingClientRect().top + window.scrollY};
      }),
      page_height: document.documentElement.scrollHeight
    });
  }
  audios.forEach(function (a) {
    ['loadedmetadata', 'error'].forEach(function (e) { a.addEventListener(e, report); });
  });
  images.forEach(function (i) {
    ['load', 'error'].forEach(function (e) { i.addEventListener(e, report); });
  });
  window.addEventListener('load', report);
  report();
})();
</script>
"""


def find_chromium() -> str | None:
    """Path of a Chromium executable (``chromium``, ``chromium-browser``, ``google-chrome``,
    or ``$CHROMIUM``), None when none is installed."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _flags(profile: str) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--mute-audio", "--hide-scrollbars",
            "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}"]


def check_page(page: str | os.PathLike, *, width: int = 1280, timeout_s: float = 60.0) -> dict:
    """Load ``page`` in headless Chromium and return what the browser found: ``audio``
    (per element: ``duration`` in s, ``ready_state``, ``error``), ``images`` (``complete``,
    natural ``width``/``height``), ``sections`` (``id``, ``top`` in px), ``page_height``
    and ``pending`` (elements that had neither loaded nor failed when the browser stopped:
    0 when all settled). The window is ``width`` pixels wide, as for :func:`screenshot`."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found; install it with `make browser`")
    page = Path(page).resolve()
    text = page.read_text(encoding="utf-8")
    script = CHECK_SCRIPT % {"id": CHECK_ID}
    checked = text.replace("</body>", script + "</body>") if "</body>" in text \
        else text + script
    fd, tmp = tempfile.mkstemp(prefix=f".{page.stem}.check.", suffix=".html", dir=page.parent)
    os.close(fd)
    try:
        Path(tmp).write_text(checked, encoding="utf-8")
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run(
                [chromium, *_flags(profile), f"--window-size={width},1000",
                 f"--virtual-time-budget={int(timeout_s * 1000)}", "--dump-dom",
                 Path(tmp).as_uri()],
                capture_output=True, text=True, timeout=timeout_s + 60)
    finally:
        os.unlink(tmp)
    found = re.search(rf'<pre id="{CHECK_ID}">(.*?)</pre>', proc.stdout, re.S)
    if not found or not found.group(1).strip():
        raise RuntimeError(f"Chromium gave no result for {page} (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    import html

    return json.loads(html.unescape(found.group(1)))


def screenshot(page: str | os.PathLike, output: str | os.PathLike, *, width: int = 1280,
               height: int = 1600, timeout_s: float = 60.0) -> Path:
    """A PNG of the top ``width`` x ``height`` pixels of ``page`` as Chromium draws it."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found; install it with `make browser`")
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *_flags(profile), f"--window-size={width},{height}",
                        f"--virtual-time-budget={int(timeout_s * 1000)}",
                        f"--screenshot={output}", Path(page).resolve().as_uri()],
                       capture_output=True, text=True, timeout=timeout_s + 60, check=True)
    return output

"""Helpers for the review UI tests: the real server in a background thread, headless Chromium,
and a mouse selection over given code-point offsets of the trace.

Also a script that makes the README's screenshots from the bundled sample:

    python -m tests.browser docs/review_ui.png
    python -m tests.browser --report docs/report.png
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from splitreason.review_ui.server import SESSION_COOKIE, create_app, start_site

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def launch_chromium(playwright):
    """Headless Chromium from the system package (scripts/setup_browser.sh); never `playwright install`."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/setup_browser.sh")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


class ReviewServerThread:
    """The review UI app (the same create_app the command uses) on 127.0.0.1, a free port, in a thread."""

    def __init__(self, out: Path, *, reviewer: str = "tester", status: str = "review", token: str | None = None):
        self.token = token or secrets.token_urlsafe(24)
        self.app = create_app(out, reviewer=reviewer, token=self.token, status=status)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._session: str | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            runner, self.port = self._loop.run_until_complete(start_site(self.app, "127.0.0.1", 0))
        except BaseException as error:  # handed to the test thread in __enter__
            self._error = error
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def page_url(self) -> str:
        return f"{self.base_url}/?token={self.token}"

    @property
    def session(self) -> str:
        """The session cookie a browser gets for the printed link (the link works once: kept here)."""
        if self._session is None:
            self._session = sign_in(self.base_url, self.token)
        return self._session

    def __enter__(self) -> ReviewServerThread:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def call(server: ReviewServerThread, method: str, path: str, body: object = None, *,
         session: str | None = "valid", raw: bytes | None = None, content_type: str = "application/json",
         headers: dict[str, str] | None = None):
    """One real HTTP request with the session cookie a browser holds ("valid"), another, or none;
    (status, parsed JSON body)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.base_url + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", content_type)
    if session is not None:
        request.add_header("Cookie", f"{SESSION_COOKIE}={server.session if session == 'valid' else session}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        assert "Traceback" not in text
        return error.code, json.loads(text)


def sign_in(base_url: str, token: str) -> str:
    """Open the printed link as a browser does, without following its redirect; the session cookie.

    The server answers 303 to the bare address with an HttpOnly, SameSite=Strict cookie."""
    import http.client
    from http.cookies import SimpleCookie
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", f"/?token={quote(token)}")
        response = connection.getresponse()
        response.read()
        assert response.status == 303 and response.getheader("Location") == "/", response.status
        header = response.getheader("Set-Cookie")
        assert "HttpOnly" in header and "SameSite=Strict" in header, header
        return SimpleCookie(header)[SESSION_COOKIE].value
    finally:
        connection.close()


# Text positions are found with the page's own text nodes but converted independently of the
# app's offsets.js: code points are counted here in a plain loop over the string.
_CHAR_RECT_JS = """([point]) => {
  for (const segment of document.querySelectorAll('#trace > [data-start]')) {
    const start = Number(segment.dataset.start), end = Number(segment.dataset.end);
    if (point < start || point >= end) continue;
    const node = segment.firstChild, text = node.data;
    let unit = 0;
    for (let seen = start; seen < point; seen += 1) unit += text.codePointAt(unit) > 0xffff ? 2 : 1;
    const width = text.codePointAt(unit) > 0xffff ? 2 : 1;
    const range = document.createRange();
    range.setStart(node, unit);
    range.setEnd(node, unit + width);
    const rect = range.getClientRects()[0];
    return {left: rect.left, right: rect.right, top: rect.top, bottom: rect.bottom};
  }
  return null;
}"""


def char_rect(page, point: int) -> dict:
    page.locator('#trace > [data-start]').first.wait_for()
    rect = page.evaluate(_CHAR_RECT_JS, [point])
    if rect is None:
        raise AssertionError(f"no character at code point {point} in the rendered trace")
    return rect


def drag_select(page, start: int, end: int) -> None:
    """Select trace[start:end] (code points) with the mouse: press before the first character,
    release after the last one, as a person would."""
    page.evaluate("""([point]) => {
      const seg = [...document.querySelectorAll('#trace > [data-start]')]
        .find((s) => Number(s.dataset.start) <= point && point < Number(s.dataset.end));
      seg.scrollIntoView({block: 'center'});
    }""", [start])
    first, last = char_rect(page, start), char_rect(page, end - 1)
    page.mouse.move(first["left"] + 1, (first["top"] + first["bottom"]) / 2)
    page.mouse.down()
    page.mouse.move(last["right"] - 1, (last["top"] + last["bottom"]) / 2, steps=8)
    page.mouse.up()


def make_screenshot(target: Path) -> None:
    """Annotate the bundled sample, open the first trace that has characters outside the BMP,
    draw one span with the mouse, and save a screenshot of the page."""
    from playwright.sync_api import sync_playwright

    from splitreason.io.run_dir import RunDir

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "splitreason.cli", "annotate", "-o", str(out), "--limit", "24",
                        "--accept-threshold", "1.0", "--no-progress"], check=True, capture_output=True)
        annotation = next(a for a in RunDir(out).iter_annotations()
                          if a.status == "review" and any(ord(c) > 0xFFFF for c in a.trace))
        phrase = "whose discriminant is"
        start = annotation.trace.index(phrase)
        with ReviewServerThread(out, reviewer="alice") as server, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(f"{server.page_url}#id={quote(annotation.trace_id)}")
            page.wait_for_selector("body[data-ready=true]")
            drag_select(page, start, start + len(phrase))
            page.locator(f'#trace mark[data-start="{start}"]').wait_for()
            page.click("#trace mark.judge >> nth=0")
            page.evaluate("document.querySelector('#document').scrollTop = 0")
            target.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target))
            browser.close()


def make_report_screenshot(target: Path, *, full_page: bool = False) -> None:
    """Build the report of tests/test_report.py's run (the bundled sample, curated, annotated and
    partly reviewed) and save a screenshot of the page in headless Chromium."""
    from playwright.sync_api import sync_playwright

    from tests.builders import build_curated_run, save_reviews

    with tempfile.TemporaryDirectory() as tmp:
        _, out = build_curated_run(Path(tmp))
        save_reviews(out)
        page_path = out / "report.html"
        subprocess.run([sys.executable, "-m", "splitreason.cli", "report", str(out), "-o", str(page_path),
                        "--no-progress"], check=True, capture_output=True)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1300, "height": 1500})
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            target.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target), full_page=full_page)
            browser.close()


if __name__ == "__main__":
    # python -m tests.browser [docs/review_ui.png] | python -m tests.browser --report [docs/report.png]
    if sys.argv[1:2] == ["--report"]:
        make_report_screenshot(Path(sys.argv[2] if len(sys.argv) > 2 else "docs/report.png"))
    else:
        make_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/review_ui.png"))

"""The built-in review UI (`splitreason review serve`): the real aiohttp app on 127.0.0.1, real
HTTP, the real OUT/review.sqlite, and headless Chromium driven by Playwright for the page.

Run directories come from `splitreason annotate` on the bundled sample with a high accept
threshold, so most traces land in review, one of them with characters outside the BMP.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from splitreason.io.run_dir import RunDir
from splitreason.review.store import ReviewStore
from splitreason.schemas.annotation import Annotation
from splitreason.review_ui.server import SESSION_COOKIE
from tests.browser import ReviewServerThread, call, drag_select, launch_chromium, sign_in
from tests.helpers import assert_one_clean_error, cli_command, cli_env, ok, openr1_record, reasoning_trace, run_cli


@pytest.fixture
def out(review_run: Path) -> Path:
    return review_run


def in_review(out: Path) -> list[Annotation]:
    return sorted((a for a in RunDir(out).iter_annotations() if a.status == "review"),
                  key=lambda a: (a.confidence, a.trace_id))


def astral_trace(out: Path) -> Annotation:
    """The first trace in review with characters outside the BMP (the bundled sample has one)."""
    found = [a for a in in_review(out) if any(ord(c) > 0xFFFF for c in a.trace)]
    assert found, "the bundled sample should put a trace with astral characters in review"
    return found[0]


def stored(out: Path, reviewer: str = "tester") -> tuple[list, list[str]]:
    """Every review in OUT/review.sqlite, and the ids of the reviewer's drafts among the run's traces."""
    with ReviewStore.for_run(out) as store:
        drafts = [a.trace_id for a in RunDir(out).iter_annotations() if store.draft(a.trace_id, reviewer)]
        return store.reviews(), drafts


# -- API, over real HTTP -------------------------------------------------------------------------

def test_every_write_and_every_api_read_needs_the_session(out: Path) -> None:
    trace_id = in_review(out)[0].trace_id
    with ReviewServerThread(out) as server:
        edit = {"trace_id": trace_id, "action": "add", "start": 0, "end": 5}
        # No cookie, an empty or wrong one, and the launch token itself: none of them is a session.
        for session in (None, "", "wrong-session-of-some-length", server.token, server.session[:-1]):
            assert call(server, "POST", "/api/edit", edit, session=session)[0] == 403
            assert call(server, "POST", "/api/decision", {"trace_id": trace_id, "decision": "accepted"},
                        session=session)[0] == 403
            assert call(server, "GET", "/api/queue", session=session)[0] == 403
            assert call(server, "GET", f"/api/trace?id={quote(trace_id)}", session=session)[0] == 403
            assert call(server, "DELETE", "/anything", session=session)[0] == 403  # writes on any path
        status, body = call(server, "POST", "/api/edit", edit, session=None)
        assert "open the link printed" in body["error"]
        # The launch token in a header (the old way) opens nothing either.
        assert call(server, "GET", "/api/queue", session=None, headers={"X-Review-Token": server.token})[0] == 403
        # The page itself loads without a session (its requests then say how to sign in).
        with urllib.request.urlopen(server.base_url + "/", timeout=10) as response:
            assert response.status == 200 and "Content-Security-Policy" in response.headers
    assert stored(out) == ([], [])


def test_the_printed_link_works_once_and_leaves_the_address_bar_clean(out: Path) -> None:
    """Opening the link swaps its token for an HttpOnly session cookie and redirects to the bare
    address: a later visitor who finds the link in the browser's history gets nothing."""
    with ReviewServerThread(out) as server:
        session = sign_in(server.base_url, server.token)  # 303 to "/", HttpOnly, SameSite=Strict
        assert session != server.token
        status, queue = call(server, "GET", "/api/queue", session=session)
        assert status == 200 and queue["reviewer"] == "tester"
        for token in (server.token, "x" * 32):  # the link again, or a guess
            request = urllib.request.Request(f"{server.base_url}/?token={token}")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 403
            error = json.loads(refused.value.read())["error"]
            assert "used already" in error and "\n" not in error
        assert call(server, "GET", "/api/queue", session=session)[0] == 200  # the browser that signed in goes on


def test_requests_addressed_to_another_host_or_from_another_site_are_refused(out: Path) -> None:
    """DNS rebinding: a page on evil.example whose name now points to 127.0.0.1 sends Host: evil.example."""
    trace_id = in_review(out)[0].trace_id
    with ReviewServerThread(out) as server:
        port = server.port
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", f"10.0.0.1:{port}",
                     f"localhost.evil.example:{port}"):
            status, body = call(server, "GET", "/api/queue", headers={"Host": host})
            assert status == 403 and "Host header" in body["error"], host
            status, _ = call(server, "GET", "/", session=None, headers={"Host": host})
            assert status == 403, host
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            assert call(server, "GET", "/api/queue", headers={"Host": host})[0] == 200, host
        decision = {"trace_id": trace_id, "decision": "accepted"}
        status, body = call(server, "POST", "/api/decision", decision, headers={"Origin": "http://evil.example"})
        assert status == 403 and "another site" in body["error"]
        assert call(server, "POST", "/api/decision", decision, headers={"Origin": f"http://localhost:{port}"})[0] == 200
    assert [review.trace_id for review in stored(out)[0]] == [trace_id]


def test_malformed_requests_get_a_4xx_and_one_line_of_json(out: Path) -> None:
    """Bodies too large, too deep, with numbers Python will not convert, not UTF-8, not objects; ids
    too long or not strings; offsets that are not integers; unknown paths and methods."""
    annotation = in_review(out)[0]
    with ReviewServerThread(out) as server:
        def post(raw: bytes, path: str = "/api/edit"):
            return call(server, "POST", path, raw=raw)

        huge = b"1" + b"0" * 5000  # past Python's 4,300-digit conversion limit
        cases = {
            "deep": post(b"[" * 20_000 + b"]" * 20_000),  # under the size cap, past the recursion limit
            "deep object": post(b'{"a":' * 10 + b"1" + b"}" * 10),
            "huge int": post(b'{"trace_id": "' + annotation.trace_id.encode() + b'", "action": "add", "start": '
                             + huge + b', "end": 3}'),
            "huge int key": post(b'{"x": ' + huge + b"}", "/api/decision"),
            "nan": post(b'{"trace_id": "' + annotation.trace_id.encode() + b'", "action": "add", "start": NaN, '
                        b'"end": 3}'),
            "not utf-8": post(b'{"trace_id": "\xff\xfe"}'),
            "null": post(b"null"),
            "string": post(b'"x"'),
            "empty": post(b""),
            "too large": post(b'{"pad": "' + b"x" * 70_000 + b'"}'),
            "long id": call(server, "POST", "/api/edit", {"trace_id": "x" * 1001, "action": "add", "start": 0,
                                                          "end": 1}),
            "id object": call(server, "POST", "/api/decision", {"trace_id": {"a": 1}, "decision": "accepted"}),
            "query long id": call(server, "GET", f"/api/trace?id={'x' * 1001}"),
            "query bad escapes": call(server, "GET", "/api/trace?id=%ff%ZZ%00"),
            "unknown path": call(server, "GET", "/api/nothing"),
            "wrong method": call(server, "PUT", "/api/edit", {"trace_id": annotation.trace_id}),
            "bad static": call(server, "GET", "/static/%2e%2e/server.py"),
        }
        for name, (status, body) in cases.items():
            assert 400 <= status < 500, (name, status, body)
            assert set(body) == {"error"} and body["error"] and "\n" not in body["error"], (name, body)
        assert cases["too large"][0] == 413 and cases["deep"][0] == 400
        assert "too many digits" in cases["huge int"][1]["error"] and "nested" in cases["deep"][1]["error"]
        assert call(server, "GET", "/api/queue")[0] == 200  # and the server is still there
    assert stored(out) == ([], [])


def test_http_the_server_cannot_parse_is_a_400_and_no_traceback(out: Path) -> None:
    """A garbage request line or a header aiohttp cannot parse never reaches the app: aiohttp answers
    400 itself, and the server's console stays quiet."""
    import socket

    with ReviewServerThread(out) as server:
        for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
                    b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(raw)
                answer = sock.recv(4096).decode("latin-1")
            assert answer.split(" ", 2)[1] == "400" and "Traceback" not in answer, answer
        assert call(server, "GET", "/api/queue")[0] == 200


def test_queue_is_lowest_confidence_first_with_progress(out: Path) -> None:
    expected = in_review(out)
    assert len(expected) >= 5 and len({a.confidence for a in expected}) > 1
    with ReviewServerThread(out) as server:
        status, queue = call(server, "GET", "/api/queue")
    assert status == 200
    assert [item["trace_id"] for item in queue["items"]] == [a.trace_id for a in expected]
    confidences = [item["confidence"] for item in queue["items"]]
    assert confidences == sorted(confidences)
    assert queue["progress"] == {"total": len(expected), "reviewed": 0, "remaining": len(expected),
                                 "accepted": 0, "rejected": 0}
    assert queue["start"] == expected[0].trace_id
    # Why each trace is here, and the beginning of its problem for the queue's snippet.
    for item, annotation in zip(queue["items"], expected):
        assert item["reason"] == annotation.status_reason == "low_confidence"
        assert item["reason_text"] == "low confidence"
        assert annotation.problem.startswith(item["problem"]) and len(item["problem"]) >= min(len(annotation.problem), 300)

    everything = list(RunDir(out).iter_annotations())
    with ReviewServerThread(out, status="all") as server:
        _, queue = call(server, "GET", "/api/queue")
    assert len(queue["items"]) == len(everything) > len(expected)
    assert {item["status"] for item in queue["items"]} >= {"review", "accepted"}


def test_katex_is_served_from_the_package_under_the_strict_policy(out: Path) -> None:
    """The vendored KaTeX (scripts/vendor_katex.py) is intact and served; nothing else from its folder."""
    import re
    import sys

    checked = subprocess.run([sys.executable, "scripts/vendor_katex.py", "--offline"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    folder = Path(__file__).parent.parent / "splitreason" / "review_ui" / "static" / "katex"
    listed = json.loads((folder / "VENDORED.json").read_text())
    fonts = [name for name in listed["files"] if name.startswith("fonts/")]
    assert "LICENSE" in listed["files"] and "MIT" in (folder / "LICENSE").read_text() and len(fonts) >= 20
    with ReviewServerThread(out) as server:
        def get(path: str):
            with urllib.request.urlopen(server.base_url + path, timeout=10) as response:
                return response.headers, response.read()

        headers, body = get("/static/katex/katex.min.js")
        assert headers["Content-Type"].startswith("text/javascript") and body == (folder / "katex.min.js").read_bytes()
        assert f'version:"{listed["version"]}"' in body.decode()
        headers, body = get(f"/static/{quote('katex/' + fonts[0])}")
        assert headers["Content-Type"] == "font/woff2" and body == (folder / fonts[0]).read_bytes()
        _, css = get("/static/katex/katex.min.css")
        # Every WOFF2 font the stylesheet names is served (the WOFF/TTF fallbacks are not shipped).
        named = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css.decode()))
        assert named and named <= set(fonts)
        policy = headers["Content-Security-Policy"]
        assert "font-src 'self'" in policy and "style-src 'self';" in policy
        assert "unsafe" not in policy and "http" not in policy
        for path in ("/static/katex/VENDORED.json", "/static/katex/fonts/KaTeX_Main-Regular.ttf",
                     "/static/katex/../server.py", "/static/katex"):
            assert call(server, "GET", path)[0] == 404, path


def test_invalid_ids_offsets_and_bodies_are_refused(out: Path) -> None:
    annotation = astral_trace(out)
    accepted = next(a for a in RunDir(out).iter_annotations() if a.status == "accepted")
    length = len(annotation.trace)
    first = annotation.spans[0]
    with ReviewServerThread(out) as server:
        def edit(**fields):
            return call(server, "POST", "/api/edit", {"trace_id": annotation.trace_id, **fields})

        assert call(server, "GET", f"/api/trace?id={quote(accepted.trace_id)}")[0] == 404  # not in review
        assert call(server, "GET", "/api/trace?id=..%2F..%2Fetc%2Fpasswd")[0] == 404
        assert call(server, "GET", "/api/trace")[0] == 400
        assert call(server, "POST", "/api/edit", {"trace_id": "nope", "action": "add", "start": 0, "end": 1})[0] == 404
        assert call(server, "POST", "/api/edit", {"trace_id": ["x"], "action": "add", "start": 0, "end": 1})[0] == 400
        for start, end in [(-1, 3), (5, 5), (7, 3), (0, length + 1), (1.5, 3), (True, 3), ("0", 3), (None, 3)]:
            status, body = edit(action="add", start=start, end=end)
            assert status == 400, (start, end, body)
        assert edit(action="add", start=first.start + 1, end=first.end + 1)[0] == 409  # overlaps a judge span
        assert edit(action="remove", previous_start=first.start, previous_end=first.end + 1)[0] == 409
        assert len(annotation.spans) >= 2
        assert edit(action="resize", previous_start=first.start, previous_end=first.end, start=0, end=length)[0] == 409
        assert edit(action="explode")[0] == 400
        assert call(server, "POST", "/api/decision", {"trace_id": annotation.trace_id, "decision": "maybe"})[0] == 400
        assert call(server, "POST", "/api/edit", raw=b"{not json")[0] == 400
        assert call(server, "POST", "/api/edit", [1, 2])[0] == 400
        assert call(server, "POST", "/api/edit", raw=b"{}", content_type="text/plain")[0] == 415
        status, body = call(server, "POST", "/api/edit", {"trace_id": annotation.trace_id, "pad": "x" * 100_000})
        assert status == 413 and "larger than" in body["error"]
        assert call(server, "GET", "/static/..%2Fserver.py")[0] == 404
        # The one valid edit: a span that ends at the very end of the trace (end == len is allowed).
        assert annotation.spans[-1].end < length - 1
        assert edit(action="add", start=length - 1, end=length)[0] == 200
    reviews, drafts = stored(out)
    assert reviews == [] and drafts == [annotation.trace_id]


def test_edits_are_drafts_at_once_and_a_decision_is_a_review(out: Path) -> None:
    queue = in_review(out)
    annotation = astral_trace(out)
    trace = annotation.trace
    astral = [i for i, c in enumerate(trace) if ord(c) > 0xFFFF]
    # A span that starts after one astral character and holds another: offsets are code points.
    start, end = astral[0] + 1, astral[1] + 1
    assert not any(start < s.end and s.start < end for s in annotation.spans)
    removed, resized = annotation.spans[0], annotation.spans[1]
    with ReviewServerThread(out, reviewer="alice") as server:
        def edit(**fields):
            status, body = call(server, "POST", "/api/edit", {"trace_id": annotation.trace_id, **fields})
            assert status == 200, body
            return body

        edit(action="add", start=start, end=end)
        edit(action="remove", previous_start=removed.start, previous_end=removed.end)
        edit(action="resize", previous_start=resized.start, previous_end=resized.end,
             start=resized.start + 2, end=resized.end - 1)
        with ReviewStore.for_run(out) as store:  # saved before any decision
            draft = store.draft(annotation.trace_id, "alice")
        assert [step["action"] for step in draft["history"]] == ["add", "remove", "resize"]
        _, reopened = call(server, "GET", f"/api/trace?id={quote(annotation.trace_id)}")
        assert reopened["working_from"] == "draft" and reopened["length"] == len(trace)
        assert {"start": start, "end": end} in reopened["spans"]

        status, decided = call(server, "POST", "/api/decision", {"trace_id": annotation.trace_id,
                                                                 "decision": "accepted"})
        assert status == 200
        assert decided["progress"] == {"total": len(queue), "reviewed": 1, "remaining": len(queue) - 1,
                                       "accepted": 1, "rejected": 0}
        position = [a.trace_id for a in queue].index(annotation.trace_id)
        assert decided["next"] == queue[(position + 1) % len(queue)].trace_id

    reviews, drafts = stored(out, "alice")
    assert drafts == []
    [review] = reviews
    expected = sorted([(start, end), (resized.start + 2, resized.end - 1)]
                      + [(s.start, s.end) for s in annotation.spans[2:]])
    assert [(s.start, s.end) for s in review.spans] == expected
    assert all(s.text == trace[s.start:s.end] for s in review.spans)
    judge = [(s.start, s.end, s.text) for s in annotation.spans]
    assert [(s.start, s.end, s.text) for s in review.judge_spans] == judge
    assert (review.origin, review.reviewer, review.decision) == ("ui", "alice", "accepted")
    assert review.judge_confidence == annotation.confidence
    assert review.reviewed_at.utcoffset() == timedelta(0)
    assert [(h.action, h.start, h.end, h.previous_start, h.previous_end) for h in review.history] == [
        ("add", start, end, None, None),
        ("remove", None, None, removed.start, removed.end),
        ("resize", resized.start + 2, resized.end - 1, resized.start, resized.end),
        ("accept", None, None, None, None),
    ]
    assert review.changed


def test_decided_traces_count_as_done_when_the_server_starts_again(out: Path) -> None:
    queue = in_review(out)
    with ReviewServerThread(out, reviewer="alice") as server:
        for annotation, decision in zip(queue[:2], ["rejected", "accepted"]):
            assert call(server, "POST", "/api/decision", {"trace_id": annotation.trace_id,
                                                          "decision": decision})[0] == 200
    with ReviewServerThread(out, reviewer="alice") as server:
        _, state = call(server, "GET", "/api/queue")
    assert state["start"] == queue[2].trace_id
    assert state["progress"]["reviewed"] == 2
    assert (state["progress"]["accepted"], state["progress"]["rejected"]) == (1, 1)
    assert [item["decision"] for item in state["items"][:3]] == ["rejected", "accepted", None]
    with ReviewServerThread(out, reviewer="bob") as server:  # another reviewer starts from the top
        _, state = call(server, "GET", "/api/queue")
    assert state["start"] == queue[0].trace_id and state["progress"]["reviewed"] == 0
    rejected = [r for r in stored(out)[0] if r.decision == "rejected"]
    assert [r.trace_id for r in rejected] == [queue[0].trace_id]
    assert [(s.start, s.end) for s in rejected[0].spans] == [(s.start, s.end) for s in queue[0].spans]


# -- the command ---------------------------------------------------------------------------------

class ServedByCli:
    """`splitreason review serve OUT --port 0 …` in a subprocess; the URL is read from its output."""

    def __init__(self, out: Path, *args: str):
        self.process = subprocess.Popen(cli_command("review", "serve", out, "--port", "0", "--no-open", *args),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
        line = self.process.stdout.readline()
        assert "open http://127.0.0.1:" in line, line + self.process.stderr.read()
        self.page_url = line.split("open ", 1)[1].strip()
        self.base_url, self.token = self.page_url.split("/?token=")

    def stop(self) -> tuple[int, str, str]:
        self.process.terminate()
        stdout, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stdout, stderr


def test_serve_command_prints_a_token_url_and_stops_cleanly(out: Path) -> None:
    served = ServedByCli(out, "--reviewer", "carol")
    try:
        assert len(served.token) >= 32
        session = sign_in(served.base_url, served.token)
        request = urllib.request.Request(served.base_url + "/api/queue",
                                         headers={"Cookie": f"{SESSION_COOKIE}={session}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["reviewer"] == "carol"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(served.base_url + "/api/queue", timeout=10)
        assert refused.value.code == 403
    finally:
        code, stdout, stderr = served.stop()
    assert code == 0 and "stopped" in stdout and "Traceback" not in stderr, stderr


def test_serve_command_refuses_clearly(out: Path, tmp_path: Path) -> None:
    everything_accepted = tmp_path / "accepted"
    ok(run_cli("annotate", "-o", everything_accepted, "--limit", "3", "--accept-threshold", "0",
               "--reject-threshold", "0", "--no-progress"))
    assert_one_clean_error(run_cli("review", "serve", everything_accepted, "--port", "0"),
                           "no annotations with status 'review'", "--status all")
    assert_one_clean_error(run_cli("review", "serve", out, "--reviewer", " "), "--reviewer")
    assert run_cli("review", "serve", out, "--status", "maybe").returncode == 2
    # A non-loopback address gets a warning (this one is not on any interface, so nothing is exposed).
    result = run_cli("review", "serve", out, "--host", "192.0.2.1", "--port", "0")
    assert "warning: listening on 192.0.2.1" in result.stderr
    assert result.returncode == 2 and "cannot listen on 192.0.2.1" in result.stderr
    assert "Traceback" not in result.stderr


# -- the page, in headless Chromium ---------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return page, errors


def shown_trace_id(page) -> str:
    return page.text_content("#trace-id")


@pytest.mark.browser
def test_offsets_js_converts_utf16_positions_to_code_points(browser, out: Path) -> None:
    samples = ["a𝑥b", "𝑥𝑦", "😀 x 𝔸", "plain", "e\u0301\U0001d465"]
    expected = {}
    for text in samples:
        units = text.encode("utf-16-le")
        starts = [len(text[:i].encode("utf-16-le")) // 2 for i in range(len(text) + 1)]
        # floor / ceil of a UTF-16 position in code points; positions inside a pair round either way
        expected[text] = [[sum(1 for s in starts[1:] if s <= unit), sum(1 for s in starts[:-1] if s < unit)]
                          for unit in range(len(units) // 2 + 1)]
    with ReviewServerThread(out) as server:
        page, errors = open_page(browser, server.page_url)
        assert page.url.split("#")[0] == server.base_url + "/"  # the token never stays in the address bar
        # Nor in the tab's history: one step back is the blank page the tab started on (the link's
        # redirect made no entry of its own).
        assert page.evaluate("history.length") == 2
        page.go_back()
        assert page.url == "about:blank"
        page.go_forward()
        page.wait_for_selector("body[data-ready=true]")
        got = page.evaluate("""async (samples) => {
          const m = await import('/static/offsets.js');
          const result = {};
          for (const text of samples) {
            result[text] = [...Array(text.length + 1).keys()].map(
              (unit) => [m.codePointIndex(text, unit), m.codePointIndex(text, unit, true)]);
          }
          return result;
        }""", samples)
        assert got == expected
        trace = astral_trace(out).trace
        counted = page.evaluate("async (t) => (await import('/static/offsets.js')).codePoints(t).length", trace)
        assert counted == len(trace) < len(trace.encode("utf-16-le")) // 2
        page.close()
    assert errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_review_a_trace_end_to_end_in_chromium(browser, out: Path) -> None:
    queue = in_review(out)
    annotation = astral_trace(out)
    trace = annotation.trace
    astral = [i for i, c in enumerate(trace) if ord(c) > 0xFFFF]
    # Drawn with the mouse: starts after one astral character and holds two more.
    start, end = astral[0] + 1, astral[2] + 1
    while trace[start].isspace():
        start += 1
    assert "\n" not in trace[start:end] and not any(start < s.end and s.start < end for s in annotation.spans)
    removed, resized = annotation.spans[0], annotation.spans[1]

    served = ServedByCli(out, "--reviewer", "e2e")
    try:
        page, errors = open_page(browser, served.page_url)
        # The server swapped the token for an HttpOnly cookie and redirected: the address bar holds the
        # bare address, the page's scripts never see a credential, and the link opens nothing again.
        assert page.url.split("#")[0] == served.base_url + "/" and "token" not in page.url
        assert page.evaluate("document.cookie") == ""
        later = browser.new_page()  # another visitor (a fresh browser profile) with the link from history
        assert later.goto(served.page_url).status == 403
        later.close()
        ids = page.eval_on_selector_all("#queue-list li", "items => items.map((li) => li.dataset.traceId)")
        assert ids == [a.trace_id for a in queue]
        assert shown_trace_id(page) == queue[0].trace_id
        page.keyboard.press("n")
        page.wait_for_function("id => document.querySelector('#trace-id').textContent === id", arg=queue[1].trace_id)
        page.keyboard.press("p")
        page.wait_for_function("id => document.querySelector('#trace-id').textContent === id", arg=queue[0].trace_id)
        page.keyboard.press("s")  # skip: on to the next undecided trace, nothing saved
        page.wait_for_function("id => document.querySelector('#trace-id').textContent === id", arg=queue[1].trace_id)
        page.keyboard.press("?")
        assert page.is_visible("#help")
        page.keyboard.press("Escape")
        assert not page.is_visible("#help")

        page.click(f'#queue-list li[data-trace-id="{annotation.trace_id}"]')
        page.wait_for_function("id => document.querySelector('#trace-id').textContent === id", arg=annotation.trace_id)
        marks = page.eval_on_selector_all("#trace mark", "marks => marks.map((m) => "
                                          "[Number(m.dataset.start), Number(m.dataset.end), m.textContent, m.title])")
        assert [m[:3] for m in marks] == [[s.start, s.end, s.text] for s in annotation.spans]
        assert all(f"score {s.score:.2f}" in m[3] and s.reason in m[3] for m, s in zip(marks, annotation.spans))

        drag_select(page, start, end)
        page.locator(f'#trace mark.added[data-start="{start}"][data-end="{end}"]').wait_for()
        page.click(f'#trace mark[data-start="{removed.start}"]')
        page.locator(f'#trace mark.selected[data-start="{removed.start}"]').wait_for()
        page.keyboard.press("Delete")
        page.locator(f'#trace mark[data-start="{removed.start}"]').wait_for(state="detached")
        page.click(f'#trace mark[data-start="{resized.start}"]')
        for key in ("]", "]", "Shift+ArrowLeft"):  # start two characters right, end one left
            page.keyboard.press(key)
        page.keyboard.press("a")
        page.wait_for_function("() => document.querySelector('#progress-text').textContent.startsWith('1 / ')")
        position = [a.trace_id for a in queue].index(annotation.trace_id)
        assert shown_trace_id(page) == queue[(position + 1) % len(queue)].trace_id
        page.close()
    finally:
        code, _, stderr = served.stop()
    assert code == 0 and "Traceback" not in stderr, stderr
    assert errors == []

    reviews, drafts = stored(out, "e2e")
    assert drafts == []  # the skipped trace saved nothing; the decided one's draft is gone
    [review] = reviews
    assert (review.trace_id, review.reviewer, review.origin, review.decision) == (
        annotation.trace_id, "e2e", "ui", "accepted")
    new = (resized.start + 2, resized.end - 1)
    assert [(s.start, s.end) for s in review.spans] == sorted(
        [(start, end), new] + [(s.start, s.end) for s in annotation.spans[2:]])
    assert next(s.text for s in review.spans if s.start == start) == trace[start:end]
    assert [(s.start, s.end) for s in review.judge_spans] == [(s.start, s.end) for s in annotation.spans]
    steps = [(h.action, h.start, h.end, h.previous_start, h.previous_end) for h in review.history]
    assert steps[:2] == [("add", start, end, None, None), ("remove", None, None, removed.start, removed.end)]
    assert steps[-1] == ("accept", None, None, None, None)
    # Key presses within 0.4 s become one resize; a slow machine may send two, chained end to end.
    resizes = steps[2:-1]
    assert 1 <= len(resizes) <= 3 and {step[0] for step in resizes} == {"resize"}
    assert [step[3:] for step in resizes] == [(resized.start, resized.end)] + [step[1:3] for step in resizes[:-1]]
    assert resizes[-1][1:3] == new


@pytest.mark.browser
def test_trace_text_is_shown_as_text_never_as_markup(browser, tmp_path: Path, write_jsonl) -> None:
    hostile = '<img src=x onerror="window.__pwned = 1">'
    script = "<script>window.__pwned = 2</script>"
    # Formulas a reviewer must never be hurt by: one KaTeX cannot parse (shown as its source), a link
    # (KaTeX's trust is off: no link is made), and a plain one that draws.
    broken, link, fine = "\\( \\frac{1}{ \\)", "\\(\\href{javascript:window.__pwned=3}{x}\\)", "\\( x^2 + 1 \\)"
    trace = reasoning_trace(7, 6).replace(
        "<think>\n\n", f"<think>\n\nFirst {script} and {hostile} & <b>bold</b>, {broken}, {link} and {fine}.\n\n")
    row = openr1_record(f"x{hostile}", [trace], problem=f"Show that <b>1 < 2</b> {script} {broken}.")
    out = tmp_path / "out"
    ok(run_cli("annotate", write_jsonl("in.jsonl", [row]), "-o", out, "--no-progress"))
    [annotation] = RunDir(out).iter_annotations()
    with ReviewServerThread(out, status="all") as server:
        page, errors = open_page(browser, server.page_url)
        assert shown_trace_id(page) == annotation.trace_id
        assert page.text_content("#problem") == annotation.problem
        assert page.text_content("#trace") == annotation.trace
        assert page.evaluate("document.querySelectorAll('#trace *:not(span):not(mark), #problem *, "
                             "#queue-list img, #queue-list b').length") == 0
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.querySelectorAll('#reading a, #reading img, #reading script, "
                             "#problem-reading a, #problem-reading img, #problem-reading script').length") == 0
        shown_as_source = page.eval_on_selector_all("#problem-reading .math-error, #reading .math-error", "ns => ns.map((n) => n.textContent)")
        assert shown_as_source == [broken, broken]  # the problem's and the trace's, each as written
        for formula in (link, fine):  # both drew; the link as KaTeX's "unsupported" text, no anchor
            drawn = page.locator(f'#reading .math[data-start="{trace.index(formula)}"]')
            assert drawn.locator(".katex").count() == 1 and drawn.locator("a").count() == 0
        page.close()
    assert errors == []


# -- math: a reading view beside the exact source ------------------------------------------------

# CSP violations the page reports (a blocked font, an inline style): collected before any script runs.
COLLECT_VIOLATIONS = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));"""


def formulas(text: str) -> list[tuple[int, int, str]]:
    """\\( … \\) and \\[ … \\] in `text`: (start, end, inner TeX) in code points (the sample uses no $)."""
    import re

    assert "$" not in text
    return [(m.start(), m.end(), m.group(2)) for m in re.finditer(r"\\([(\[])(.*?)\\[)\]]", text, re.S)]


@pytest.mark.browser
def test_math_js_finds_formulas_in_code_points(browser, out: Path) -> None:
    cases = {
        "a $x$ b": [[2, 5, False]],
        "costs $5 and $10 today": [],  # money, not math
        "\\$x$ y": [],  # an escaped dollar opens nothing
        "\\(a\\) and \\[b\\]": [[0, 5, False], [10, 15, True]],
        "𝑥 \\(a\\) 😀 $$y$$": [[2, 7, False], [10, 15, True]],  # offsets in code points, not UTF-16 units
        "\\begin{align}a&=1\\\\ b&=2\\end{align} then": [[0, 35, True]],
        "\\begin{tabular}x\\end{tabular}": [],  # not a math environment
        "\\( never closed": [],
        "\\( a\n\nb \\)": [],  # an inline formula does not run across paragraphs
        "\\\\(x) is a line break and parentheses": [],
        "$ x$ and $\\frac{1}{2}$": [[9, 22, False]],
    }
    with ReviewServerThread(out) as server:
        page, errors = open_page(browser, server.page_url)
        got = page.evaluate("""async (texts) => {
          const m = await import('/static/math.js');
          return Object.fromEntries(texts.map((t) => [t, m.mathRegions(Array.from(t)).map(
            (r) => [r.start, r.end, r.display])]));
        }""", list(cases))
        assert got == cases
        long_problem = "word " * 26 + "\\( \\frac{a}{b} + c \\) and more words after it " * 3
        short = page.evaluate("async (t) => (await import('/static/math.js')).snippet(t)", long_problem)
        assert short.endswith(" …") and short.removesuffix(" …").endswith("\\( \\frac{a}{b} + c \\)")
        page.close()
    assert errors == []


def open_traced_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(COLLECT_VIOLATIONS)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return page, errors


@pytest.mark.browser
def test_reading_view_draws_math_beside_the_exact_source(browser, out: Path) -> None:
    """KaTeX from the package draws every formula of the trace (under the strict CSP, fonts
    included); selections in the source view still give exact code-point offsets, and the reading
    view highlights the same spans; the queue shows a snippet of each problem and why it is there."""
    queue = in_review(out)
    annotation = astral_trace(out)  # astral characters before the formulas: offsets are code points
    trace = annotation.trace
    expected = formulas(trace)
    assert len(expected) > 20
    with ReviewServerThread(out, reviewer="reader") as server:
        page, errors = open_traced_page(browser, f"{server.page_url}#id={quote(annotation.trace_id)}")
        assert shown_trace_id(page) == annotation.trace_id
        drawn = page.eval_on_selector_all("#reading .math", """nodes => nodes.map((n) => [
          Number(n.dataset.start), Number(n.dataset.end), n.className,
          (n.querySelector('.katex-mathml annotation') || {}).textContent])""")
        assert [(start, end, tex) for start, end, _, tex in drawn] == expected
        assert all("math-error" not in classes for _, _, classes, _ in drawn)
        assert page.evaluate("document.querySelectorAll('#reading .katex-html').length") == len(expected)
        assert page.text_content("#trace") == trace  # the source view is the exact text
        # The fonts came from the package, through the policy; nothing was blocked.
        loaded = page.evaluate("""async () => { await document.fonts.ready;
          return [...document.fonts].filter((f) => f.status === 'loaded').map((f) => f.family); }""")
        assert "KaTeX_Main" in loaded and "KaTeX_Math" in loaded
        assert page.evaluate("window.__violations") == []
        # The problem is drawn too, its source one click away.
        assert page.evaluate("document.querySelectorAll('#problem-reading .katex').length") == len(
            formulas(annotation.problem))
        assert page.text_content("#problem") == annotation.problem

        # A mouse selection in the source over one formula: the span has exactly its offsets.
        start, end, _ = next(f for f in expected if not any(f[0] < s.end and s.start < f[1] for s in annotation.spans)
                             and "\n" not in trace[f[0]:f[1]] and f[0] > max(i for i, c in enumerate(trace)
                                                                             if ord(c) > 0xFFFF))
        drag_select(page, start, end)
        page.locator(f'#trace mark.added[data-start="{start}"][data-end="{end}"]').wait_for()
        index = page.get_attribute(f'#trace mark[data-start="{start}"]', "data-span")
        reading_mark = page.locator(f'#reading mark.added[data-span="{index}"]')
        assert reading_mark.get_attribute("data-start") == str(start)
        assert reading_mark.locator(".math .katex").count() == 1
        # Every judge span is highlighted in the reading view too (widened to whole formulas at most).
        highlighted = page.eval_on_selector_all("#reading mark", "ms => ms.map((m) => [Number(m.dataset.start), "
                                                "Number(m.dataset.end)])")
        spans = sorted([(s.start, s.end) for s in annotation.spans] + [(start, end)])
        assert len(highlighted) == len(spans)
        assert all(hs <= s and e <= he for (hs, he), (s, e) in zip(highlighted, spans))
        # Clicking a highlight in the reading view selects that span in the source.
        rect = page.evaluate("""() => { const m = document.querySelector('#reading mark.judge');
          m.scrollIntoView({block: 'center'}); const r = m.getClientRects()[0];
          return {x: r.left + r.width / 2, y: r.top + r.height / 2}; }""")
        page.mouse.click(rect["x"], rect["y"])
        page.locator("#trace mark.selected").wait_for()
        selected = page.get_attribute("#trace mark.selected", "data-span")
        assert page.get_attribute("#reading mark.selected", "data-span") == selected
        # A selection in the reading view adds nothing: rendered math has no offsets.
        line = page.evaluate("""() => { const s = document.querySelector('#reading > span');
          s.scrollIntoView({block: 'center'}); const r = s.getClientRects()[0];
          return {left: r.left, right: r.right, y: r.top + r.height / 2}; }""")
        page.mouse.move(line["left"] + 1, line["y"])
        page.mouse.down()
        page.mouse.move(line["right"] - 1, line["y"], steps=5)
        page.mouse.up()
        assert "select in the source view" in page.text_content("#message")

        # The queue: each trace's reason and a drawn snippet of its problem.
        rows = page.eval_on_selector_all("#queue-list li", """items => items.map((li) => [li.dataset.traceId,
          li.querySelector('.confidence').textContent, li.querySelector('.reason').textContent,
          li.querySelector('.snippet').textContent])""")
        assert [row[0] for row in rows] == [a.trace_id for a in queue]
        for (_, confidence, reason, text), annotation_ in zip(rows, queue):
            assert confidence == f"{annotation_.confidence:.3f}" and reason == "low confidence"
            assert annotation_.problem.split()[0] in text
        page.wait_for_function("() => document.querySelector('#queue-list li .snippet .katex') !== null")
        assert page.evaluate("window.__violations") == []
        page.close()
    reviews, drafts = stored(out, "reader")
    assert reviews == [] and drafts == [annotation.trace_id]
    assert errors == []


def test_a_client_that_drops_mid_body_is_not_logged_as_our_bug(out: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Content-Length 10, two bytes of body, then the connection closed: the client went away, which
    is no bug of ours: no traceback, nothing at warning level or above, and the server stays up."""
    import logging
    import socket
    import time

    from splitreason.review_ui.server import SESSION_COOKIE

    caplog.set_level(logging.DEBUG)
    with ReviewServerThread(out) as server:
        head = (f"POST /api/decision HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Cookie: {SESSION_COOKIE}={server.session}\r\nContent-Type: application/json\r\n"
                "Content-Length: 10\r\n\r\n{\"")
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(head.encode())
            time.sleep(0.2)  # the server meets the closed connection while it reads the body
        assert call(server, "GET", "/api/queue")[0] == 200
    loud = [record for record in caplog.records if record.exc_info or record.levelno >= logging.WARNING]
    assert not loud, [(record.name, record.getMessage(), record.exc_info) for record in loud]


def test_a_body_that_never_arrives_in_full_is_a_408(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp caps a body's size, not its time: a client that announces 10 bytes, sends 2 and waits
    gets a 408 once BODY_READ_TIMEOUT_S has passed, and its handler is freed."""
    import socket

    from splitreason.review_ui import api
    from splitreason.review_ui.server import SESSION_COOKIE

    monkeypatch.setattr(api, "BODY_READ_TIMEOUT_S", 0.5)
    with ReviewServerThread(out) as server:
        head = (f"POST /api/decision HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Cookie: {SESSION_COOKIE}={server.session}\r\nContent-Type: application/json\r\n"
                "Content-Length: 10\r\n\r\n{\"")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head.encode())
            answer = sock.recv(4096).decode("latin-1")
        assert answer.split(" ", 2)[1] == "408", answer
        assert "request body not received within 0.5 s" in answer and "Traceback" not in answer
        assert call(server, "GET", "/api/queue")[0] == 200

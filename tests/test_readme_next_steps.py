"""The README's "Next steps" block runs as printed, in order, after the Quick start, on the bundled
sample. Lines marked `needs:` are skipped, except two that this machine can do: `review serve`
runs as a real process and this test reviews through its HTTP API in the person's place, and the
hub push, offline here, must fail in one line."""

from __future__ import annotations

import http.cookiejar
import json
import re
import shlex
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO, assert_one_clean_error, cli_command, cli_env, ok, run_cli


def next_steps() -> list[tuple[list[str], str]]:
    """(arguments after `splitreason`, the line's comment) for each line of the block."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Next steps\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: no bash block under ## Next steps"
    steps = []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        command, _, comment = line.partition("#")
        words = shlex.split(command)
        assert words[0] == "splitreason", line
        steps.append((words[1:], comment.strip()))
    return steps


def review_in_place_of_a_person(args: list[str], cwd: Path) -> int:
    """`splitreason review serve OUT` as printed (on a free port); accept the first half of the
    queue and reject the rest through the page's API, as a person would; stop it. Reviews made."""
    process = subprocess.Popen([*cli_command(*args, "--port", "0")], cwd=cwd, env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "open http" not in line:
            line = process.stdout.readline()
            assert line, process.stderr.read()
        url = re.search(r"open (http\S+)", line).group(1)
        base = url.split("?", 1)[0].rstrip("/")
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        opener.open(url, timeout=10).read()  # the one-time link signs this "browser" in
        queue = json.loads(opener.open(base + "/api/queue", timeout=10).read())
        items = queue["items"]
        assert items, "the README's review run put nothing in review"
        for index, item in enumerate(items):
            decision = "accepted" if index < len(items) // 2 + 1 else "rejected"
            request = urllib.request.Request(base + "/api/decision", method="POST",
                                             data=json.dumps({"trace_id": item["trace_id"],
                                                              "decision": decision}).encode(),
                                             headers={"Content-Type": "application/json", "Origin": base})
            assert opener.open(request, timeout=10).status == 200
        return len(items)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_next_steps_run_as_printed(tmp_path: Path) -> None:
    # The Quick start, as printed (its `pip install -e .` is this checkout).
    ok(run_cli("annotate", "-o", "out", cwd=tmp_path))
    ok(run_cli("export", "out", "-o", "out/train.jsonl", cwd=tmp_path))
    ran, skipped = [], []
    for args, comment in next_steps():
        if args[:2] == ["review", "serve"]:
            assert "needs: a person" in comment
            assert review_in_place_of_a_person(args, tmp_path) > 0
            ran.append(args)
        elif "--push-to-hub" in args:
            assert "offline: one line" in comment
            assert_one_clean_error(run_cli(*args, cwd=tmp_path), "cannot push to the hub dataset", "offline")
            ran.append(args)
        elif "needs:" in comment:
            # Not run here, but its command and options exist: --help after them parses every option first.
            ok(run_cli(*args, "--help", cwd=tmp_path))
            skipped.append(args)
        else:
            ok(run_cli(*args, cwd=tmp_path, timeout=300))
            ran.append(args)
    # What the steps promise, checked on what they wrote.
    assert (tmp_path / "out" / "report.html").stat().st_size > 10_000
    assert (tmp_path / "reviewed" / "review.sqlite").exists()
    assert (tmp_path / "reviewed" / "hf" / "dataset_info.json").exists()
    assert (tmp_path / "curated" / "manifest.json").exists() and (tmp_path / "curated-out" / "run.json").exists()
    assert {args[0] for args in ran} >= {"stats", "report", "annotate", "review", "calibrate", "export", "curate",
                                         "evaluate"}
    assert [args[:2] for args in skipped] == [["train", "sft"], ["evaluate", "tags"], ["evaluate", "grade"],
                                               ["evaluate", "offload"], ["train", "grpo"], ["annotate", "-o"],
                                               ["evaluate", "labels"]]

"""`-v/--verbose` logs what a command does, step by step, on stderr; without it none of those lines.

The lines are splitreason's own (logger `splitreason.*`); libraries' INFO chatter stays off."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import ok, run_cli


def _log_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " splitreason." in line]


def test_annotate_verbose_says_each_step(tmp_path: Path) -> None:
    out = tmp_path / "out"
    quiet = ok(run_cli("annotate", "--limit", "3", "-o", tmp_path / "plain", "--no-progress"))
    assert _log_lines(quiet.stderr) == []

    loud = ok(run_cli("annotate", "--limit", "3", "-o", out, "--no-progress", "-v", "--json"))
    lines = _log_lines(loud.stderr)
    text = "\n".join(lines)
    for step in ("splitreason.executors.local: input ", "splitreason.executors.local: judges: heuristic",
                 f"splitreason.executors.local: claimed {out}",
                 "splitreason.annotator.runner: shard 0 of 1: 0 traces already done",
                 "splitreason.executors.local: sealed 1 shard(s)"):
        assert step in text, f"no {step!r} in:\n{text}"
    assert json.loads(loud.stdout)["out"] == str(out)  # stdout stays the result alone

    again = ok(run_cli("annotate", "--limit", "3", "-o", out, "--no-progress", "-v"))
    assert "shard 0 of 1: 3 traces already done" in again.stderr
    assert f"continuing the run in {out}" in again.stderr
    assert not any(line.split(" ", 2)[1].startswith(("httpx", "urllib3", "datasets")) for line in
                   again.stderr.splitlines() if len(line.split(" ", 2)) > 2 and line[:2].isdigit())


def test_curate_verbose_counts_each_step(tmp_path: Path) -> None:
    result = ok(run_cli("curate", "--limit", "6", "-o", tmp_path / "curated", "--no-progress", "-v"))
    text = "\n".join(_log_lines(result.stderr))
    assert "splitreason.curate.pipeline: step select: {'in': " in text
    assert "splitreason.curate.pipeline: swapped the finished directory into" in text


def test_export_verbose_says_where_each_trace_went(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ok(run_cli("annotate", "--limit", "3", "-o", out, "-q"))
    result = ok(run_cli("export", out, "-o", out / "train.jsonl", "-v"))
    exported = [line for line in _log_lines(result.stderr) if "splitreason.exports.sft: trace " in line]
    assert len(exported) == 3 and all(": exported, " in line for line in exported)

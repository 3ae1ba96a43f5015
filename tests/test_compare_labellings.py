"""scripts/compare_labellings.py end to end on tiny models: two labellings of the same traces (the
surprisal judge's and the heuristic's), `train sft` on each, `evaluate offload` on both, one table.
Tiny numbers show that the comparison runs, not which labelling is better."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.grounded_fixtures import planted_traces
from tests.helpers import REPO, cli_env, ok, openr1_record, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TRAIN = ["--epochs", "1", "--batch-size", "8", "--grad-accum", "1", "--max-length", "256", "--eval-fraction", "0",
         "--seed", "0"]
EVAL = ["--chunk-tokens", "8", "--max-segment-tokens", "16", "--max-tokens", "40", "--limit", "2"]


def test_two_labellings_trained_and_evaluated(grounded_pair, tmp_path):
    traces = planted_traces(16, seed=41)
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(openr1_record(f"u{i}", [text], problem=problem)) + "\n"
                            for i, (problem, text, _) in enumerate(traces)))
    runs = [tmp_path / "surprisal", tmp_path / "heuristic"]
    ok(run_cli("annotate", data, "-o", runs[0], "--judge", f"surprisal:{grounded_pair.small}", "--no-progress",
               timeout=300))
    ok(run_cli("annotate", data, "-o", runs[1], "--no-progress", timeout=300))
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text("".join(json.dumps({"id": f"q{i}", "problem": "Problem: simplify the expression and report "
                                            "the value.", "answer": "7"}) + "\n" for i in range(2)))
    out = tmp_path / "compare"
    command = [sys.executable, "scripts/compare_labellings.py", *map(str, runs), "--base-model", str(grounded_pair.small),
               "--large", str(grounded_pair.large), "--eval-set", str(eval_set), "-o", str(out),
               *[f"--train-arg={arg}" for arg in TRAIN], *[f"--eval-arg={arg}" for arg in EVAL]]
    env = cli_env(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO))
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    compared = json.loads((out / "compare.json").read_text())
    assert {(row["labelling"], row["mode"]) for row in compared["rows"]} == {
        (name, mode) for name in ("surprisal", "heuristic") for mode in ("learned", "random")}
    assert all(row["accuracy"] is not None for row in compared["rows"])
    assert "surprisal" in result.stdout and "learned" in result.stdout
    for name in ("surprisal", "heuristic"):
        assert (out / name / "model" / "train.json").is_file() and (out / name / "eval" / "summary.json").is_file()

    # A second run finds every step done and only prints the table again.
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert again.returncode == 0 and "+ splitreason" not in again.stderr

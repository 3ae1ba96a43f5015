"""Builders shared by several test modules: whole runs and the data they are made from (see
tests/helpers.py for the small helpers). Each lives here, not in the test module that first
needed it, so that no test module imports another.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from splitreason.executors.local import run_annotate
from splitreason.schemas.annotate import AnnotateSettings
from splitreason.io.eval_sets import EvalProblem
from splitreason.io.run_dir import RunDir
from splitreason.review.store import ReviewStore
from splitreason.schemas.review import Review, ReviewedSpan
from tests.helpers import REPO, ok, openr1_record, reasoning_trace, run_cli


# -- shard runs (tests/test_merge.py, tests/test_ray_engine.py) -------------------------------

SHARDS = 3


def annotate(source, out: Path, **options):
    request = AnnotateSettings(input=str(source), out=out, progress=False, **options)
    return asyncio.run(run_annotate(request, Console(file=io.StringIO())))


def input_rows() -> list:
    """Good traces (some problems with two generations, some not selected) and bad rows of every
    kind, including one row with two bad generations (two rejects from one row)."""
    rows: list = []
    for i in range(20):
        generations = [reasoning_trace(i * 3 + g, 4) for g in range(1 + (i % 4 == 0))]
        row = openr1_record(f"m{i:03d}", generations)
        if i % 5 == 3:
            row["correctness_math_verify"][-1] = False  # not selected by default
        rows.append(row)
    rows.insert(4, "{not json at all")
    rows.insert(8, openr1_record("tagged", ["has a <bigmodel> tag already"]))
    # Its generations fall in shards 2 and 0: the merge must still write them in input order.
    rows.insert(11, openr1_record("twobad1", ["", "also </bigmodel> tagged"]))
    rows.insert(15, openr1_record("m002", [reasoning_trace(99, 3)]))  # a duplicate uuid
    return rows


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
                    encoding="utf-8")
    return path


def files(out: Path) -> dict[str, bytes]:
    """Every file of OUT but run.json (timestamps, invocations) and the cache (SQLite pages)."""
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*"))
            if path.is_file() and path.name not in ("run.json", "cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm")}


def shard_file(run: Path, shard: int) -> Path:
    return run / "annotations" / f"shard-{shard:05d}-of-{SHARDS:05d}.jsonl"


# -- scripted-judge input (tests/test_export.py, tests/test_stats.py) --------------------------

# case -> scripted action; the trailing digit only makes several traces share an action.
SCRIPTED_CASES = {
    "ok0": "ok", "ok1": "ok", "ok2": "ok", "ok3": "ok", "fenced0": "ok_fenced", "latex0": "latex",
    "overlap0": "overlap", "para0": "paraphrase", "para1": "paraphrase",
    "nospans0": "empty_spans", "nospans1": "empty_spans",
    "halluc0": "hallucinate", "halluc1": "hallucinate", "nonjson0": "nonjson",
}


def write_scripted_input(path: Path) -> Path:
    rows = [openr1_record(f"s-{case}", [reasoning_trace(i, 5)], problem=f"Problem {i}: find x. [case:{case}]")
            for i, case in enumerate(SCRIPTED_CASES)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- decontamination data (tests/test_decontaminate.py, tests/test_curate.py) -----------------

MN = "where $m$ and $n$ are relatively prime positive integers. Find $m+n$."


DICE = "Two fair six-sided dice, one red and one blue, are rolled."


EVAL = [
    EvalProblem("dice", f"{DICE} The probability that the product of the two numbers is a multiple of $4$ can be "
                        f"written as $\\frac{{m}}{{n}}$, {MN} Express your answer as an integer."),
    EvalProblem("urn", "An urn contains $4$ green balls and $6$ blue balls. A second urn contains $16$ green balls and "
                       "$N$ blue balls. A single ball is drawn at random from each urn. The probability that both "
                       f"balls are of the same color is $\\frac{{m}}{{n}}$, {MN}"),
    EvalProblem("frog", "A frog begins at $0$ on the number line and jumps $1$ or $3$ units to the right, each with "
                        "equal probability. The probability that it lands on $11$ is $\\frac{m}{n}$, " + MN),
    EvalProblem("cube", "A bug walks on the edges of a cube, choosing each of the three edges at a vertex with equal "
                        "probability. The probability that it is back at its start after $7$ moves is "
                        f"$\\frac{{m}}{{n}}$, {MN}"),
    EvalProblem("binom", "Compute $\\dbinom{31}{28}$."),
    EvalProblem("sqrt", "Simplify $\\sqrt{242}$."),
    EvalProblem("tiny", "Find $x$."),
]


URN = EVAL[1].problem


CORPUS = [f"{DICE} What is the probability that the sum of the numbers is {k}? Express it as a common fraction."
          for k in range(2, 14)] + \
         [f"{DICE} Let $p$ be the probability that the red die shows more than {k}." for k in range(1, 6)]


LEAKS = {
    "verbatim": (URN, "exact"),
    "respaced": (URN.replace("$\\frac{m}{n}$", "\\( \\dfrac{m}{n} \\)").replace(". ", ".\n\n").upper(), "exact"),
    "prefix": ("Question 12: " + URN, "exact"),
    "instructions_added": ("Solve the following problem. " + URN + " Return your final response within \\boxed{}.",
                           "exact"),
    "instructions_removed": (EVAL[0].problem.replace(" Express your answer as an integer.", ""), "exact"),
    "reordered": ("A single ball is drawn at random from each urn. An urn contains $4$ green balls and $6$ blue balls. "
                  "A second urn contains $16$ green balls and $N$ blue balls. The probability that both balls are of "
                  f"the same color is $\\frac{{m}}{{n}}$, {MN}", "overlap"),
    "inside a longer problem": ("Warm-up: compute $2+2$. Main problem: " + URN, "contains"),
}


# -- a curated, annotated and reviewed run (tests/test_report.py, tests/browser.py) -----------

SCRIPT_PROBLEM = 'Find x if <script>alert("pwned")</script> & x > 2.'


EVAL_PROBLEM = "Find the least prime p greater than 2 such that p squared plus 2 is also a prime number."


def curate_input(directory: Path) -> tuple[Path, Path]:
    """The bundled sample plus rows that give every curate step work: an exact duplicate and a
    problem leaking an evaluation problem, both with markup that must come out escaped, and an
    evaluation set. Returns (input file, evaluation file)."""
    rows = [json.loads(line) for line in (REPO / "splitreason/data/openr1_sample.jsonl").read_text().splitlines()]
    rows += [
        openr1_record("script-original", [reasoning_trace(900)], problem=SCRIPT_PROBLEM + " Take x prime."),
        openr1_record("script-copy", [reasoning_trace(901)], problem="Problem 4. " + SCRIPT_PROBLEM + " Take x prime"),
        openr1_record("leak", [reasoning_trace(902)], problem=SCRIPT_PROBLEM + " Then " + EVAL_PROBLEM.lower()),
    ]
    source, evals = directory / "raw.jsonl", directory / "aime24.jsonl"
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    evals.write_text(json.dumps({"id": "aime24-11", "problem": EVAL_PROBLEM}) + "\n", encoding="utf-8")
    return source, evals


def review_of(annotation, reviewer: str, decision: str, keep: slice = slice(None), minutes: int = 0) -> Review:
    judge = [ReviewedSpan(start=s.start, end=s.end, text=s.text) for s in annotation.spans]
    return Review(trace_id=annotation.trace_id, reviewer=reviewer, origin="ui", decision=decision,
                  spans=judge[keep] if decision == "accepted" else [], judge_spans=judge,
                  judge_confidence=annotation.confidence,
                  reviewed_at=datetime(2026, 1, 5, tzinfo=UTC) + timedelta(minutes=minutes))


def save_reviews(out: Path) -> dict:
    """Four reviewed traces: one accepted as it was, one accepted by two reviewers with fewer
    spans, one rejected, and one the router had accepted that a reviewer rejected."""
    by_status = defaultdict(list)
    for annotation in RunDir(out).iter_annotations():
        by_status[annotation.status].append(annotation)
    first, second, third = sorted(by_status["review"], key=lambda a: a.trace_id)[:3]
    accepted = sorted(by_status["accepted"], key=lambda a: a.trace_id)[0]
    with ReviewStore.for_run(out) as store:
        store.save(review_of(first, "alice", "accepted"))
        store.save(review_of(second, "alice", "accepted", slice(0, 1), minutes=1))
        store.save(review_of(second, "bob", "accepted", slice(0, 1), minutes=2))
        store.save(review_of(third, "carol", "rejected", minutes=3))
        store.save(review_of(accepted, "bob", "rejected", minutes=4))
    return {"reviewed": 4, "decisions": {"accepted": 2, "rejected": 2}, "changed": 3,
            "reviewers": {"alice": 2, "bob": 2, "carol": 1}, "waiting": len(by_status["review"]) - 3}


def build_curated_run(tmp: Path) -> tuple[Path, Path]:
    """CURATED (a real `splitreason curate` of the sample and some rows of our own), and OUT annotated from it."""
    curated, out = tmp / "curated", tmp / "out"
    source, evals = curate_input(tmp)
    ok(run_cli("curate", source, "-o", curated, "--eval-set", evals, "--language", "en", "--no-progress"))
    # Confidences of the heuristic judge on the sample lie in 0.996-1.0: these thresholds put
    # traces in all three statuses.
    ok(run_cli("annotate", curated, "-o", out, "--no-progress", "--accept-threshold", "0.9997",
               "--reject-threshold", "0.999"))
    return curated, out

"""`splitreason evaluate grade`: predictions made elsewhere graded against a local evaluation set;
every row ends graded or rejected with its reason; bad files are one line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.helpers import assert_one_clean_error, ok, read_jsonl, run_cli

# An evaluation set with answers of the shapes AIME and MATH-500 have.
EVAL_SET = [
    {"id": "aime-1", "problem": "How many ...?", "answer": "025"},
    {"id": "math-2", "problem": "Solve for x.", "answer": "\\frac{14}{3}"},
    {"id": "math-3", "problem": "Which choice?", "answer": "\\text{(C)}"},
    {"id": "math-4", "problem": "Find the angle.", "answer": "90^\\circ"},
    {"id": "math-5", "problem": "Solve the inequality.", "answer": "[-2, 7)"},
]

GOOD_ROWS = [
    {"id": "aime-1", "text": "<think>count them</think>The answer is \\boxed{25}."},  # correct
    {"id": "aime-1", "text": "So there are \\boxed{24}."},  # wrong
    {"id": "aime-1", "text": "The answer is 25."},  # correct: majority 25
    {"id": "math-2", "text": "Answer: 14/3", "model": "other-system"},  # correct, extra fields kept
    {"id": "math-3", "text": "Let me think about (A), (B), (C) and (D) in turn\nand I run out of time"},  # no answer
    {"index": 2, "text": "\\boxed{C}"},  # correct, matched by position
    {"index": 3, "text": "$\\boxed{90^\\circ}$"},  # correct
    {"id": "math-5", "text": "\\boxed{(-2, 7)}"},  # wrong: open interval
]
BAD_ROWS = [
    ({"id": "aime-9", "text": "\\boxed{1}"}, "id 'aime-9' is not in"),
    ({"text": "\\boxed{1}"}, "names no problem"),
    ({"id": "math-2"}, "no 'text' field"),
    ({"id": "math-2", "text": None}, "'text' is a NoneType"),
    ({"index": 99, "text": "\\boxed{1}"}, "index 99 is not a position"),
    ("this line is not JSON", "invalid json"),
]


@pytest.fixture
def eval_file(write_jsonl) -> Path:
    return write_jsonl("eval.jsonl", EVAL_SET)


def test_good_and_bad_rows_each_end_in_one_place(eval_file: Path, write_jsonl, tmp_path: Path) -> None:
    rows = GOOD_ROWS[:4] + [row for row, _ in BAD_ROWS] + GOOD_ROWS[4:]
    predictions = write_jsonl("predictions.jsonl", rows)
    out = tmp_path / "graded.jsonl"
    result = ok(run_cli("evaluate", "grade", predictions, "--eval-set", eval_file, "--json", "-o", out,
                        timeout=300))
    report = json.loads(result.stdout)
    assert report["rows"] == len(rows) and report["graded"] == len(GOOD_ROWS) and report["rejected"] == len(BAD_ROWS)
    assert report["correct"] == 5 and report["no_answer"] == 1
    assert report["accuracy"] == pytest.approx(5 / 8)
    low, high = report["accuracy_ci95"]
    assert low < 5 / 8 < high
    assert report["problems"] == 5 and report["problems_in_set"] == 5 and report["samples_per_problem"] == [1, 3]
    assert report["majority_accuracy"] == pytest.approx(4 / 5)  # aime-1 by 2 to 1; math-5 wrong
    assert report["coverage"] == pytest.approx(4 / 5)

    # one stderr line per rejected row, naming the line and the reason
    reject_lines = [line for line in result.stderr.splitlines() if "rejected:" in line]
    assert len(reject_lines) == len(BAD_ROWS)
    for (row, reason), line in zip(BAD_ROWS, reject_lines):
        assert reason in line, (reason, line)

    written = read_jsonl(out)
    assert len(written) == len(rows)  # every row, in order, as it was plus its grading
    for row, output in zip(rows, written):
        if isinstance(row, dict):
            assert {key: output[key] for key in row} == row
    by_text = {row.get("text"): row["grading"] for row in written if "text" in row}
    first = by_text[GOOD_ROWS[0]["text"]]
    assert first == {"problem_id": "aime-1", "status": "correct", "answer": "25", "gold": "025",
                     "canonical": "25", "correct": True}
    assert by_text[GOOD_ROWS[4]["text"]]["status"] == "no_answer" and by_text[GOOD_ROWS[4]["text"]]["answer"] is None
    assert by_text[GOOD_ROWS[5]["text"]]["problem_id"] == "math-3"
    assert by_text["\\boxed{(-2, 7)}"]["status"] == "wrong" and by_text["\\boxed{(-2, 7)}"]["gold"] == "[-2, 7)"
    statuses = [row["grading"]["status"] for row in written]
    assert statuses.count("rejected") == len(BAD_ROWS)
    assert all(row["grading"]["reason"] for row in written if row["grading"]["status"] == "rejected")


def test_table_and_gzipped_predictions(eval_file: Path, tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl.gz"
    with gzip.open(predictions, "wt", encoding="utf-8") as handle:
        for row in GOOD_ROWS:
            handle.write(json.dumps(row) + "\n")
    result = ok(run_cli("evaluate", "grade", predictions, "--eval-set", eval_file, timeout=300))
    assert "62.5%" in result.stdout and "majority vote" in result.stdout
    assert "rejected" not in result.stderr
    # -o - streams the graded rows to stdout; the figures move to stderr.
    streamed = ok(run_cli("evaluate", "grade", predictions, "--eval-set", eval_file, "-o", "-", timeout=300))
    rows = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert len(rows) == len(GOOD_ROWS) and "62.5%" in streamed.stderr and "wrote 8 graded rows to stdout" in streamed.stderr


def test_set_without_ids_matches_rows_by_position(write_jsonl) -> None:
    eval_file = write_jsonl("plain.jsonl", [{"question": "q1", "answer": "7"}, {"question": "q2", "answer": "x+1"}])
    predictions = write_jsonl("p.jsonl", [{"index": 0, "text": "\\boxed{7}"}, {"index": 1, "text": "\\boxed{1+x}"},
                                          {"id": "1", "text": "\\boxed{2}"}])  # ids are positions too
    report = json.loads(ok(run_cli("evaluate", "grade", predictions, "--eval-set", eval_file, "--json",
                                   timeout=300)).stdout)
    assert (report["graded"], report["correct"], report["problems"]) == (3, 2, 2)


def test_named_id_and_answer_fields(write_jsonl) -> None:
    eval_file = write_jsonl("named.jsonl", [{"unique_id": "u/1", "problem": "p", "gold_answer": "3"}])
    predictions = write_jsonl("p.jsonl", [{"unique_id": "u/1", "text": "The answer is 3."}])
    report = json.loads(ok(run_cli("evaluate", "grade", predictions, "--eval-set", eval_file, "--id-field",
                                   "unique_id", "--answer-field", "gold_answer", "--json", timeout=300)).stdout)
    assert report["correct"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("case", ["not_jsonl_suffix", "no_json_lines", "nothing_matches", "missing", "empty"])
def test_bad_prediction_files_are_one_line(case: str, eval_file: Path, tmp_path: Path, write_jsonl) -> None:
    expected = {
        "not_jsonl_suffix": "is not JSONL (expected a .jsonl",
        "no_json_lines": "is not JSONL: no line is a JSON object",
        "nothing_matches": "no row of",
        "missing": "input not found",
        "empty": "holds no rows",
    }[case]
    if case == "not_jsonl_suffix":
        path = tmp_path / "predictions.csv"
        path.write_text("id,text\naime-1,25\n", encoding="utf-8")
    elif case == "no_json_lines":
        path = write_jsonl("predictions.jsonl", ["id,text", "aime-1,25"])
    elif case == "nothing_matches":
        path = write_jsonl("predictions.jsonl", [{"id": "nope", "text": "1"}, {"text": "2"}])
    elif case == "missing":
        path = tmp_path / "absent.jsonl"
    else:
        path = tmp_path / "empty.jsonl"
        path.write_text("", encoding="utf-8")
    assert_one_clean_error(run_cli("evaluate", "grade", path, "--eval-set", eval_file), expected)


@pytest.mark.slow
def test_bad_eval_sets_are_one_line(write_jsonl, tmp_path: Path) -> None:
    predictions = write_jsonl("p.jsonl", [{"id": "a", "text": "1"}])
    no_answers = write_jsonl("no_answers.jsonl", [{"id": "a", "problem": "p"}])
    assert_one_clean_error(run_cli("evaluate", "grade", predictions, "--eval-set", no_answers), "no answer field")
    empty_answer = write_jsonl("empty_answer.jsonl", [{"id": "a", "problem": "p", "answer": ""}])
    assert_one_clean_error(run_cli("evaluate", "grade", predictions, "--eval-set", empty_answer), "empty answer")
    # the hub, offline (the test environment sets HF_HUB_OFFLINE): one clear line
    assert_one_clean_error(run_cli("evaluate", "grade", predictions, "--eval-set", "aime24"),
                           "HuggingFaceH4/aime_2024", "offline")
    assert_one_clean_error(run_cli("evaluate", "grade", predictions), "eval-set")

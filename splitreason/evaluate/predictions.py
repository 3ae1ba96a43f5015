"""Grade predictions made anywhere (another system, the paper's released generations, a hosted
model) against an evaluation set: the library behind `splitreason evaluate grade`.

PREDICTIONS is a JSONL file (`.jsonl` or `.jsonl.gz`), one row per sample: `text` (the model's
whole answer) and the problem it answers, named by the set's id (the field `id_field`, default
`id`) or, where the set has no ids, by its 0-based position in the set (`index`). Several rows may
answer one problem (k samples: majority vote over them).

Every row ends in exactly one place: graded (correct, wrong, no_answer, timeout, error) or
rejected with its reason (not a JSON object, no `text`, a problem that is not in the set). A file
that is not JSONL at all, or in which no row names a problem of the set, is a one-line error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from splitreason.errors import UsageError, one_line
from splitreason.evaluate.accuracy import AccuracySummary, summarize
from splitreason.evaluate.grading import Grader, Grade
from splitreason.io.eval_sets import EvalProblem, EvalSet
from splitreason.io.readers import InputError, RawRow, iter_rows

__all__ = ["GRADING_KEY", "GradedPredictions", "PredictionRow", "PredictionsError", "grade_predictions",
           "read_predictions"]

GRADING_KEY = "grading"  # the key under which an output row carries its grading (the row is kept as it was)
_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")


class PredictionsError(UsageError):
    """The predictions file cannot be graded at all."""


@dataclass
class PredictionRow:
    line: int  # 1-based line of the predictions file
    data: dict[str, Any]
    problem: EvalProblem | None = None
    reject: str | None = None  # why the row cannot be graded
    verdict: Grade | None = None

    def output(self) -> dict[str, Any]:
        """The row as read, plus its grading under GRADING_KEY."""
        if self.verdict is None:
            grading: dict[str, Any] = {"status": "rejected", "correct": False, "reason": self.reject, "line": self.line}
        else:
            grading = {"problem_id": self.problem.id if self.problem else None, **self.verdict.to_dict()}
            grading = {key: value for key, value in grading.items() if value is not None or key == "answer"}
        return {**self.data, GRADING_KEY: grading}


@dataclass
class GradedPredictions:
    rows: list[PredictionRow]
    summary: AccuracySummary
    problems_in_set: int
    by_problem: dict[str, list[Grade]] = field(default_factory=dict)

    @property
    def rejected(self) -> list[PredictionRow]:
        return [row for row in self.rows if row.reject is not None]


def check_predictions_file(path: Path) -> None:
    """What can be said of the file before the evaluation set is loaded (which may need the hub):
    a JSONL file that exists."""
    path = Path(path)
    if not path.name.lower().endswith(_JSONL_SUFFIXES):
        raise PredictionsError(f"predictions file {path} is not JSONL (expected a .jsonl or .jsonl.gz file)")
    if not path.is_file():
        raise PredictionsError(f"predictions: input not found: {path}" if not path.exists()
                               else f"predictions file {path} is not a file")


def read_predictions(path: Path, eval_set: EvalSet, *, id_field: str | None = None) -> list[PredictionRow]:
    """Every row of `path`, each matched to its problem or carrying the reason it cannot be."""
    path = Path(path)
    check_predictions_file(path)
    key = id_field or "id"
    by_id = eval_set.by_id()
    by_index = {problem.index: problem for problem in eval_set.problems}
    rows: list[PredictionRow] = []
    try:
        for item in iter_rows(str(path)):
            if isinstance(item, RawRow):
                rows.append(_match(PredictionRow(item.row, item.data), key, by_id, by_index, eval_set.name))
            else:
                rows.append(PredictionRow(item.row, {}, reject=f"{item.reason.replace('_', ' ')}: {item.detail}"))
    except InputError as error:
        raise PredictionsError(f"predictions: {error}") from None
    if not rows:
        raise PredictionsError(f"predictions file {path} holds no rows")
    if all(row.reject is not None for row in rows):
        first = rows[0]
        if not first.data:
            raise PredictionsError(f"predictions file {path} is not JSONL: no line is a JSON object "
                                   f"(line {first.line}: {first.reject})")
        raise PredictionsError(f"no row of {path} can be graded against {eval_set.name} "
                               f"(line {first.line}: {first.reject})")
    return rows


def _match(row: PredictionRow, key: str, by_id: dict[str, EvalProblem], by_index: dict[int, EvalProblem],
           set_name: str) -> PredictionRow:
    text = row.data.get("text")
    if "text" not in row.data:
        row.reject = "no 'text' field"
    elif not isinstance(text, str):
        row.reject = f"'text' is a {type(text).__name__}, not a string"
    elif row.data.get(key) is not None:
        identifier = str(row.data[key])
        row.problem = by_id.get(identifier)
        if row.problem is None:
            row.reject = f"{key} {one_line(identifier, 80)!r} is not in {set_name}"
    elif row.data.get("index") is not None:
        index = row.data["index"]
        row.problem = by_index.get(index) if isinstance(index, int) and not isinstance(index, bool) else None
        if row.problem is None:
            row.reject = f"index {one_line(str(index), 40)} is not a position in {set_name} (0 to {len(by_index) - 1})"
    else:
        row.reject = f"names no problem: no {key!r} field and no 'index'"
    return row


def grade_predictions(rows: list[PredictionRow], eval_set: EvalSet, grader: Grader, *,
                      on_done: Callable[[], None] | None = None) -> GradedPredictions:
    """Grade every matched row (in the grader's workers, several at a time) and summarise."""
    gradable = [row for row in rows if row.reject is None and row.problem is not None]
    pairs = [(row.data["text"], row.problem.answer or "") for row in gradable if row.problem is not None]
    verdicts = grader.grade_many(pairs, on_done=(lambda index, verdict: on_done()) if on_done else None)
    by_problem: dict[str, list[Grade]] = {}
    for row, verdict in zip(gradable, verdicts):
        row.verdict = verdict
        if row.problem is not None:
            by_problem.setdefault(row.problem.id, []).append(verdict)
    return GradedPredictions(rows=rows, summary=summarize(by_problem), problems_in_set=len(eval_set.problems),
                             by_problem=by_problem)

"""Evaluation sets: the benchmark problems curate keeps out of training data and the evaluators
grade against, read one way for both.

A set is named by an alias in EVAL_SETS (the usual math benchmarks, the sources open-r1
decontaminates against), a local .jsonl/.jsonl.gz/.parquet file, or a hub dataset id. Each
problem has an id (the set's id field, else its row position), its text and, where the set has
one, its gold answer, kept as the string the set stores ("025" stays "025").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from splitreason.io.hub import HubUnavailable
from splitreason.io.readers import InputError, RawRow, is_hub_id, iter_rows

__all__ = ["ANSWER_FIELDS", "EVAL_SETS", "PROBLEM_FIELDS", "EvalProblem", "EvalSet", "EvalSetSpec", "load_eval_set"]

PROBLEM_FIELDS = ("problem", "question", "Problem", "Question", "prompt")
ANSWER_FIELDS = ("answer", "Answer", "final_answer", "gold", "solution_answer")
ID_FIELDS = ("id", "unique_id", "ID", "problem_id")


@dataclass(frozen=True)
class EvalSetSpec:
    hub_id: str
    split: str
    problem_field: str
    answer_field: str
    id_field: str | None


# alias -> where it lives on the hub and which columns hold what
EVAL_SETS: dict[str, EvalSetSpec] = {
    "aime24": EvalSetSpec("HuggingFaceH4/aime_2024", "train", "problem", "answer", "id"),
    "aime25": EvalSetSpec("yentinglin/aime_2025", "train", "problem", "answer", "id"),
    "math500": EvalSetSpec("HuggingFaceH4/MATH-500", "test", "problem", "answer", "unique_id"),
}


@dataclass(frozen=True)
class EvalProblem:
    id: str
    problem: str
    answer: str | None = None
    index: int = 0  # position in the set (0-based), for predictions matched by position


@dataclass(frozen=True)
class EvalSet:
    name: str
    source: str
    problems: list[EvalProblem] = field(default_factory=list)

    def by_id(self) -> dict[str, EvalProblem]:
        return {problem.id: problem for problem in self.problems}


def _pick(row: RawRow, wanted: str | None, candidates: tuple[str, ...], source: str, what: str,
          kind: str = "evaluation set") -> str | None:
    if wanted is not None:
        if wanted not in row.data:
            raise InputError(f"{kind} {source} has no {what} field {wanted!r} (row {row.row}); fields: "
                             f"{', '.join(sorted(row.data))[:200]}")
        return wanted
    for name in candidates:
        if name in row.data:
            return name
    return None


def load_eval_set(spec: str, *, problem_field: str | None = None, answer_field: str | None = None,
                  id_field: str | None = None, need_answers: bool = False,
                  problem_option: str = "--problem-field", kind: str = "evaluation set",
                  set_option: str = "--eval-set") -> EvalSet:
    """Read the evaluation set named by `spec` (an alias, a local file or a hub id).

    `need_answers`: every problem must have a non-empty answer (the evaluators grade against it);
    otherwise answers are read where there are some. `problem_option` is the command's option
    that names the problem field, for the message when none is found. `kind` is what the messages
    call the set (`train grpo` reads its training problems here: "problem set") and `set_option` the
    command's option that takes a file in place of a known set's alias.
    """
    split = "train"
    if spec in EVAL_SETS and not Path(spec).exists():
        known = EVAL_SETS[spec]
        source, split = known.hub_id, known.split
        problem_field = problem_field or known.problem_field
        answer_field = answer_field or known.answer_field
        id_field = id_field or known.id_field
        name = spec
    else:
        source = spec
        name = spec.split("/")[-1] if is_hub_id(spec) else Path(spec).name.split(".")[0]
    problems: list[EvalProblem] = []
    columns: tuple[str | None, str | None, str | None] | None = None
    try:
        rows = iter_rows(source, hub_split=split)
    except HubUnavailable as error:
        if name == spec and source != spec:  # an alias: say which, and that the option takes a file too
            raise HubUnavailable(f"{kind} {spec}: {error} ({set_option} takes that file or folder)") from error
        raise
    for position, item in enumerate(rows):
        if not isinstance(item, RawRow):
            raise InputError(f"{kind} {source}: unreadable row {item.row} ({item.reason}: {item.detail})")
        if columns is None:
            problem_column = _pick(item, problem_field, PROBLEM_FIELDS, source, "problem", kind)
            if problem_column is None:
                raise InputError(f"{kind} {source}: no problem field among {', '.join(PROBLEM_FIELDS)} "
                                 f"(row {item.row}); name it with {problem_option}")
            answer_column = _pick(item, answer_field, ANSWER_FIELDS, source, "answer", kind)
            if need_answers and answer_column is None:
                raise InputError(f"{kind} {source}: no answer field among {', '.join(ANSWER_FIELDS)} "
                                 f"(row {item.row}); name it with --answer-field")
            columns = (problem_column, answer_column, _pick(item, id_field, ID_FIELDS, source, "id", kind))
        problem_column, answer_column, id_column = columns
        for column in (problem_column, answer_column, id_column):
            if column is not None and column not in item.data:
                raise InputError(f"{kind} {source}: row {item.row} has no field {column!r}")
        text = item.data[problem_column]
        if not isinstance(text, str) or not text.strip():
            continue
        answer = item.data.get(answer_column) if answer_column else None
        answer = None if answer is None else str(answer).strip() or None
        if need_answers and answer is None:
            raise InputError(f"{kind} {source}: row {item.row} has an empty answer ({answer_column!r})")
        identifier = item.data.get(id_column) if id_column else None
        problems.append(EvalProblem(id=str(identifier if identifier is not None else position), problem=text,
                                    answer=answer, index=position))
    if not problems:
        raise InputError(f"{kind} {spec} holds no problems")
    return EvalSet(name=name, source=source, problems=problems)

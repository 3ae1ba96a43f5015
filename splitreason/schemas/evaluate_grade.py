"""Settings of `splitreason evaluate grade`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from splitreason.schemas.settings import CommandSettings, operational

__all__ = ["EvaluateGradeSettings"]


class EvaluateGradeSettings(CommandSettings):
    command: ClassVar[str] = "evaluate grade"

    predictions: Path = Field(description="JSONL of predictions: each row has `text` (the model's answer) and the "
                              "problem it answers (the set's id, or its 0-based position as `index`).")
    eval_set: str = Field(description="Evaluation set: aime24, aime25, math500, a local .jsonl/.parquet file "
                          "or a hub dataset id.")
    id_field: str | None = Field(None, description="The set's id field, which prediction rows carry too "
                                 "(default: the set's own ids, which rows carry as `id`).")
    problem_field: str | None = Field(None, description="The set's problem field (default: problem, question, ...).")
    answer_field: str | None = Field(None, description="The set's gold answer field (default: answer, ...).")
    output: Path | None = Field(None, description="Write every prediction row with its grading (extracted "
                                "answer, gold, verdict) to this JSONL file.")
    timeout_s: float = operational(10.0, gt=0, description="Seconds one answer may take to grade; a slower "
                                   "one counts as a timeout (wrong).")
    workers: int = operational(0, ge=0, description="Grading processes (0: up to 4, one per core).")

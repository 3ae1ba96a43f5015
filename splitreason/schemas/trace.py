"""The record that flows from the readers into the annotator: one reasoning trace."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

#: The longest trace id accepted anywhere: at input (longer ids are rejects) and by the review UI,
#: so every annotated trace can be opened and decided there.
MAX_TRACE_ID_CHARS = 1000
# Characters a trace id may not hold: controls (Unicode category Cc: newlines, escapes, NUL), line
# and paragraph separators, and lone surrogates. A trace id is shown in terminals, URLs and the queue.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def trace_id_issue(trace_id: str) -> str | None:
    """Why `trace_id` cannot be used (one line), or None when it can."""
    if len(trace_id) > MAX_TRACE_ID_CHARS:
        return f"trace id is {len(trace_id):,} characters long; at most {MAX_TRACE_ID_CHARS:,} are accepted"
    found = _FORBIDDEN.search(trace_id)
    if found is not None:
        return f"trace id holds the control character U+{ord(found.group()):04X} at char {found.start()}"
    return None


class Trace(BaseModel):
    """One generation of one OpenR1-Math problem, selected for annotation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trace_id: str = Field(description='"{uuid}:{generation index}", unique across the dataset.')
    uuid: str = Field(description="The OpenR1 record's uuid.")
    generation_index: int = Field(ge=0, description="Index of this generation in the record's `generations`.")
    problem: str = Field(description="The problem statement shown to the reasoning model.")
    text: str = Field(description="The reasoning trace itself (the generation), never modified.")
    answer: str | None = Field(default=None, description="The reference answer of the problem.")
    source: str | None = Field(default=None, description="OpenR1 `source` (e.g. olympiads, amc_aime).")
    problem_type: str | None = Field(default=None, description="OpenR1 `problem_type` (e.g. Algebra).")
    question_type: str | None = Field(default=None, description="OpenR1 `question_type` (e.g. math-word-problem).")
    finish_reason: str | None = Field(default=None, description="OpenR1 `finish_reasons[i]` of this generation (e.g. stop, length).")
    correctness_count: int | None = Field(default=None, ge=0,
                                          description="OpenR1 `correctness_count`: how many generations of the problem are correct.")
    origin: str = Field(default="", description="Where the record was read from: file path or hub id.")
    origin_row: int | None = Field(default=None, description="1-based line (jsonl) or 0-based row (parquet/hub).")

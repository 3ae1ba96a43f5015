"""SFT-ready JSONL: the problem plus an offload instruction, and the trace with spans tagged.

    {"id": trace_id,
     "messages": [{"role": "user", "content": problem + instruction},
                  {"role": "assistant", "content": trace with <bigmodel>…</bigmodel>}],
     "metadata": {...}}

`--format prompt-completion` writes TRL's conversational prompt/completion pair instead.

Human review wins over the judge: a trace people reviewed is exported with the reconciled reviewed
spans whatever the judge's status was, a trace they rejected is left out, and every row's
metadata says whether it was reviewed (see review/reconcile.py for how several reviewers' reviews are reconciled).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import json

from splitreason.exports.tags import insert_tags, strip_tags
from splitreason.io.jsonl import atomic_writer
from splitreason.judges.kinds import HEURISTIC, judge_kind
from splitreason.models.tokens import TokenCounter
from splitreason.schemas import Annotation
from splitreason.schemas.export import user_content
from splitreason.schemas.review import ReviewOutcome, spans_after_review

log = logging.getLogger(__name__)

ExportFormat = Literal["messages", "prompt-completion"]


def default_instruction() -> str:
    return resources.files("splitreason.prompts").joinpath("offload_instruction.txt").read_text(encoding="utf-8").strip()


def export_row(annotation: Annotation, *, instruction: str, fmt: ExportFormat = "messages",
               review: ReviewOutcome | None = None) -> dict[str, Any]:
    spans = review.spans if review is not None else annotation.spans
    assistant = insert_tags(annotation.trace, spans)
    if strip_tags(assistant) != annotation.trace:  # the contract, checked on every row
        raise AssertionError(f"tag round trip failed for {annotation.trace_id}")
    user = {"role": "user", "content": user_content(annotation.problem, instruction)}
    reply = {"role": "assistant", "content": assistant}
    metadata = {
        "source": annotation.source,
        "problem_type": annotation.problem_type,
        "status": annotation.status,
        "coverage": round(sum(span.end - span.start for span in spans) / len(annotation.trace), 6)
        if review is not None else annotation.coverage,
        "confidence": annotation.confidence,
        "spans": len(spans),
        "judge": annotation.judge.name,
        # "offline heuristic" marks rows whose spans came from fixed rules, not a judge of difficulty.
        "judge_kind": judge_kind([annotation.judge, *annotation.other_judges]),
        "reviewed": review is not None,
    }
    if review is not None:
        metadata["reviewers"] = review.reviewers
        metadata["review_agreement"] = review.decision_agreement
        metadata["judge_agreement"] = round(review.judge_agreement, 4)
    if fmt == "prompt-completion":
        return {"id": annotation.trace_id, "prompt": [user], "completion": [reply], "metadata": metadata}
    return {"id": annotation.trace_id, "messages": [user, reply], "metadata": metadata}


@dataclass
class ExportSummary:
    rows: int = 0
    skipped: Counter = field(default_factory=Counter)
    offload_chars: int = 0
    total_chars: int = 0
    offload_tokens: int | None = None
    total_tokens: int | None = None
    reviewed: int = 0  # rows whose spans come from human review
    heuristic: int = 0  # rows marked by the offline heuristic judge (reviewed or not)
    heuristic_reviewed: int = 0

    @property
    def offload_char_share(self) -> float:
        return self.offload_chars / self.total_chars if self.total_chars else 0.0

    @property
    def offload_token_share(self) -> float | None:
        if self.total_tokens is None or not self.total_tokens:
            return None
        return (self.offload_tokens or 0) / self.total_tokens


#: The spans a trace is exported with (None: left out); the rule lives with the review records.
exported_spans = spans_after_review


def write_export(
    records: Iterable[tuple[Annotation, ReviewOutcome | None]],
    out_path: Path,
    *,
    instruction: str,
    fmt: ExportFormat = "messages",
    statuses: frozenset[str] = frozenset({"accepted"}),
    tokens: TokenCounter | None = None,
) -> ExportSummary:
    """Write the export atomically: a crash leaves the previous file, never half a file.

    `records`: each annotation with its reconciled review outcome or None (tables/run.py
    `Run.iter_with_outcomes`): reviewed traces are exported with their reconciled reviewed spans
    whatever their status, or left out when the reviewers rejected them.
    """
    summary = ExportSummary()
    if tokens is not None:
        summary.offload_tokens, summary.total_tokens = 0, 0
    with atomic_writer(out_path, "w") as handle:
        for annotation, outcome in records:
            spans = exported_spans(annotation, outcome, statuses)
            if spans is None:
                why = "rejected in review" if outcome is not None else annotation.status
                summary.skipped[why] += 1
                log.info("trace %s: left out (%s)", annotation.trace_id, why)
                continue
            summary.reviewed += outcome is not None
            row = export_row(annotation, instruction=instruction, fmt=fmt, review=outcome)
            if HEURISTIC in row["metadata"]["judge_kind"]:
                summary.heuristic += 1
                summary.heuristic_reviewed += outcome is not None
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            log.info("trace %s: exported, %d span(s)%s", annotation.trace_id, len(spans),
                     ", reviewed" if outcome is not None else "")
            summary.rows += 1
            summary.total_chars += len(annotation.trace)
            summary.offload_chars += sum(span.end - span.start for span in spans)
            if tokens is not None:
                inside, total = tokens.count(annotation, spans)
                summary.offload_tokens += inside
                summary.total_tokens += total
    return summary


def save_hf_dataset(jsonl_path: Path, dataset_dir: Path) -> int:
    """Save the export as a Hugging Face dataset (datasets.load_from_disk reads it back)."""
    from datasets import Dataset

    dataset = Dataset.from_json(str(jsonl_path))
    dataset.save_to_disk(str(dataset_dir))
    return len(dataset)

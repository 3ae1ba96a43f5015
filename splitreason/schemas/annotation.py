"""The annotator's output record: the contract export, stats, review and training rely on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["accepted", "review", "rejected"]
MatchKind = Literal["exact", "normalized", "fuzzy", "semantic"]
# How trustworthy each kind of alignment is: higher is better. "semantic" is a paraphrase found
# by sentence embeddings (no literal match at all): a guess, kept with a low score.
MATCH_RANK: dict[str, int] = {"exact": 3, "normalized": 2, "fuzzy": 1, "semantic": 0}


class TextSpan(BaseModel):
    """A stretch of a trace: Python code-point offsets (end exclusive) and its text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(ge=0, description="Offset of the first character of the span.")
    end: int = Field(gt=0, description="Offset one past the last character of the span.")
    text: str = Field(description="Exactly trace[start:end].")

    @model_validator(mode="after")
    def _check(self) -> TextSpan:
        if self.end <= self.start:
            raise ValueError(f"span end {self.end} must be after start {self.start}")
        if len(self.text) != self.end - self.start:
            raise ValueError("span text length does not match its offsets")
        return self


class Span(TextSpan):
    """A difficult span the judge marked, as aligned to the trace."""

    score: float = Field(ge=0.0, le=1.0, description="Alignment score: 1.0 for an exact quote.")
    reason: str = Field(default="", description="Why the judge found this span difficult.")
    match: MatchKind = Field(default="exact", description="How the judge's excerpt was aligned to the trace.")
    signal: float | None = Field(default=None, exclude_if=lambda value: value is None,
                                 description="Strength of a model-grounded judge's signal in this span (its "
                                             "reason says what it measures); absent for judges that quote.")


class HallucinatedExcerpt(BaseModel):
    """An excerpt the judge quoted that could not be found in the trace: counted, never forced in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(description="The excerpt as the judge wrote it (truncated to 500 characters).")
    best_score: float = Field(ge=0.0, le=1.0, description="Best fuzzy score found, below the threshold.")


class JudgeInfo(BaseModel):
    """Provenance: which judge, which prompt template and which sampling parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Judge name as given on the command line (alias or backend:model).")
    backend: str = Field(description="heuristic, openai, anthropic or vllm.")
    model: str = Field(description="Model id or path; the rules version for the heuristic judge.")
    prompt_hash: str = Field(description="sha256 of the prompt template (first 16 hex digits).")
    params: dict[str, Any] = Field(default_factory=dict, description="Every sampling parameter sent.")


class SampleSummary(BaseModel):
    """What one judge sample said, kept when a trace was judged more than once (--samples, several --judge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judge: str = Field(description="Name of the judge that gave this sample.")
    sample: int = Field(ge=0, description="Sample index for that judge (0-based).")
    spans: list[tuple[int, int]] = Field(default_factory=list, description="Aligned span offsets of this sample.")
    excerpts: int = Field(default=0, ge=0)
    hallucinated: int = Field(default=0, ge=0)
    failed: str | None = Field(default=None, description="Reason code when the sample gave no usable answer.")


class Usage(BaseModel):
    """Tokens the judge spent on this trace (as reported by the backend)."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


class Annotation(BaseModel):
    """One selected trace after judging, alignment, validation and routing."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str
    problem: str = Field(description="Problem statement, so the record is self-contained for export.")
    trace: str = Field(description="The original trace; span offsets index into it.")
    source: str | None = None
    problem_type: str | None = None
    spans: list[Span] = Field(default_factory=list, description="Sorted, non-overlapping difficult spans.")
    hallucinated: list[HallucinatedExcerpt] = Field(default_factory=list)
    excerpts: int = Field(default=0, ge=0, description="How many excerpts the judge returned.")
    coverage: float = Field(ge=0.0, le=1.0, description="Share of trace characters inside spans.")
    target_coverage: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    status: Status
    status_reason: str = Field(description="Short reason code for the status, e.g. ok, low_confidence, judge_failed.")
    judge: JudgeInfo
    usage: Usage = Field(default_factory=Usage)
    agreement: float | None = Field(default=None, ge=0.0, le=1.0,
                                    description="Mean pairwise character F1 between samples/judges; None for one sample.")
    samples: list[SampleSummary] = Field(default_factory=list, description="Each sample, when there were several.")
    other_judges: list[JudgeInfo] = Field(default_factory=list, description="Judges after the first (several --judge).")

    @model_validator(mode="after")
    def _check_spans(self) -> Annotation:
        previous_end = 0
        for span in self.spans:
            if span.end > len(self.trace):
                raise ValueError(f"span {span.start}:{span.end} lies outside the trace ({len(self.trace)} chars)")
            if span.start < previous_end:
                raise ValueError("spans overlap or are not sorted")
            if self.trace[span.start : span.end] != span.text:
                raise ValueError(f"span text does not equal trace[{span.start}:{span.end}]")
            previous_end = span.end
        return self

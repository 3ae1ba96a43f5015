"""A trace that curation removed: written to exclusions.jsonl with the step and the reason."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CurateStep = Literal["select", "filter", "decontaminate", "dedup", "sample"]


class Exclusion(BaseModel):
    """One trace removed by `splitreason curate`, never dropped silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trace_id: str = Field(description='"{uuid}:{generation index}" of the removed trace.')
    uuid: str = Field(description="The OpenR1 record's uuid (dedup and decontamination act on problems).")
    origin: str = Field(default="", description="Where the record was read from: file path or hub id.")
    row: int | None = Field(default=None, description="1-based line (jsonl) or 0-based row (parquet/hub).")
    step: CurateStep = Field(description="The curation step that removed it.")
    reason: str = Field(description="Short reason code, e.g. length_chars, contaminated, near_duplicate.")
    detail: str = Field(default="", description="One human-readable line.")
    kept: str | None = Field(default=None, description="Dedup: uuid of the cluster member that was kept.")
    similarity: float | None = Field(default=None, description="Dedup: estimated similarity to the kept member.")
    eval_set: str | None = Field(default=None, description="Decontamination: the evaluation set it overlaps.")

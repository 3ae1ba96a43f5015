"""An input row that could not become a trace: written to rejects.jsonl, never dropped silently."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Reject(BaseModel):
    """One bad input row or generation, with a one-line reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: str = Field(description="Source file path or hub id.")
    row: int | None = Field(default=None, description="1-based line (jsonl) or 0-based row (parquet/hub).")
    trace_id: str | None = Field(default=None, description="Trace id when it is known.")
    reason: str = Field(description="Short machine-friendly reason code, e.g. invalid_json, contains_tag.")
    detail: str = Field(default="", description="One human-readable line explaining the reason.")

    def key(self) -> tuple[str, int | None, str | None, str]:
        """Identity used to avoid writing the same reject twice when a run resumes."""
        return (self.origin, self.row, self.trace_id, self.reason)

"""`splitreason evaluate tags`: its settings and its result (also stored in train.json).

How each figure is defined is in evaluate/tags.py and the README's "Train" section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from splitreason.schemas.settings import CommandSettings, ModelDtype, operational

__all__ = ["TagMetrics", "TagsEvalSettings"]


class TagsEvalSettings(CommandSettings):
    """Settings of `splitreason evaluate tags`."""

    command = "evaluate tags"

    model: str = Field(description="The model to evaluate: a directory (e.g. train sft's OUT) or a hub id.")
    data: list[Path] = Field(min_length=1, description="Held-out export files (jsonl, either shape) or saved dataset directories.")
    chat_template: Path | None = Field(
        default=None, description="Jinja chat template file (default: the model's, or the bundled one that keeps the reasoning).")
    window: int = Field(default=5, ge=0, le=1000,
                        description="Span figures: a predicted open within this many tokens of a gold span's open finds it.")
    skip_bad_rows: bool = Field(default=False, description="Leave out rows whose tags are unbalanced, nested or empty (counted) instead of refusing the data.")
    max_length: int | None = Field(default=None, ge=16, description="Score in windows of this many tokens (default: the model's context).")
    device: str = operational("auto", description="Where to run: auto (a GPU when there is one), cpu, cuda, cuda:1, …")
    dtype: ModelDtype = operational("auto", description="auto (bf16 on a GPU that has it, fp32 on the CPU), float32, bfloat16, float16.")
    batch_size: int = operational(8, ge=1, description="Rows per forward pass.")
    json_output: bool = operational(False, description="Print one JSON object instead of a table.")
    progress: bool = operational(True, description="Show a progress bar on stderr.")


class TagMetrics(BaseModel):
    """How well a model places the tags on annotated rows, teacher-forced (one pass per row)."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(description="Rows scored.")
    skipped_bad_tags: int = Field(default=0, description="Rows left out because their tags are broken (--skip-bad-rows).")
    positions: int = Field(description="Reply positions scored (each predicts the next token).")
    tags: Literal["special", "text"] = Field(description="How the model's tokenizer writes the tags.")
    open_gold: int = Field(description="Positions where the data opens a span.")
    open_predicted: int = Field(description="Positions where the model's greedy next token opens one.")
    open_hits: int = Field(description="Both.")
    open_precision: float | None
    open_recall: float | None
    open_f1: float | None
    close_gold: int = Field(description="Positions where the data closes a span.")
    close_predicted: int = Field(description="Positions inside the data's spans where the model would close.")
    close_hits: int
    close_precision: float | None
    close_recall: float | None
    close_f1: float | None
    span_window: int = Field(description="Tolerance of the span figures, in tokens.")
    span_precision: float | None = Field(description="Predicted opens within span_window tokens of an unmatched gold open.")
    span_recall: float | None = Field(description="Gold spans with a predicted open within span_window tokens of their open.")
    span_f1: float | None
    offload_share_data: float | None = Field(description="Share of reply tokens inside the data's spans (tags not counted).")
    offload_share_predicted: float | None = Field(
        description="Teacher-forced estimate of the share the model would offload: predicted opens times its mean "
                    "span length (a gold open to the model's first predicted close after it, inside the span or "
                    "past it; to the end of the reply where it predicts none), over reply tokens.")
    open_prob_mean: float | None = Field(description="Mean probability of the whole open tag at the data's open positions.")
    close_prob_mean: float | None = Field(description="Mean probability of the whole close tag at the data's close positions.")

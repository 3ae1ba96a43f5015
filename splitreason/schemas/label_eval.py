"""`splitreason evaluate labels`: its settings and its result (what `report --labels` reads).

How each figure is defined is in evaluate/labels.py and the README's "Model-grounded labels".
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from splitreason.schemas.settings import CommandSettings, ModelDtype, operational

__all__ = ["LabelMetrics", "LabelsEvalSettings", "LabelsReport", "RunAgreement"]

#: Printed with every result: the lift is not a neutral referee.
LIFT_CAVEAT = ("the lift is not neutral: a surprisal: judge maximises the small model's loss inside its spans by "
               "construction, and a divergence: judge with the same pair its disagreement; compare labellings by "
               "what they teach (train sft on each, evaluate offload on both)")


class LabelsEvalSettings(CommandSettings):
    """Settings of `splitreason evaluate labels`."""

    command = "evaluate labels"

    runs: list[Path] = Field(min_length=1, description="Annotation runs (annotate's OUT) over the same traces.")
    small: str = Field(description="The small model (directory or hub id) whose trouble the spans should pick out.")
    large: str | None = Field(default=None, description="The large model (same tokenizer): measure the small model's "
                                                        "excess loss over it instead of its plain loss.")
    max_length: int | None = Field(default=None, ge=16, description="Score in windows of this many tokens "
                                                                     "(default: the models' context).")
    device: str = operational("auto", description="Where to run: auto (a GPU when there is one), cpu, cuda, cuda:1, …")
    dtype: ModelDtype = operational("auto", description="auto (bf16 on a GPU that has it, fp32 on the CPU), float32, "
                                                 "bfloat16, float16.")
    batch_size: int = operational(8, ge=1, description="Traces per forward pass.")
    json_output: bool = operational(False, description="Print one JSON object instead of a table.")
    progress: bool = operational(True, description="Show a progress bar on stderr.")


class LabelMetrics(BaseModel):
    """How well one run's spans pick out the small model's trouble, over the traces all runs share."""

    model_config = ConfigDict(extra="forbid")

    run: str = Field(description="The run directory.")
    judge: str = Field(description="The run's judge (name) and kind.")
    traces: int = Field(description="Traces scored (those every run annotated, not rejected).")
    tokens: int = Field(description="Trace tokens scored.")
    token_share: float = Field(description="Share of the trace tokens inside the run's spans.")
    loss_share: float = Field(description="Share of the small model's loss (nats) that falls inside the spans.")
    loss_lift: float | None = Field(description="loss_share / token_share (1.0 is chance); None without spans.")
    excess_share: float | None = Field(default=None, description="Share of the small model's positive excess loss "
                                                                 "over the large one inside the spans (with --large).")
    excess_lift: float | None = Field(default=None, description="excess_share / token_share (1.0 is chance).")


class RunAgreement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: str
    b: str
    char_f1: float = Field(description="Mean character F1 of the two runs' spans over the shared traces.")


class LabelsReport(BaseModel):
    """The result of `evaluate labels` (printed with --json; `report --labels FILE` reads it)."""

    model_config = ConfigDict(extra="forbid")

    format: str = "splitreason-labels-eval"
    small: str
    large: str | None = None
    traces: int = Field(description="Traces every run annotated (with the same text), rejected ones left out.")
    left_out: dict[str, int] = Field(default_factory=dict,
                                     description="Per run: its annotated traces that not every run has.")
    runs: list[LabelMetrics]
    agreement: list[RunAgreement] = Field(default_factory=list)
    caveat: str = LIFT_CAVEAT

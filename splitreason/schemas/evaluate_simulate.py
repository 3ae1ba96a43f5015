"""Settings of `splitreason evaluate simulate`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from splitreason.schemas.settings import CommandSettings

#: The GPUs of evaluate/gpus.toml (a test keeps the two the same).
GpuName = Literal["a6000", "a100-40gb", "a100", "h100-pcie", "h100", "h200"]

__all__ = ["EvaluateSimulateSettings"]

_RATE = "tokens/s at batch size 1"


class EvaluateSimulateSettings(CommandSettings):
    command: ClassVar[str] = "evaluate simulate"

    # what is projected: a synthetic answer, or the real segments of an evaluation run
    evaluation: Path | None = Field(None, description="An `evaluate offload` output directory: project its "
                                    "samples' real segments (OUT/samples.jsonl).")
    mode: str = Field("learned", description="Which of the evaluation's modes to project (learned, random, ...).")
    offload_share: float | None = Field(None, ge=0, le=1, description="A synthetic answer: the share of its "
                                        "tokens the large model writes (0.05 = 5 %).")
    prompt_tokens: int = Field(2048, ge=0, description="Synthetic: prompt length in tokens (both models).")
    decode_tokens: int = Field(16384, ge=1, description="Synthetic: answer length in tokens.")
    segment_tokens: int | None = Field(None, ge=1, description="Synthetic: length of each large-model segment "
                                       "(default: the chunk size).")
    chunk_tokens: int | None = Field(None, ge=1, description="Chunk size: the paper's rounding unit and the "
                                     "close-check unit of the sequential schedule (default: 256, the paper's, "
                                     "for a synthetic answer; the run's own, else 64, for an evaluation).")
    paper_rounding: bool = Field(False, description="Round the large model's tokens down to whole chunks, as the "
                                 "paper's simulation does (synthetic answers only).")
    schedule: Literal["pipelined", "sequential"] = Field("pipelined", description="pipelined: the paper's model "
                                                         "(each model reads while the other writes); sequential: "
                                                         "adds the handoff costs the paper leaves out.")
    # where the rates come from: measured (a profile, or each on the command line) or a roofline
    profile: str | None = Field(None, description="Rates from a profile: a shipped one (a6000-paper) or a TOML file.")
    small_prefill: float | None = Field(None, gt=0, description=f"Small model's prefill rate, {_RATE}.")
    small_decode: float | None = Field(None, gt=0, description=f"Small model's decode rate, {_RATE}.")
    large_prefill: float | None = Field(None, gt=0, description=f"Large model's prefill rate, {_RATE}.")
    large_decode: float | None = Field(None, gt=0, description=f"Large model's decode rate, {_RATE}.")
    gpu: GpuName | None = Field(None, description="Roofline rates on this GPU from --small-params and --large-params.")
    small_params: float | None = Field(None, gt=0, description="Roofline: the small model's parameters, in billions.")
    large_params: float | None = Field(None, gt=0, description="Roofline: the large model's parameters, in billions.")
    bytes_per_param: float = Field(2.0, gt=0, description="Roofline: bytes per weight (2 for BF16, 1 for FP8/INT8).")

    @model_validator(mode="after")
    def _one_input(self) -> EvaluateSimulateSettings:
        if (self.evaluation is None) == (self.offload_share is None):
            raise _invalid("give --offload-share (a synthetic answer) or --evaluation OUT (its real segments), "
                           "one of the two")
        if self.paper_rounding and self.offload_share is None:
            raise _invalid("--paper-rounding applies to a synthetic answer (--offload-share)")
        if self.gpu is not None and (self.small_params is None or self.large_params is None):
            raise _invalid("--gpu needs --small-params and --large-params (billions of parameters)")
        for flag, value in (("--small-params", self.small_params), ("--large-params", self.large_params)):
            if value is not None and value > MAX_BILLIONS:
                raise _invalid(f"{flag} {value:g} is more than {MAX_BILLIONS:,} billion: parameters in billions "
                               "(1.5 for a 1.5B model)")
        return self


MAX_BILLIONS = 10_000  # a count beyond this was surely given in parameters, not billions


def _invalid(message: str) -> PydanticCustomError:
    # a custom error keeps the message as written (a ValueError would read "Value error, ...")
    return PydanticCustomError("invalid_simulation", message)

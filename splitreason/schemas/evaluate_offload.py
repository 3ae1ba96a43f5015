"""Settings of `splitreason evaluate offload`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from splitreason.schemas.settings import CommandSettings, ModelDtype, operational

__all__ = ["EvaluateOffloadSettings", "OFFLOAD_MODES"]

OFFLOAD_MODES = ("learned", "small", "large", "random")


class EvaluateOffloadSettings(CommandSettings):
    command: ClassVar[str] = "evaluate offload"

    small: str | None = Field(None, description="The small (offloading) model: a `train sft` OUT, any model "
                              "directory or a hub id (the paper's released models keep their tags as text).")
    large: str | None = Field(None, description="The large model (it writes the offloaded segments); it must "
                              "share the small model's vocabulary.")
    eval_set: str = Field(description="Evaluation set: aime24, aime25, math500, a local .jsonl/.parquet file with "
                          "a problem and an answer field, or a hub dataset id.")
    output: Path = Field(description="Output directory: samples.jsonl (one row per mode, problem and sample), "
                         "summary.json, manifest.json. A run killed part-way resumes where it stopped.")
    modes: list[Literal["learned", "small", "large", "random"]] = Field(
        default_factory=lambda: ["learned"], description="Modes to run on the same problems and seeds (give "
        "--mode several times): learned (the small model decides), small (alone), large (alone), random "
        "(random segments at the share learned reached on the same problem; alone, --offload-share).")
    backend: Literal["hf", "vllm", "openai"] = Field("hf", description="hf: transformers in this process, each "
                                                      "model's cache kept; vllm: a vLLM server per model started here "
                                                      "(prefix caching on); openai: two OpenAI-compatible servers you "
                                                      "started (--small-url, --large-url).")
    small_url: str | None = Field(None, description="openai backend: base URL of the small model's server (…/v1).")
    large_url: str | None = Field(None, description="openai backend: base URL of the large model's server (…/v1).")
    instruction: str | None = Field(None, description="The offload instruction ending the small model's user turn "
                                    "(default: the one recorded in its train.json, else the export's default; "
                                    "'' for none).")
    problem_field: str | None = Field(None, description="The eval set's problem field (default: problem, question, …).")
    answer_field: str | None = Field(None, description="The eval set's gold answer field (default: answer, …).")
    id_field: str | None = Field(None, description="The eval set's id field (default: id, unique_id, …; else the "
                                 "row's position).")
    limit: int | None = Field(None, ge=1, description="Only the first N problems of the set.")
    chunk_tokens: int = Field(64, ge=1, description="The large model writes this many tokens before the small model "
                              "checks, in one forward pass, where the segment closes.")
    max_segment_tokens: int = Field(512, ge=1, description="A large segment this long is closed by force.")
    max_tokens: int = Field(4096, ge=1, description="Cap on an answer's tokens (both models; tags not counted).")
    close_threshold: float | None = Field(None, gt=0, le=1, description="Close where </bigmodel> has at least this "
                                          "probability (default: where it is the small model's greedy next token).")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature of both models (0: greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling: keep the most likely tokens up to this "
                         "probability mass.")
    seed: int = Field(0, description="Seed: each (problem, sample) gets its own, the same in every mode.")
    samples: int = Field(1, ge=1, description="Samples per problem and mode (mean accuracy over samples, and a "
                         "majority vote over them).")
    offload_share: float | None = Field(None, ge=0, lt=1, description="Mode random without mode learned: the share "
                                        "of tokens to offload.")
    random_segment_tokens: int | None = Field(None, ge=1, description="Mode random: length of each offloaded segment "
                                              "(default: the mean length of learned's segments on the same problem, "
                                              "else --chunk-tokens).")
    device: str = Field("auto", description="hf backend: device (auto: a GPU when there is one).")
    dtype: ModelDtype = Field("auto", description="hf backend: dtype (auto: bfloat16 on a GPU that has it, else float32).")
    vllm_max_model_len: int | None = operational(None, ge=1, description="vllm backend: the servers' "
                                                 "--max-model-len (default: the model's).")
    small_gpu_share: float = operational(0.25, gt=0, le=1, description="vllm backend on a GPU: the share of the "
                                         "GPU's memory the small model's server takes (--gpu-memory-utilization).")
    large_gpu_share: float = operational(0.6, gt=0, le=1, description="vllm backend on a GPU: the share of each "
                                         "GPU's memory the large model's server takes (with the small one's, at most 1).")
    large_tensor_parallel: int = operational(1, ge=1, description="vllm backend: GPUs the large model's server "
                                             "spans (--tensor-parallel-size), for a model one GPU cannot hold.")
    profile: str = operational("a6000-paper", description="Rates for the projected latency in the summary: a shipped "
                               "profile (a6000-paper) or a TOML file (see evaluate simulate).")
    timeout_s: float = operational(10.0, gt=0, description="Seconds one answer may take to grade (a slower one is "
                                   "wrong, counted as a timeout).")
    progress: bool = operational(True, description="Show progress on stderr.")

    @model_validator(mode="after")
    def _consistent(self) -> EvaluateOffloadSettings:
        modes = set(self.modes)
        if not modes:
            raise _invalid("give at least one --mode")
        if len(self.modes) != len(modes):
            raise _invalid("each --mode once")
        if modes & {"learned", "small", "random"} and not self.small:
            raise _invalid(f"mode {sorted(modes & {'learned', 'small', 'random'})[0]} needs --small")
        if modes & {"learned", "large", "random"} and not self.large:
            raise _invalid(f"mode {sorted(modes & {'learned', 'large', 'random'})[0]} needs --large")
        if "random" in modes and "learned" not in modes and self.offload_share is None:
            raise _invalid("mode random alone needs --offload-share (with mode learned it takes learned's share)")
        both_started = (self.backend == "vllm" and modes & {"learned", "small", "random"}
                        and modes & {"learned", "large", "random"} and self.small != self.large)
        if both_started and self.small_gpu_share + self.large_gpu_share > 1:
            raise _invalid(f"--small-gpu-share {self.small_gpu_share} and --large-gpu-share {self.large_gpu_share} add "
                           "up to more than 1: both servers share the first GPU")
        if self.backend == "openai" and not (self.small_url or self.large_url):
            raise _invalid("the openai backend needs --small-url and --large-url")
        return self


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_offload_settings", message)

"""`splitreason train grpo`: its settings (the shared trainer settings plus GRPO's own).

Defaults follow the paper's stage 2 where it says (a 5 % offload target, rewards for correctness,
format and offloading) and TRL's GRPO otherwise; the reward weights, the latency profile and the
offload target are ours to tune.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from splitreason.schemas.settings import operational
from splitreason.schemas.training import TrainSettings

__all__ = ["DEFAULT_WEIGHTS", "GENERATION_BACKENDS", "GRPOSettings", "REWARD_NAMES", "parse_reward_weights"]

REWARD_NAMES = ("correctness", "format", "offload", "latency")
DEFAULT_WEIGHTS = {"correctness": 1.0, "format": 0.5, "offload": 0.5, "latency": 0.5}

GENERATION_BACKENDS = ("auto", "transformers", "vllm-colocate", "vllm-server")


class GRPOSettings(TrainSettings):
    """Settings of `splitreason train grpo` (TRL's GRPOTrainer on a `train sft` model)."""

    command = "train grpo"

    model: str = Field(description="The model to train: a `train sft` output directory (or any model that writes the tags).")
    problems: str = Field(description="Problems with gold answers: a local .jsonl/.parquet (problem and answer fields) or a hub id.")
    limit: int | None = Field(default=None, ge=1, description="Use the first N problems (after decontamination).")
    problem_field: str | None = Field(default=None, description="The problems' text field (default: problem, question, ...).")
    answer_field: str | None = Field(default=None, description="The gold answer field (default: answer, final_answer, ...).")
    decontaminate_against: list[str] = Field(
        default_factory=list, description="Evaluation sets (aime24, math500, a file, a hub id) whose problems are dropped "
                                          "from training, with a count (curate's rule).")
    text_tags: bool = Field(default=False, description="The model writes the tags as plain text (like the paper's released "
                                                       "models); needed only for a model without train.json.")
    instruction: str | None = Field(default=None, description="Offload instruction ending the user turn (default: the one "
                                                              "train.json records).")
    # GRPO
    epochs: float = Field(default=1.0, gt=0, description="Passes over the problems (ignored with --steps).")
    steps: int | None = Field(default=None, ge=1, description="Optimizer steps to train (default: --epochs passes).")
    learning_rate: float = Field(default=1e-6, gt=0, description="Peak learning rate.")
    lr_scheduler: str = Field(default="constant_with_warmup", description="Learning-rate schedule (transformers' names).")
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1, description="Share of the steps spent warming up.")
    batch_size: int = Field(default=8, ge=1, description="Completions per device per micro-step (a multiple of "
                                                         "--num-generations with --grad-accum 1).")
    grad_accum: int = Field(default=1, ge=1, description="Micro-steps accumulated per optimizer step.")
    num_generations: int = Field(default=8, ge=2, description="Completions per problem (the group GRPO compares).")
    seed: int = Field(default=42, description="Seed of the shuffling, the initialisation (LoRA) and the rollouts' sampling.")
    kl_beta: float = Field(default=0.04, ge=0, description="Weight of the KL penalty to the starting model (0: no reference model).")
    max_completion_length: int = Field(default=4096, ge=4, description="Most tokens per completion (the tags, the end of turn and, with --true-offload, the large model's tokens included).")
    temperature: float = Field(default=0.7, gt=0, description="Sampling temperature of the rollouts.")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling of the rollouts.")
    # rewards
    reward_weights: str = Field(default="correctness=1,format=0.5,offload=0.5,latency=0.5",
                                description="Weight of each reward: correctness, format, offload, latency (0 turns one off).")
    target_offload: float = Field(default=0.05, ge=0, le=1, description="Share of completion tokens inside tags the offload reward peaks at.")
    offload_tolerance: float = Field(default=0.05, gt=0, le=1, description="Width of the offload reward's peak (share of tokens).")
    latency_profile: str = Field(default="a6000-paper", description="Rates profile of the latency reward (a shipped name or a TOML file).")
    latency_schedule: Literal["pipelined", "sequential"] = Field(
        default="pipelined", description="Latency model: pipelined (the paper's) or sequential (handoff costs paid).")
    # true offload
    true_offload: bool = Field(default=False, description="Rollouts through the handoff runtime: the large model writes the "
                                                          "tagged segments (needs --large).")
    large: str | None = Field(default=None, description="The large model for --true-offload: a local directory, a hub id, "
                                                        "or an OpenAI-compatible URL.")
    large_tokenizer: str | None = Field(default=None, description="--large URL: the served model's tokenizer (a directory "
                                                                  "or hub id; default: the model the server lists).")
    chunk_tokens: int = Field(default=64, ge=1, description="--true-offload: tokens the large model writes per chunk before "
                                                            "the small model's close check.")
    max_segment_tokens: int = Field(default=512, ge=1, description="--true-offload: a large segment is closed (forced) after this many tokens.")
    # generation and bookkeeping
    generation: Literal["auto", "transformers", "vllm-colocate", "vllm-server"] = operational(
        "auto", description="Rollout generation: vLLM in this process (colocate) or a `trl vllm-serve` server where "
                            "installed (untested here), transformers otherwise (auto: vllm-colocate on a GPU with vLLM).")
    vllm_server_url: str = operational("http://127.0.0.1:8000", description="--generation vllm-server: the server's URL.")
    logging_steps: int = operational(1, ge=1, description="Log rewards, loss and rates every this many steps (OUT/log.jsonl).")
    save_steps: int = operational(50, ge=1, description="Save a checkpoint every this many steps (for --resume).")
    rollouts_per_step: int = operational(4, ge=0, description="Rollouts written to OUT/rollouts.jsonl per step.")
    grade_timeout: float = operational(10.0, gt=0, description="Seconds to grade one answer (math-verify, in worker processes).")

    @field_validator("reward_weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        weights = parse_reward_weights(value)
        return ",".join(f"{name}={weight:g}" for name, weight in weights.items())

    @model_validator(mode="after")
    def _consistent(self):
        if (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(f"--batch-size x --grad-accum ({self.batch_size} x {self.grad_accum}) must be a multiple of "
                             f"--num-generations ({self.num_generations}): each problem's group is scored together")
        if self.true_offload and not self.large:
            raise ValueError("--true-offload needs --large MODEL|URL (the model that writes the offloaded steps)")
        if self.large_tokenizer and not (self.large or "").startswith(("http://", "https://")):
            raise ValueError("--large-tokenizer is for --large URL (a model directory brings its own tokenizer)")
        if self.large and not self.true_offload:
            raise ValueError("--large is used only with --true-offload (without it the small model writes everything)")
        return self

    @property
    def problems_path(self) -> Path | None:
        path = Path(self.problems).expanduser()
        return path if path.exists() else None


def parse_reward_weights(spec: str) -> dict[str, float]:
    """`correctness=1,format=0.5` -> weights for all four rewards (unnamed ones keep their default;
    a weight of 0 turns a reward off). Raises ValueError with one line on a bad spec."""
    weights = dict(DEFAULT_WEIGHTS)
    for part in (piece.strip() for piece in spec.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in REWARD_NAMES:
            raise ValueError(f"reward weights are NAME=NUMBER with NAME one of {', '.join(REWARD_NAMES)}; got {part!r}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"reward weight {name}={value!r} is not a number") from None
        if not math.isfinite(weights[name]):
            raise ValueError(f"reward weight {name} must be finite")
    if not any(weights.values()):
        raise ValueError("every reward weight is 0: nothing to learn from")
    return weights

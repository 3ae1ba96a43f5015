"""`splitreason train sft`: its settings, and `train.json`, the record a trained model carries.

`train.json` sits beside the weights in OUT. Other commands read it without importing the
trainer: `evaluate offload` and GRPO prompt the model the way it was trained,

    record = TrainRecord.read(model_dir)          # None for a model splitreason did not train
    if record is not None:
        text = record.prompt.render(tokenizer, problem)   # chat template + offload instruction
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from splitreason.schemas.export import user_content
from splitreason.schemas.settings import CommandSettings, SettingsError, operational
from splitreason.schemas.tag_eval import TagMetrics

__all__ = ["LR_SCHEDULERS", "RowCounts", "SFTSettings", "TrainRecord", "TrainSettings", "TrainedPrompt", "TRAIN_RECORD"]

TRAIN_RECORD = "train.json"

# transformers' SchedulerType values, listed here so settings validate without importing it.
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay")


# transformers' attention implementations (ALL_ATTENTION_FUNCTIONS and eager), listed here so settings
# validate without importing it; a kernel on the hub ("kernels-community/flash-attn") is also accepted.
ATTENTION_KERNELS = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flash_attention_4", "flex_attention",
                     "paged|eager")


class TrainSettings(CommandSettings):
    """What every trainer (`train sft`, `train grpo`) is set with: the model, OUT, the optimizer, LoRA,
    precision, checkpoints and logging. Each command's model adds its own fields and may change a
    default (GRPO learns at a far lower rate than SFT)."""

    model: str = Field(description="Base model: a hub id or a local directory.")
    out: Path = Field(description="Output directory: the trained model, train.json, log.jsonl, checkpoints.")
    epochs: float = Field(default=3.0, gt=0, description="Passes over the training rows.")
    learning_rate: float = Field(default=5e-5, gt=0, description="Peak learning rate.")
    lr_scheduler: str = Field(default="cosine_with_min_lr", description=f"Schedule: {', '.join(LR_SCHEDULERS)}.")
    min_lr_rate: float = Field(default=0.1, ge=0, le=1, description="cosine_with_min_lr: the final rate as a share of the peak.")
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1, description="Share of the steps spent warming up.")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(default=1.0, gt=0, description="Gradient clipping norm.")
    batch_size: int = Field(default=1, ge=1, description="Rows per device per step.")
    grad_accum: int = Field(default=8, ge=1, description="Steps accumulated per optimizer update.")
    seed: int = Field(default=42, description="Seed of the split, the shuffling and the initialisation.")
    lora_r: int = Field(default=0, ge=0, description="LoRA rank (0: train all weights).")
    lora_alpha: int | None = Field(default=None, ge=1, description="LoRA alpha (default: 2 x rank).")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="LoRA dropout.")
    lora_targets: str = Field(default="all-linear", description="LoRA target modules: all-linear or comma-separated names (q_proj,v_proj).")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="auto: bf16 on a GPU that has it, fp32 on the CPU.")
    attn_implementation: str | None = operational(
        None, description="Attention kernel: sdpa, flash_attention_2, eager (default: transformers' choice; "
                          "flash_attention_2 for --packing on GPUs).")
    gradient_checkpointing: bool = operational(False, description="Recompute activations in the backward pass (less memory, slower).")
    deepspeed: Path | None = operational(None, description="DeepSpeed config file (JSON), passed to the trainer (run under accelerate launch).")
    report_to: str = operational("none", description="Where metrics also go: none, tensorboard, wandb (comma-separated).")
    logging_steps: int = operational(10, ge=1, description="Log loss and rates every this many steps (OUT/log.jsonl).")
    save_steps: int = operational(200, ge=1, description="Save a checkpoint every this many steps (for --resume).")
    save_total_limit: int = operational(2, ge=1, description="Checkpoints kept while training.")
    keep_checkpoints: bool = operational(False, description="Keep OUT/checkpoints after a finished run (removed by default).")
    progress: bool = operational(True, description="Show a progress bar on stderr.")
    resume: bool = operational(False, description="Continue the run in OUT from its last checkpoint.")
    overwrite: bool = operational(False, description="Replace the run in OUT.")

    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        if value not in LR_SCHEDULERS:
            raise ValueError(f"unknown schedule {value!r} (one of {', '.join(LR_SCHEDULERS)})")
        return value

    @field_validator("attn_implementation")
    @classmethod
    def _known_attention(cls, value: str | None) -> str | None:
        # A name transformers knows, or a kernel on the hub ("org/repo" or "org/repo:name").
        if value is None or value in ATTENTION_KERNELS or re.fullmatch(r"[\w.-]+/[\w.-]+(@[\w.-]+)?(:[\w.-]+)?", value):
            return value
        raise ValueError(f"unknown attention {value!r} (one of {', '.join(ATTENTION_KERNELS)}, or a hub kernel org/repo)")

    @field_validator("report_to")
    @classmethod
    def _known_reporters(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in ("none", "tensorboard", "wandb", "mlflow", "trackio", "all")]
        if unknown:
            raise ValueError(f"unknown report target {unknown[0]!r} (none, tensorboard, wandb, mlflow, trackio)")
        return ",".join(names) or "none"

    @property
    def lora_target_modules(self) -> str | list[str]:
        names = [name.strip() for name in self.lora_targets.split(",") if name.strip()]
        return "all-linear" if names in ([], ["all-linear"]) else names


class SFTSettings(TrainSettings):
    """Settings of `splitreason train sft` (defaults: the SplitReason recipe, tags as tokens)."""

    command = "train sft"

    data: list[Path] = Field(min_length=1, description="Export files (jsonl, messages or prompt-completion) or saved dataset directories.")
    tags: Literal["special", "text"] = Field(
        default="special", description="special: each tag one added token (kept when decoding); text: plain text, as in the paper.")
    chat_template: Path | None = Field(
        default=None, description="Jinja chat template file (default: the model's if it keeps the reasoning, else a bundled one).")
    instruction: str | None = Field(
        default=None, description="The offload instruction the user turns end with, recorded for evaluate offload and GRPO "
                                  "(default: found in the data).")
    max_length: int = Field(default=16384, ge=16, description="Longest row in tokens (prompt + reply); longer rows are dropped and counted.")
    truncate: bool = Field(default=False, description="Cut rows longer than --max-length instead of dropping them.")
    packing: bool = Field(default=False, description="Pack rows into --max-length blocks (TRL's best-fit packing; use with flash attention).")
    eval_fraction: float = Field(default=0.05, ge=0, lt=1, description="Share of rows held out for evaluation, by problem.")
    skip_bad_rows: bool = Field(default=False, description="Leave out rows whose tags are unbalanced, nested or empty "
                                                           "(counted, listed in OUT/rejects.jsonl) instead of refusing the data.")
    eval_batch_size: int = operational(8, ge=1, description="Rows per forward pass when evaluating.")


class TrainedPrompt(BaseModel):
    """The prompt the model was trained with: use it to prompt the model the same way."""

    model_config = ConfigDict(extra="forbid")

    chat_template: str = Field(description="The Jinja chat template (also saved with the tokenizer).")
    chat_template_source: str = Field(description="model, bundled:plain, bundled:r1_distill or file:PATH.")
    chat_template_reason: str = Field(default="", description="Why this template was chosen.")
    chat_template_sha256: str
    instruction: str | None = Field(description="The offload instruction ending every user turn (None: the data had none in common).")
    user_format: str = Field(default="{problem}\n\n{instruction}", description="How the user turn was written.")
    tags: Literal["special", "text"] = Field(description="How the tags were written: one added token each, or text.")
    open_ids: list[int] = Field(description="Token ids of <bigmodel> (one id when tags are special).")
    close_ids: list[int] = Field(description="Token ids of </bigmodel>.")

    def user_content(self, problem: str) -> str:
        """The user turn for `problem`, as in training."""
        return user_content(problem, self.instruction)

    def messages(self, problem: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.user_content(problem)}]

    def render(self, tokenizer, problem: str) -> str:
        """The prompt text for `problem`, ending where the model starts writing."""
        return tokenizer.apply_chat_template(self.messages(problem), chat_template=self.chat_template,
                                             tokenize=False, add_generation_prompt=True)


class RowCounts(BaseModel):
    """Where every input row went: train, eval, or left out with a reason (OUT/rejects.jsonl)."""

    model_config = ConfigDict(extra="forbid")

    read: int = Field(description="Rows in DATA.")
    refused: int = Field(default=0, description="Left out: tags unbalanced, nested or empty (--skip-bad-rows).")
    too_long: int = Field(default=0, description="Left out: longer than --max-length tokens.")
    truncated: int = Field(default=0, description="Cut to --max-length tokens (--truncate).")
    train: int = Field(default=0, description="Rows trained on.")
    eval: int = Field(default=0, description="Rows held out (their problems are not in train).")


class TrainRecord(BaseModel):
    """OUT/train.json: what was trained on, how, with what, and how well it places the tags."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = 1
    status: Literal["running", "done"]
    kind: Literal["sft", "grpo"] = Field(default="sft", description="Which trainer wrote OUT.")
    command: str = Field(description="The command line, as typed.")
    settings: dict[str, Any] = Field(description="Every setting (the effective config; a resume must match it).")
    data: list[dict[str, Any]] = Field(description="Each DATA path: path, sha256, rows, format.")
    rows: RowCounts
    tag_token_share: float | None = Field(default=None, description="Share of the training replies' tokens inside tags.")
    prompt: TrainedPrompt
    base_model: str
    model: dict[str, Any] = Field(default_factory=dict, description="Parameters, trainable parameters, LoRA, vocabulary before/after, dtype.")
    hardware: dict[str, Any] = Field(default_factory=dict, description="Device, processes, precision.")
    versions: dict[str, str | None] = Field(default_factory=dict, description="Python and library versions.")
    git_revision: str | None = Field(default=None, description="splitreason's git revision (+dirty), when run from a checkout.")
    losses: dict[str, Any] = Field(default_factory=dict, description="Final train and eval loss, and the loss per logging step.")
    tag_metrics: TagMetrics | None = Field(default=None, description="evaluate tags on the eval split.")
    grpo: dict[str, Any] | None = Field(default=None, description="train grpo: the starting policy, problem counts "
                                        "(read, contaminated, trained), reward weights, rewards over training.")
    steps: int | None = None
    tokens_seen: int | None = None
    seconds: float | None = Field(default=None, description="Wall time of training (this process, after any resume).")
    resumed_from: str | None = Field(default=None, description="The checkpoint a resumed run continued from.")
    started_at: str
    finished_at: str | None = None

    @classmethod
    def read(cls, model_dir: Path | str) -> TrainRecord | None:
        """The record in `model_dir`, None when there is none (a model not trained by splitreason)."""
        path = Path(model_dir) / TRAIN_RECORD
        if not path.is_file():
            return None
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError) as error:
            raise SettingsError(f"{path} is not a train.json splitreason can read: {' '.join(str(error).split())[:200]}") from None

"""Step 3 of `train grpo`: TRL's GRPOTrainer, configured from the settings, writing a sample of each
step's rollouts to OUT/rollouts.jsonl.

The rollout log is written where TRL has everything of a batch at once: after the rewards are
computed (`_calculate_rewards`), with the completion ids, the rewards of each function, and
whatever the rollout function passed along (with --true-offload: the segments each model wrote and
which tokens are in the loss).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from splitreason.schemas.grpo import GRPOSettings

__all__ = ["build_grpo_trainer", "grpo_config"]

ROLLOUTS = "rollouts.jsonl"


def use_vllm(settings: GRPOSettings) -> tuple[bool, str]:
    """(use vLLM, its mode) for --generation; auto picks vLLM in-process on a GPU where it is installed."""
    from importlib.util import find_spec

    import torch

    if settings.generation == "auto":
        return (torch.cuda.is_available() and find_spec("vllm") is not None and not settings.true_offload), "colocate"
    if settings.generation == "transformers":
        return False, "colocate"
    return True, settings.generation.removeprefix("vllm-")


def grpo_config(settings: GRPOSettings, *, checkpoints: Path, bf16: bool, weights: Sequence[float]):
    from trl import GRPOConfig

    from splitreason.train.trainer import common_args

    vllm, mode = use_vllm(settings)
    return GRPOConfig(
        **common_args(settings, checkpoints=checkpoints, bf16=bf16),
        max_steps=settings.steps or -1,
        num_generations=settings.num_generations,
        beta=settings.kl_beta,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        top_p=settings.top_p,
        reward_weights=list(weights),
        use_vllm=vllm,
        vllm_mode=mode,
        vllm_server_base_url=settings.vllm_server_url if mode == "server" else None,
        log_completions=False,
    )


def build_grpo_trainer(settings: GRPOSettings, model, tokenizer, dataset, *, rewards, checkpoints: Path, bf16: bool,
                       callbacks, rollout_log: Path, no_decay: Sequence[str] = (), rollout_func=None):
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOTrainer

    from splitreason.train.trainer import quiet_libraries

    quiet_libraries()
    config = grpo_config(settings, checkpoints=checkpoints, bf16=bf16, weights=rewards.active_weights())
    per_step = settings.rollouts_per_step

    class Trainer(GRPOTrainer):
        def get_decay_parameter_names(self, model) -> list[str]:
            return [name for name in super().get_decay_parameter_names(model) if name not in no_decay]

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards.last = []
            per_function = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            if per_step and self.is_world_process_zero():
                start = self.accelerator.process_index * len(prompts)
                local = per_function[start:start + len(prompts)].tolist()
                write_rollouts(rollout_log, self.state.global_step + 1, inputs, completions, completion_ids_list,
                               local, rewards, tokenizer, per_step)
            return per_function

    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental; we pin TRL's version
    trainer = Trainer(model=model, reward_funcs=rewards.functions(), args=config, train_dataset=dataset,
                      processing_class=tokenizer, callbacks=list(callbacks), rollout_func=rollout_func)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def write_rollouts(path: Path, step: int, inputs: list[dict], completions: list, completion_ids: list,
                   per_function: list[list[float]], rewards, tokenizer, limit: int) -> None:
    """Append `limit` rollouts of this step, spread over the batch's problems."""
    from splitreason.train.rewards import text_pieces

    names = rewards.active_names()
    weights = rewards.active_weights()
    chosen = _spread(len(completions), limit)
    with open(path, "a", encoding="utf-8") as handle:
        for index in chosen:
            example = inputs[index]
            text = completions[index] if isinstance(completions[index], str) else completions[index][-1]["content"]
            scored = rewards.last[index] if index < len(rewards.last) else None
            values = dict(zip(names, per_function[index]))
            segments = example.get("segments")
            if segments is None:  # the paper's setting: the small model wrote every token, all in the loss
                segments = [{"model": model, "written_by": "small", "text": piece,
                             "tokens": len(tokenizer(piece, add_special_tokens=False)["input_ids"]), "in_loss": True}
                            for model, piece in text_pieces(text)]
            mask = example.get("loss_mask")
            ids = list(completion_ids[index])
            entry: dict[str, Any] = {
                "step": step, "problem_id": example.get("problem_id"), "gold": example.get("answer"),
                "text": text, "segments": segments,
                "rewards": values, "reward": sum(w * values[n] for n, w in zip(names, weights)),
                "verdict": scored.verdict if scored else None,
                "offload_share": scored.offload_share if scored else None,
                "format_faults": scored.faults if scored else None,
                "speedup": scored.speedup if scored else None,
                "completion_tokens": len(ids),
                "tokens_in_loss": sum(mask) if mask is not None else len(ids),
                "loss_mask": _runs(mask if mask is not None else [1] * len(ids)),
            }
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _spread(n: int, limit: int) -> list[int]:
    if limit >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / max(1, limit - 1)) for i in range(limit)})


def _runs(mask: Sequence[int]) -> list[list[int]]:
    """[[value, count], ...]: which completion tokens were in the loss, run-length encoded."""
    runs: list[list[int]] = []
    for value in mask:
        value = int(value)
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    return runs

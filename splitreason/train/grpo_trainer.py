"""Step 3 of `train grpo`: TRL's GRPOTrainer, configured from the settings, writing a sample of each
step's rollouts to OUT/rollouts.jsonl.

The rollout log is written once TRL has built a batch (`_generate_and_score_completions`): the
completion ids, the rewards of each function (kept from `_calculate_rewards`), whatever the rollout
function passed along (with --true-offload: the segments each model wrote), and which tokens are in
the loss read from the very masks TRL's loss multiplies by (`completion_mask` times `tool_mask`,
where TRL put the rollout function's `env_mask`), so the log cannot say a token was kept out of the
loss that TRL trained on.
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
                self._rollouts_to_log = (completions, completion_ids_list, local)
            return per_function

        def _generate_and_score_completions(self, inputs):
            self._rollouts_to_log = None
            output = super()._generate_and_score_completions(inputs)
            if self._rollouts_to_log is not None:
                completions, completion_ids_list, local = self._rollouts_to_log
                self._rollouts_to_log = None
                write_rollouts(rollout_log, self.state.global_step + 1, inputs, completions, completion_ids_list,
                               local, rewards, tokenizer, per_step, loss_masks=trained_masks(output))
            return output

    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental; we pin TRL's version
    trainer = Trainer(model=model, reward_funcs=rewards.functions(), args=config, train_dataset=dataset,
                      processing_class=tokenizer, callbacks=list(callbacks), rollout_func=rollout_func)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def trained_masks(output: dict) -> list[list[int]]:
    """Per completion of the batch TRL built, the mask its loss (and the KL inside it) is multiplied
    by: `completion_mask`, times `tool_mask` where TRL has one (the rollout function's `env_mask`),
    as TRL's `compute_loss` does; padded, so the caller cuts each row to its completion's length."""
    mask = output["completion_mask"]
    if output.get("tool_mask") is not None:
        mask = mask * output["tool_mask"]
    return [[int(value) for value in row] for row in mask.tolist()]


def write_rollouts(path: Path, step: int, inputs: list[dict], completions: list, completion_ids: list,
                   per_function: list[list[float]], rewards, tokenizer, limit: int, *,
                   loss_masks: list[list[int]]) -> None:
    """Append `limit` rollouts of this step, spread over the batch's problems; `loss_masks` are the
    masks TRL trains with (`trained_masks`), one padded row per completion."""
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
            ids = list(completion_ids[index])
            mask = loss_masks[index][:len(ids)]
            segments = [dict(segment) for segment in example.get("segments") or ()]
            for segment in segments:  # with --true-offload: where each segment lies among the completion ids
                start = segment.pop("start")
                segment["tokens_in_loss"] = sum(mask[start:start + segment["tokens"]])
                segment["in_loss"] = segment["tokens_in_loss"] == segment["tokens"] > 0
            if not segments:  # the paper's setting: the small model wrote every token (pieces re-tokenized)
                segments = [{"model": model, "written_by": "small", "text": piece,
                             "tokens": len(tokenizer(piece, add_special_tokens=False)["input_ids"]),
                             "in_loss": all(mask)} for model, piece in text_pieces(text)]
            entry: dict[str, Any] = {
                "step": step, "problem_id": example.get("problem_id"), "gold": example.get("answer"),
                "text": text, "segments": segments,
                "rewards": values, "reward": sum(w * values[n] for n, w in zip(names, weights)),
                "verdict": scored.verdict if scored else None,
                "offload_share": scored.offload_share if scored else None,
                "format_faults": scored.faults if scored else None,
                "speedup": scored.speedup if scored else None,
                "completion_tokens": len(ids),
                "tokens_in_loss": sum(mask),
                "loss_mask": _runs(mask),
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

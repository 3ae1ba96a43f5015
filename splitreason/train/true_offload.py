"""`train grpo --true-offload --large MODEL|URL`: rollouts through the offload evaluator's handoff runtime.

The large model runs in this process (transformers) or behind an OpenAI-compatible vLLM server
(the evaluator's `openai` backend); the policy always runs here, with this step's weights.

TRL calls `TrueOffloadRollouts(prompts, trainer)` (its experimental `rollout_func`) instead of
generating. For each prompt the small model is the policy as it is at this step (the live model
object, not a copy loaded at the start); when it writes `<bigmodel>` the large model writes the
segment in chunks and the policy's one-pass close check ends it (`evaluate.handoff.run_trace`).

What goes back to TRL per rollout:
    completion_ids   the policy's context after the prompt: its own tokens, the tags, the large
                     model's tokens (kept in the context: the policy conditions on them), its end of turn
    env_mask         1 where the policy sampled the token, 0 for the large model's tokens and for
                     every `</bigmodel>` that ends a large segment (the close check's or a forced
                     one: the runtime inserted it, the policy never sampled it). TRL multiplies its loss mask by it, and the KL
                     term is inside that loss, so neither the loss nor the KL sees those tokens.
    segments         what each model wrote, for the rewards (offload share and latency from the
                     real segments) and OUT/rollouts.jsonl

OUT/rollouts.jsonl's `loss_mask` is not a copy of `env_mask`: it is read from the masks TRL built
(train/grpo_trainer.py `trained_masks`), so it shows what was really trained on.

The runtime's own `completion_mask` counts a close found by the close check as the small model's
choice (1); GRPO sets every close that ends a segment to 0, as the issue asks: the close is the runtime's decision, a
function of the policy's next-token distribution read in one pass, not a sampled token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from splitreason.errors import ServiceUnavailable, UsageError
from splitreason.schemas.grpo import GRPOSettings

__all__ = ["LargeUnavailable", "TrueOffloadRollouts", "check_large", "check_large_tokenizer", "load_large"]


class LargeUnavailable(ServiceUnavailable):
    """--large names a server that does not answer."""


def _is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def check_large(spec: str, *, timeout_s: float = 5.0) -> None:
    """One line, before any work, when --large cannot be used: a URL that does not answer, or a
    local path that is not a model."""
    from pathlib import Path

    from splitreason.io.redaction import redact

    if _is_url(spec):
        url = spec.rstrip("/") + "/models"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s):  # noqa: S310 - the user's own server
                pass
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise LargeUnavailable(f"--large {redact(spec)} does not answer ({' '.join(str(reason).split())[:120]}); "
                                   "start the server (python -m vllm.entrypoints.openai.api_server --model ...) "
                                   "or give a model directory") from None
        return
    path = Path(spec).expanduser()
    if path.exists() and not (path / "config.json").is_file():
        raise UsageError(f"--large {spec} is not a model directory (no config.json)")


def check_large_tokenizer(settings: GRPOSettings, policy_tokenizer):
    """The large model's tokenizer, loaded and checked against the policy's vocabulary (the runtime
    passes token ids between them): a missing path, a hub id that cannot be reached, or another
    vocabulary is one line. `train grpo` calls it before OUT is created, so a bad --large leaves
    nothing behind; the tokenizer is then handed to `load_large`."""
    from splitreason.evaluate.handoff import check_shared_vocabulary
    from splitreason.models.tokenizer import load_tokenizer

    spec = settings.large or ""
    if _is_url(spec):
        name = settings.large_tokenizer
        if name is None:  # the model the server was started with: a path on this machine or a hub id
            from splitreason.io.redaction import redact

            try:
                with urllib.request.urlopen(spec.rstrip("/") + "/models", timeout=30) as answer:  # noqa: S310
                    listed = json.loads(answer.read().decode("utf-8"))
                name = listed["data"][0].get("root") or listed["data"][0]["id"]
            except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
                raise LargeUnavailable(f"--large {redact(spec)} lists no model; name its tokenizer with "
                                       "--large-tokenizer") from None
        tokenizer = load_tokenizer(name, what="large model's tokenizer (--large-tokenizer)")
    else:
        tokenizer = load_tokenizer(spec, what="large model's tokenizer (--large)")
    check_shared_vocabulary(policy_tokenizer, tokenizer, small_name="policy", large_name=f"large model {spec}")
    return tokenizer


def load_large(settings: GRPOSettings, tokenizer):
    """The large model's runner with its checked tokenizer (`check_large_tokenizer`): in this process
    (transformers) for a directory or hub id, or an OpenAI-compatible vLLM server for a URL
    (issue12's backend: `/v1/completions` with token ids)."""
    from splitreason.evaluate.handoff import HFRunner

    spec = settings.large or ""
    if not _is_url(spec):
        from splitreason.models.loading import load_causal_lm

        return HFRunner(load_causal_lm(spec, device="auto", dtype="auto", what="large model"), tokenizer)
    from splitreason.evaluate.handoff.openai_server import OpenAIServerRunner

    return OpenAIServerRunner(spec, tokenizer, what="large model")


@dataclass
class TrueOffloadRollouts:
    settings: GRPOSettings
    tokenizer: Any
    large: Any  # handoff.HFRunner
    large_prompt: Any  # evaluate.offload.prompts.PromptBuilder
    tags: Any  # handoff.TagIds
    problems_by_user_turn: dict[str, str]
    handoff: Any  # handoff.HandoffSettings
    calls: int = 0

    @classmethod
    def create(cls, settings: GRPOSettings, tokenizer, problems_by_user_turn: dict[str, str], *, large_tokenizer):
        """`large_tokenizer`: from `check_large_tokenizer`, which checked it against `tokenizer`."""
        from splitreason.evaluate.handoff import HandoffSettings, Sampling, tag_ids_of
        from splitreason.evaluate.offload.prompts import PromptBuilder

        large = load_large(settings, large_tokenizer)
        # count_tags: --max-completion-length caps the whole completion TRL trains on (tags and the end
        # of turn included), not only the segments' tokens as `evaluate offload --max-tokens` does
        handoff = HandoffSettings(chunk_tokens=settings.chunk_tokens, max_segment_tokens=settings.max_segment_tokens,
                                  max_tokens=settings.max_completion_length, count_tags=True,
                                  sampling=Sampling(temperature=settings.temperature, top_p=settings.top_p))
        # the large model reads the problem alone under its own template, as in `evaluate offload`
        return cls(settings, tokenizer, large, PromptBuilder.for_large(large.tokenizer), tag_ids_of(tokenizer),
                   problems_by_user_turn, handoff)

    def __call__(self, prompts: list[list[dict]], trainer) -> dict[str, list]:
        import torch

        from splitreason.evaluate.handoff import HFRunner

        policy = trainer.accelerator.unwrap_model(trainer.model)  # the live weights of this step
        small = HFRunner(policy, self.tokenizer)
        was_training = policy.training
        policy.eval()
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": None, "env_mask": [],
                                "segments": []}
        try:
            with torch.no_grad():
                for index, messages in enumerate(prompts):
                    seed = hash((self.settings.seed, trainer.state.global_step, self.calls, index)) % (2**31)
                    prompt_ids, ids, mask, segments = self.rollout(small, messages, seed)
                    out["prompt_ids"].append(prompt_ids)
                    out["completion_ids"].append(ids)
                    out["env_mask"].append(mask)
                    out["segments"].append(segments)
        finally:
            self.calls += 1
            if was_training:
                policy.train()
        return out

    def rollout(self, small, messages: list[dict], seed: int) -> tuple[list[int], list[int], list[int], list[dict]]:
        """One prompt through the handoff runtime with `small` (an HFRunner on the policy):
        (prompt ids, completion ids, env_mask, segments)."""
        from splitreason.evaluate.handoff import run_trace

        # rendered and tokenized as TRL does for the policy's own generation
        prompt_ids = list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                             return_dict=True)["input_ids"])
        problem = self.problems_by_user_turn[messages[-1]["content"]]
        result = run_trace(small, self.large, small_prompt_ids=prompt_ids, large_prompt_ids=self.large_prompt.ids(problem),
                           tags=self.tags, settings=self.handoff, mode="learned", seed=seed)
        ids, mask = list(result.completion_ids), [int(m) for m in result.completion_mask]
        mask = _closes_out_of_loss(ids, mask, self.tags.close_ids)
        end = end_of_turn(result, self.tokenizer.eos_token_id)
        if end is not None:
            ids.append(end)  # the end of turn: the policy's choice unless the large model ended
            mask.append(0 if result.ended_in_segment else 1)
        starts = _segment_starts(ids, result.segments)
        return prompt_ids, ids, mask, [_segment(s, start) for s, start in zip(result.segments, starts)]


def end_of_turn(result, fallback: int | None) -> int | None:
    """The end of turn to put after a trace that a model ended: the id that model sampled (a model
    whose generation config lists several may have ended with any of them; training on another
    would teach a token it never chose). `fallback` (the tokenizer's) only when the backend did not
    say which, which only a large model behind a server can leave unsaid, and its end of turn is
    out of the loss. None when the trace ran out of tokens instead."""
    if result.finish != "eos":
        return None
    return result.eos_id if result.eos_id is not None else fallback


def _closes_out_of_loss(ids: list[int], mask: list[int], close_ids: tuple[int, ...]) -> list[int]:
    """Every `</bigmodel>` the runtime inserted (one token, or its text tokens in a row, right after
    a large-model token: a large segment holds at least one) at mask 0. A close the policy sampled
    itself, outside a segment, stays in the loss: it is a choice, and the format reward punishes it."""
    given = list(mask)
    width = len(close_ids)
    for at in range(1, len(ids) - width + 1):
        if tuple(ids[at:at + width]) == tuple(close_ids) and given[at - 1] == 0:
            for position in range(at, at + width):
                mask[position] = 0
    return mask


def _segment_starts(ids: list[int], segments) -> list[int]:
    """Where each segment's tokens begin among the completion ids (the segments are in order, tags
    between them), so the rollout log can read each segment's share of the loss from TRL's mask."""
    starts, at = [], 0
    for segment in segments:
        width = len(segment.token_ids)
        while width and at + width <= len(ids) and ids[at:at + width] != list(segment.token_ids):
            at += 1
        starts.append(at)
        at += width
    return starts


def _segment(segment, start: int) -> dict[str, Any]:
    """What each model wrote; `start` is consumed by the rollout log, which adds `in_loss` from TRL's mask."""
    return {"model": segment.model, "written_by": segment.model, "text": segment.text,
            "tokens": len(segment.token_ids), "forced": bool(segment.forced), "start": start}

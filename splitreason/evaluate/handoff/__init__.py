"""The handoff runtime: a small model that hands its hard steps to a large one, token by token.

Public API (used by `evaluate offload` and by GRPO's rollouts; keep it stable):

    from splitreason.evaluate.handoff import HFRunner, HandoffSettings, TagIds, run_trace

    small = HFRunner(policy_model, tokenizer)          # live model objects, or HFRunner.load(path)
    large = HFRunner.load("path/to/large")
    check_shared_vocabulary(small.tokenizer, large.tokenizer)   # one line when ids differ
    result = run_trace(small, large, small_prompt_ids=ids, large_prompt_ids=large_ids,
                       tags=tag_ids_of(small.tokenizer), settings=HandoffSettings(chunk_tokens=64),
                       mode="learned", seed=0)
    result.text                  # the answer, large segments wrapped in <bigmodel> … </bigmodel>
    result.segments              # [TraceSegment(model="small"|"large", token_ids, text, forced)]
    result.completion_ids        # the small model's side of the answer (tags included)
    result.completion_mask       # 1 where the small model chose the token: GRPO's env_mask
    result.forward_passes        # {"small": n, "large": m}

The rule itself is in `rule.py`, the backend protocol in `backend.py`, the transformers backend
(past key values kept per model, fed only new tokens, cropped when a chunk's rest is dropped) in
`hf.py`.
"""

from __future__ import annotations

from splitreason.errors import UsageError
from splitreason.evaluate.handoff.backend import Generation, ModelRunner, ModelSession, PositionView
from splitreason.evaluate.handoff.hf import HFRunner
from splitreason.evaluate.handoff.rule import RandomPlan, find_close, run_trace
from splitreason.evaluate.handoff.types import (MODES, HandoffSettings, Mode, Sampling, TagIds, TraceResult,
                                                TraceSegment)

__all__ = ["MODES", "Generation", "HFRunner", "HandoffSettings", "Mode", "ModelRunner", "ModelSession",
           "PositionView", "RandomPlan", "Sampling", "TagIds", "TraceResult", "TraceSegment",
           "VocabularyMismatch", "check_shared_vocabulary", "find_close", "run_trace", "tag_ids_of"]


class VocabularyMismatch(UsageError):
    """The small and the large model do not give the same ids to the same tokens."""


def tag_ids_of(tokenizer) -> TagIds:
    """The tag ids of a tokenizer: one each after `train sft`, several when the tags are text."""
    from splitreason.models.tags import tag_tokens

    return tag_tokens(tokenizer)


def check_shared_vocabulary(small_tokenizer, large_tokenizer, *, small_name: str = "small model",
                            large_name: str = "large model", large_rows: int | None = None) -> None:
    """The runtime passes token ids from one model to the other, both ways: every token the large
    model knows must have the same id in the small model's vocabulary, and every token the small
    model can write (all of its vocabulary but the tags, which the large model never sees) must be
    one the large model knows, under the same id, and below `large_rows` (the large model's
    embedding rows, when known: a tokenizer may list more ids than the model has rows). Otherwise
    one `VocabularyMismatch` line."""
    small_vocab = small_tokenizer.get_vocab()
    large_vocab = large_tokenizer.get_vocab()
    differing = [token for token, index in large_vocab.items() if small_vocab.get(token) != index]
    if differing:
        example = sorted(differing, key=lambda token: large_vocab[token])[0]
        raise VocabularyMismatch(
            f"the {small_name} and the {large_name} do not share a vocabulary ({len(differing)} of the large "
            f"model's {len(large_vocab)} tokens differ, e.g. {example!r}: id {large_vocab[example]} against "
            f"{small_vocab.get(example)}); offloading passes token ids, so both need the same tokenizer")
    tags = tag_ids_of(small_tokenizer)
    tag_ids = tags.all_ids if tags.single else set()  # text tags are ordinary tokens both models know
    extra = sorted(index for token, index in small_vocab.items() if index not in tag_ids and token not in large_vocab)
    if extra:
        token = small_tokenizer.convert_ids_to_tokens(extra[0])
        raise VocabularyMismatch(
            f"the {small_name} knows {len(extra)} tokens the {large_name} does not (beyond the offload tags), "
            f"e.g. {token!r} (id {extra[0]}): a segment the small model writes would reach the large model with ids "
            "it cannot read; offloading passes token ids, so both need the same tokenizer")
    if large_rows is not None:
        unreadable = sorted(index for index in small_vocab.values() if index not in tag_ids and index >= large_rows)
        if unreadable:
            raise VocabularyMismatch(
                f"the {large_name} has {large_rows} embedding rows but the {small_name}'s tokenizer can write "
                f"{len(unreadable)} ids at or above that (e.g. {unreadable[0]}), which the large model cannot "
                "read; offloading passes token ids, so both need the same tokenizer and embedding size")

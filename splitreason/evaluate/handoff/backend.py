"""What the handoff rule needs of a model, whatever runs it (transformers, vLLM, a server).

A runner is one loaded model; a session is that model's view of one trace, with whatever cache
makes continuing it cheap. The rule hands a session the *whole* context each time (ids, prompt
included); the session feeds the model only what its cache lacks and drops (crops) cached tokens
that are no longer in the context (the rest of a chunk after a close). Every model call the
session makes is one forward pass, counted in `forward_passes`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from splitreason.evaluate.handoff.types import Sampling

__all__ = ["Generation", "ModelRunner", "ModelSession", "PositionView"]


@dataclass(frozen=True)
class Generation:
    """What a model wrote: `ids` (a stop sequence it ended with included, the end of turn not),
    and why it stopped: `eos` (end of turn), `stop` (a stop sequence), `length` (max_new_tokens).
    The end of turn takes one of the `max_new_tokens`; `eos_id` is the one the model wrote (a model
    may have several), None when the backend does not say."""

    ids: list[int]
    reason: Literal["eos", "stop", "length"]
    eos_id: int | None = None


@dataclass(frozen=True)
class PositionView:
    """The model's next-token prediction at one position: its greedy choice and the probability
    of each watched id."""

    greedy_id: int
    probs: dict[int, float] = field(default_factory=dict)


class ModelSession(Protocol):
    forward_passes: int

    def generate(self, context: Sequence[int], *, max_new_tokens: int, sampling: Sampling,
                 stop_sequences: Sequence[Sequence[int]] = (), banned_ids: Collection[int] = ()) -> Generation:
        """Continue `context` (prompt included) by up to `max_new_tokens` tokens, one forward pass
        each (the first also reads what the cache lacks). `banned_ids` are never chosen."""
        ...

    def next_token_views(self, context: Sequence[int], start: int, watch: Collection[int]) -> list[PositionView]:
        """In ONE forward pass: the prediction after each of `context[start:]` (the view at index i
        predicts the token that would follow `context[: start + i + 1]`)."""
        ...

    def close(self) -> None:
        """Free the session's cache."""
        ...


class ModelRunner(Protocol):
    #: the ids that end a turn
    eos_ids: frozenset[int]
    #: rows of the output layer (ids at or past it can never be written)
    vocab_size: int

    def session(self, seed: int) -> ModelSession:
        """A fresh view of one trace; `seed` makes its sampling reproducible."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        ...

"""The records of the handoff runtime: its settings, the tag ids it watches, and one trace's result.

These types are the runtime's public API (the offload evaluator and GRPO's rollouts both use them):
keep them stable. No torch here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from splitreason.models.tags import TagTokens as TagIds  # the small model's tag ids: one each, or several (text)

__all__ = ["HandoffSettings", "Mode", "Sampling", "TagIds", "TraceResult", "TraceSegment"]

Mode = Literal["learned", "small", "large", "random"]
MODES: tuple[Mode, ...] = ("learned", "small", "large", "random")


@dataclass(frozen=True)
class Sampling:
    """How each model picks its next token: greedy when `temperature` is 0."""

    temperature: float = 0.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


@dataclass(frozen=True)
class HandoffSettings:
    """The handoff rule's knobs.

    chunk_tokens        the large model writes this many tokens before the small model checks for a close
    max_segment_tokens  a large segment this long is closed whatever the small model says (a forced close)
    max_tokens          cap on the answer's tokens (both models' segments; tags not counted unless count_tags)
    count_tags          False (`evaluate offload`): max_tokens counts the segments' tokens only. True (GRPO's
                        rollouts, whose completions TRL caps): the tags count too, and room for one close tag is
                        kept back, so the small model's completion ids with the end of turn that ended them
                        (which takes one of a generation's tokens) never pass max_tokens
    close_threshold     None: the segment closes where the small model's greedy next token is the close
                        tag; a number: where the close tag's probability is at least this
    """

    chunk_tokens: int = 64
    max_segment_tokens: int = 512
    max_tokens: int = 4096
    close_threshold: float | None = None
    sampling: Sampling = field(default_factory=Sampling)
    count_tags: bool = False

    def __post_init__(self) -> None:
        for name in ("chunk_tokens", "max_segment_tokens", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.close_threshold is not None and not 0 < self.close_threshold <= 1:
            raise ValueError("close_threshold must be in (0, 1]")


@dataclass
class TraceSegment:
    """A run of the answer written by one model. `token_ids` are as that model wrote them, tags
    excluded (the tags are the boundaries between segments, part of no segment). `forced`: for a
    large segment, whether its close was forced (--max-segment-tokens, or the trace ending inside it)
    rather than found by the small model's close check (mode random: a segment ending at its planned
    length is not forced); None for small segments."""

    model: Literal["small", "large"]
    token_ids: list[int]
    text: str = ""
    forced: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TraceResult:
    """One answer written by the pair.

    text                 the answer with tags (a large segment is wrapped in <bigmodel> ... </bigmodel>;
                         a trace that ends inside a segment is closed once)
    segments             the answer, segment by segment, in order
    completion_ids       the small model's side of the answer: its context after the prompt (its own
                         tokens, both tags, the large model's kept tokens), without the end of turn
    completion_mask      1 per completion id the small model chose (its tokens, the open tags it wrote,
                         the close tags its close check found), 0 for the large model's tokens and for
                         tags the runtime inserted (forced closes, random mode): GRPO's `env_mask`
    finish               "eos" (a model ended the answer), "max_tokens" (the cap was reached)
    eos_id               with finish "eos": the end-of-turn id the model that ended wrote (a model may have
                         several); None when its backend did not say
    ended_in_segment     the trace ended while the large model was writing
    handoffs             large segments
    forced_closes        large segments closed by force
    close_checks         close checks run (one small-model forward pass each)
    confirm_passes       second passes that confirmed a text close tag's remaining tokens
    forward_passes       forward passes by model ({"small": n, "large": m}), prefill included
    wall_s               seconds by phase: small (its generation), large (its generation), close_check
    """

    text: str
    segments: list[TraceSegment]
    completion_ids: list[int]
    completion_mask: list[int]
    finish: Literal["eos", "max_tokens"]
    eos_id: int | None = None
    ended_in_segment: bool = False
    handoffs: int = 0
    forced_closes: int = 0
    close_checks: int = 0
    confirm_passes: int = 0
    forward_passes: dict[str, int] = field(default_factory=lambda: {"small": 0, "large": 0})
    wall_s: dict[str, float] = field(default_factory=lambda: {"small": 0.0, "large": 0.0, "close_check": 0.0})

    def tokens_by_model(self) -> dict[str, int]:
        counts = {"small": 0, "large": 0}
        for segment in self.segments:
            counts[segment.model] += len(segment.token_ids)
        return counts

    @property
    def offload_share(self) -> float:
        counts = self.tokens_by_model()
        total = counts["small"] + counts["large"]
        return counts["large"] / total if total else 0.0

    def large_segment_lengths(self) -> list[int]:
        return [len(segment.token_ids) for segment in self.segments if segment.model == "large"]

"""Projected end-to-end latency of a small/large pair writing one answer together.

    from splitreason.evaluate.latency import Rates, Segment, project_latency
    rates = Rates(small_prefill=28_868, small_decode=141, large_prefill=2_595, large_decode=16)
    projection = project_latency([Segment("small", 900), Segment("large", 60), Segment("small", 700)],
                                 rates, small_prompt_tokens=300)
    projection.pair_s, projection.large_alone_s, projection.speedup

An answer is a list of segments, each written by one model. Rates are tokens per second: prefill
(reading text in one forward pass) and decode (writing, one token per step) of each model, at
batch size 1. Two schedules:

pipelined (the paper's model, its repository's simulation.py)
    Both models prefill the prompt in parallel. The answer is written in chunks; while one model
    writes a chunk the other reads (prefills) it, so a chunk costs the larger of its writer's
    decode time and the other model's prefill time. Both costs are proportional to the chunk's
    length, so chunk boundaries do not change the sum: each token costs
    max(1 / writer's decode rate, 1 / other's prefill rate).

sequential (what the paper leaves out)
    The same prompt prefill, then nothing overlaps, and each handoff pays what the runtime does:
    the `<bigmodel>` tag is one more small-model step; the large model must first read the small
    model's tokens it has not seen; it writes whole chunks of `chunk_tokens` and after each one
    the small model reads the chunk in one forward pass to find where the segment closes (the
    close check), so the rest of the last chunk is written and dropped. A forward pass over n
    tokens costs max(one decode step, n / prefill rate): reading a few tokens is memory-bound
    like a decode step, not as cheap as the prefill rate of a long prompt suggests.

Alone, a model prefills its prompt and decodes every token of the answer; the speed-up is the
large model alone over the pair, on the same answer length. GRPO's latency reward calls
`project_latency` per completion; `segments_from_token_ids` splits a tagged completion.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["DEFAULT_CHUNK_TOKENS", "Projection", "Rates", "SCHEDULES", "Segment", "project_latency",
           "segments_from_records", "segments_from_token_ids", "synthetic_segments"]

Model = Literal["small", "large"]
Schedule = Literal["pipelined", "sequential"]
SCHEDULES: tuple[Schedule, ...] = ("pipelined", "sequential")
DEFAULT_CHUNK_TOKENS = 64  # the offload runtime's chunk (its --chunk-tokens default)
_OTHER: dict[str, Model] = {"small": "large", "large": "small"}


@dataclass(frozen=True)
class Rates:
    """Tokens per second of each model at batch size 1."""

    small_prefill: float
    small_decode: float
    large_prefill: float
    large_decode: float
    source: str = ""  # where the figures come from, for the report

    def __post_init__(self) -> None:
        for name in ("small_prefill", "small_decode", "large_prefill", "large_decode"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name.replace('_', ' ')} rate must be a positive number of tokens/s, not {value!r}")

    def prefill(self, model: Model) -> float:
        return self.small_prefill if model == "small" else self.large_prefill

    def decode(self, model: Model) -> float:
        return self.small_decode if model == "small" else self.large_decode

    def forward_pass_s(self, model: Model, tokens: int) -> float:
        """One forward pass reading `tokens` new tokens: at least one decode step's time."""
        return max(1.0 / self.decode(model), tokens / self.prefill(model))


@dataclass(frozen=True)
class Segment:
    """Consecutive answer tokens written by one model (tags not counted)."""

    model: Model
    tokens: int
    forced: bool = False  # a large segment closed at the runtime's segment cap, not by the small model

    def __post_init__(self) -> None:
        if self.model not in ("small", "large"):
            raise ValueError(f"a segment's model is small or large, not {self.model!r}")
        if self.tokens < 0:
            raise ValueError("a segment cannot have a negative number of tokens")


@dataclass(frozen=True)
class Projection:
    schedule: Schedule
    pair_s: float  # the pair, prompt to last token
    prefill_s: float  # the prompt, both models in parallel
    decode_s: float  # writing the answer's tokens
    handoff_s: float  # sequential: tag steps, catching up, close checks, dropped chunk tails
    large_alone_s: float
    small_alone_s: float
    small_tokens: int
    large_tokens: int
    handoffs: int  # small -> large switches

    @property
    def speedup(self) -> float:
        """The large model alone over the pair (> 1: the pair is faster)."""
        return self.large_alone_s / self.pair_s if self.pair_s > 0 else math.inf

    @property
    def offload_share(self) -> float:
        total = self.small_tokens + self.large_tokens
        return self.large_tokens / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup, "offload_share": self.offload_share}


def project_latency(segments: Sequence[Segment], rates: Rates, *, small_prompt_tokens: int,
                    large_prompt_tokens: int | None = None, chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                    schedule: Schedule = "pipelined") -> Projection:
    """The projected time of one answer written as `segments` (see the module docstring).

    `large_prompt_tokens` defaults to `small_prompt_tokens` (each model reads the problem in its
    own chat template, so the two may differ); `chunk_tokens` matters only to `sequential`.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule is pipelined or sequential, not {schedule!r}")
    if chunk_tokens < 1:
        raise ValueError("chunk_tokens must be at least 1")
    large_prompt = small_prompt_tokens if large_prompt_tokens is None else large_prompt_tokens
    prefill_s = max(small_prompt_tokens / rates.small_prefill, large_prompt / rates.large_prefill)
    small = sum(segment.tokens for segment in segments if segment.model == "small")
    large = sum(segment.tokens for segment in segments if segment.model == "large")
    handoffs = sum(1 for before, after in zip(segments, segments[1:])
                   if before.model == "small" and after.model == "large" and after.tokens)
    if schedule == "pipelined":
        decode_s = sum(segment.tokens * max(1 / rates.decode(segment.model), 1 / rates.prefill(_OTHER[segment.model]))
                       for segment in segments)
        handoff_s = 0.0
    else:
        decode_s = sum(segment.tokens / rates.decode(segment.model) for segment in segments)
        handoff_s = _handoff_costs(segments, rates, chunk_tokens)
    return Projection(
        schedule=schedule, pair_s=prefill_s + decode_s + handoff_s, prefill_s=prefill_s, decode_s=decode_s,
        handoff_s=handoff_s, large_alone_s=large_prompt / rates.large_prefill + (small + large) / rates.large_decode,
        small_alone_s=small_prompt_tokens / rates.small_prefill + (small + large) / rates.small_decode,
        small_tokens=small, large_tokens=large, handoffs=handoffs,
    )


def _handoff_costs(segments: Sequence[Segment], rates: Rates, chunk_tokens: int) -> float:
    cost = 0.0
    unseen_by_large = 0  # small-model tokens the large model has not read yet
    for segment in segments:
        if segment.tokens == 0:
            continue
        if segment.model == "small":
            unseen_by_large += segment.tokens
            continue
        cost += 1 / rates.small_decode  # the small model writes <bigmodel>
        if unseen_by_large:
            cost += rates.forward_pass_s("large", unseen_by_large)
            unseen_by_large = 0
        chunks = math.ceil(segment.tokens / chunk_tokens)
        cost += (chunks * chunk_tokens - segment.tokens) / rates.large_decode  # the dropped rest of the last chunk
        cost += chunks * rates.forward_pass_s("small", chunk_tokens)  # one close check per chunk
    return cost


def synthetic_segments(decode_tokens: int, offload_share: float, *, segment_tokens: int,
                       round_to_chunks: int | None = None) -> list[Segment]:
    """An answer of `decode_tokens` of which `offload_share` is written by the large model, in
    segments of about `segment_tokens`, spread evenly (small text before, between and after).

    `round_to_chunks`: round the large model's tokens down to whole chunks of this size, as the
    paper's simulation does (its 1.35 % of 16,384 tokens is 221 tokens: no whole 256-token chunk,
    so nothing is offloaded).
    """
    if decode_tokens < 1 or not 0 <= offload_share <= 1 or segment_tokens < 1:
        raise ValueError("need decode_tokens >= 1, 0 <= offload_share <= 1 and segment_tokens >= 1")
    large = round(offload_share * decode_tokens)
    if round_to_chunks:
        large = min(large // round_to_chunks, decode_tokens // round_to_chunks) * round_to_chunks
    pieces = math.ceil(large / segment_tokens) if large else 0
    large_parts = _even_parts(large, pieces)
    small_parts = _even_parts(decode_tokens - large, pieces + 1)
    segments: list[Segment] = []
    for index, small_tokens in enumerate(small_parts):
        if small_tokens:
            segments.append(Segment("small", small_tokens))
        if index < pieces:
            segments.append(Segment("large", large_parts[index]))
    return segments


def _even_parts(total: int, parts: int) -> list[int]:
    if parts <= 0:
        return []
    base, extra = divmod(total, parts)
    return [base + (index < extra) for index in range(parts)]


def segments_from_records(records: Iterable[Mapping[str, Any]]) -> list[Segment]:
    """Segments as the offload evaluator writes them in OUT/samples.jsonl:
    {"model": "small"|"large", "token_ids": [...], "text": ..., "forced": bool}."""
    segments = []
    for record in records:
        token_ids = record.get("token_ids")
        if not isinstance(token_ids, list):
            raise ValueError("a segment has no token_ids list")
        segments.append(Segment(record.get("model"), len(token_ids), bool(record.get("forced", False))))  # type: ignore[arg-type]
    return segments


def segments_from_token_ids(token_ids: Sequence[int], *, open_id: int, close_id: int) -> list[Segment]:
    """Split a small model's tagged completion: what lies between `open_id` and `close_id` is the
    large model's (an unclosed open tag runs to the end); the tags themselves are not counted."""
    segments: list[Segment] = []
    model: Model = "small"
    count = 0
    for token in token_ids:
        if token in (open_id, close_id):
            wanted: Model = "large" if token == open_id else "small"
            if wanted != model:
                if count:
                    segments.append(Segment(model, count))
                model, count = wanted, 0
            continue
        count += 1
    if count:
        segments.append(Segment(model, count))
    return segments

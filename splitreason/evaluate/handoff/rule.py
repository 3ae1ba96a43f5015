"""The handoff rule, one loop for every backend.

learned (the small model decides)
    The small model writes until it emits `<bigmodel>` (or its end of turn, or the cap). The large
    model then continues the same answer: it sees its own prompt and every token of the answer so
    far with the tags removed, and writes a chunk of `chunk_tokens`. The small model reads the whole
    chunk in ONE forward pass (`close check`): the segment ends after the first chunk token after
    which the small model's next token would be `</bigmodel>` (greedy, or its probability at least
    `close_threshold`). The rest of the chunk is dropped (both caches are cropped back),
    `</bigmodel>` is appended to the small model's context and the small model goes on. No close in
    the chunk: the large model writes the next chunk. A segment of `max_segment_tokens` is closed
    by force. A segment holds at least one token: the position right after `<bigmodel>` is not a
    close candidate.
    Tags that are text (several tokens): the one pass screens on the close tag's first token; each
    candidate, in order, is confirmed by a second forward pass over the tag's remaining tokens
    (counted in `confirm_passes` and in the small model's forward passes).
small    the small model alone (tags that are one token each are never chosen)
large    the large model alone, on its own prompt
random   the small model alone, handing the large model segments of `random.segment_tokens` at
         random points, so that the large model writes about `random.share` of the tokens (the
         paper's baseline). The small model sees the tags around them, as in training.

The end: an end of turn from either model, or `max_tokens` tokens (tags not counted; with
`count_tags`, as GRPO's rollouts ask, tags counted and room for one close tag kept back). A trace
that ends while the large model is writing is closed once: one `</bigmodel>` ends its text. Outside a
segment the small model never writes a close tag (when the tag is one token).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.evaluate.handoff.backend import ModelRunner, ModelSession, PositionView
from splitreason.evaluate.handoff.types import HandoffSettings, Mode, TagIds, TraceResult, TraceSegment

__all__ = ["RandomPlan", "run_trace"]


@dataclass(frozen=True)
class RandomPlan:
    """Mode random: the share of tokens to offload and the length of each offloaded segment."""

    share: float
    segment_tokens: int

    def __post_init__(self) -> None:
        if not 0 <= self.share < 1:
            raise ValueError("the random offload share must be in [0, 1)")
        if self.segment_tokens < 1:
            raise ValueError("random segments need at least one token")

    def handoff_probability(self) -> float:
        """Per small-model token: q with q*L / (1 + q*L) = share (L the segment length)."""
        return self.share / (self.segment_tokens * (1 - self.share))


class _Trace:
    """The state of one trace: both contexts, the segments, the counters."""

    def __init__(self, small_prompt: Sequence[int], large_prompt: Sequence[int], settings: HandoffSettings,
                 tags: TagIds):
        self.small_context = list(small_prompt)
        self.small_prompt_len = len(small_prompt)
        self.large_context = list(large_prompt)
        self.mask: list[int] = []
        self.segments: list[TraceSegment] = []
        self.settings = settings
        self.tokens = 0
        self.tag_tokens = 0
        # count_tags: a trace that runs out inside a segment still gets its close within max_tokens
        self.reserved = len(tags.close_ids) if settings.count_tags else 0
        self.result = TraceResult(text="", segments=self.segments, completion_ids=[], completion_mask=self.mask,
                                  finish="max_tokens")

    @property
    def budget(self) -> int:
        if self.settings.count_tags:
            return self.settings.max_tokens - self.tokens - self.tag_tokens - self.reserved
        return self.settings.max_tokens - self.tokens

    def small_writes(self, ids: Sequence[int], *, chosen: bool = True) -> None:
        """Tokens of the answer written by the small model (tags excluded)."""
        if ids:
            self.segments.append(TraceSegment("small", list(ids)))
            self.tokens += len(ids)
        self.small_context += ids
        self.large_context += ids
        self.mask += [int(chosen)] * len(ids)

    def tag(self, ids: Sequence[int], *, chosen: bool) -> None:
        """A tag in the small model's context (never in the large model's)."""
        self.small_context += ids
        self.tag_tokens += len(ids)
        self.mask += [int(chosen)] * len(ids)

    def large_writes(self, ids: Sequence[int], segment: TraceSegment) -> None:
        segment.token_ids += ids
        self.tokens += len(ids)
        self.small_context += ids
        self.large_context += ids
        self.mask += [0] * len(ids)


def _closes(view: PositionView, token: int, threshold: float | None) -> bool:
    if threshold is None:
        return view.greedy_id == token
    return view.probs.get(token, 0.0) >= threshold


def find_close(small: ModelSession, context: Sequence[int], chunk_len: int, tags: TagIds,
               threshold: float | None, trace: TraceResult) -> int | None:
    """Index in the chunk (the last `chunk_len` ids of `context`) after which the segment closes,
    or None; one forward pass, plus one per text-tag candidate confirmed."""
    start = len(context) - chunk_len
    views = small.next_token_views(context, start, watch=tags.close_ids)
    trace.close_checks += 1
    first = tags.close_ids[0]
    candidates = [index for index, view in enumerate(views) if _closes(view, first, threshold)]
    if len(tags.close_ids) == 1:
        return candidates[0] if candidates else None
    for index in candidates:
        prefix = list(context[: start + index + 1])
        confirm = small.next_token_views([*prefix, *tags.close_ids[:-1]], len(prefix), watch=tags.close_ids)
        trace.confirm_passes += 1
        if all(_closes(view, token, threshold) for view, token in zip(confirm, tags.close_ids[1:])):
            return index
    return None


def run_trace(small: ModelRunner | None, large: ModelRunner | None, *, small_prompt_ids: Sequence[int],
              large_prompt_ids: Sequence[int] = (), tags: TagIds, settings: HandoffSettings,
              mode: Mode = "learned", seed: int = 0, random_plan: RandomPlan | None = None) -> TraceResult:
    """Write one answer with the pair under the handoff rule (module docstring).

    small, large        runners (e.g. `HFRunner(model, tokenizer)`); the two must share token ids
                        (the caller checks: `check_shared_vocabulary`). Mode small needs only
                        `small`, mode large only `large`.
    small_prompt_ids    the small model's prompt as it was trained (chat template + instruction),
                        ending where it starts writing
    large_prompt_ids    the large model's prompt under its own chat template
    tags                the small model's tag ids (`TagIds`)
    seed                sampling (and mode random's choices) are reproducible from it
    random_plan         mode random: share and segment length

    Returns a `TraceResult`: the tagged text, the segments (ids as each model wrote them), the
    small model's completion ids and which of them it chose (GRPO's mask), and the counters.
    """
    if mode in ("learned", "small", "random") and small is None:
        raise ValueError(f"mode {mode} needs the small model")
    if mode in ("learned", "random", "large") and large is None:
        raise ValueError(f"mode {mode} needs the large model")
    if mode == "random" and random_plan is None:
        raise ValueError("mode random needs a RandomPlan")
    trace = _Trace(small_prompt_ids, large_prompt_ids, settings, tags)
    result = trace.result
    sessions: dict[str, ModelSession] = {}
    try:
        if small is not None and mode != "large":
            sessions["small"] = small.session(seed)
        if large is not None and mode != "small":
            sessions["large"] = large.session(seed)
        if mode == "large":
            _large_alone(trace, sessions["large"], large, tags)
        else:
            _with_small(trace, sessions, small, large, tags, mode, random.Random(seed), random_plan)
    finally:
        for name, session in sessions.items():
            result.forward_passes[name] = session.forward_passes
            session.close()
    runner = large if mode == "large" else small
    result.completion_ids = trace.small_context[trace.small_prompt_len:] if mode != "large" else \
        trace.large_context[len(large_prompt_ids):]
    pieces = []
    for segment in trace.segments:
        segment.text = runner.decode(segment.token_ids) if runner is not None else ""
        if segment.model == "large" and mode != "large":
            pieces.append(f"{OPEN_TAG}{segment.text}{CLOSE_TAG}")
        else:
            pieces.append(segment.text)
    result.text = "".join(pieces)
    return result


def _timed(result: TraceResult, phase: str, call):
    began = time.perf_counter()
    try:
        return call()
    finally:
        result.wall_s[phase] += time.perf_counter() - began


def _large_alone(trace: _Trace, session: ModelSession, large: ModelRunner, tags: TagIds) -> None:
    result = trace.result
    written = _timed(result, "large", lambda: session.generate(
        trace.large_context, max_new_tokens=trace.budget, sampling=trace.settings.sampling,
        banned_ids=_banned_for_large(tags, large)))
    segment = TraceSegment("large", [], forced=None)
    trace.segments.append(segment)
    segment.token_ids += written.ids
    trace.tokens += len(written.ids)
    trace.large_context += written.ids
    trace.mask += [0] * len(written.ids)
    result.finish = "eos" if written.reason == "eos" else "max_tokens"
    result.eos_id = written.eos_id


def _banned_for_large(tags: TagIds, large: ModelRunner) -> set[int]:
    # the tags are the small model's; a large model that has the ids (a tagged model used as the
    # large one) must not write them
    return {token for token in tags.all_ids if token < large.vocab_size} if tags.single else set()


def _with_small(trace: _Trace, sessions: dict[str, ModelSession], small: ModelRunner, large: ModelRunner | None,
                tags: TagIds, mode: Mode, rng: random.Random, plan: RandomPlan | None) -> None:
    result = trace.result
    settings = trace.settings
    small_session = sessions["small"]
    stop = [list(tags.open_ids)] if mode == "learned" else []
    # a close tag outside a segment means nothing, and in modes small/random the small model opens none
    banned = set() if not tags.single else set(tags.close_ids) if mode == "learned" else tags.all_ids
    probability = plan.handoff_probability() if plan is not None else 0.0
    while trace.budget > 0:
        limit = trace.budget
        planned = False
        if mode == "random" and probability > 0:
            # small-model tokens until the next random handoff: geometric with success probability q
            draw = 1
            while rng.random() >= probability and draw < limit:
                draw += 1
            planned = draw < limit
            limit = draw
        written = _timed(result, "small", lambda: small_session.generate(
            trace.small_context, max_new_tokens=limit, sampling=settings.sampling, stop_sequences=stop,
            banned_ids=banned))
        text_ids = written.ids[: len(written.ids) - len(tags.open_ids)] if written.reason == "stop" else written.ids
        trace.small_writes(text_ids)
        if written.reason == "eos":
            result.finish = "eos"
            result.eos_id = written.eos_id
            return
        if written.reason == "stop":
            trace.tag(tags.open_ids, chosen=True)
        elif not (planned and trace.budget > (len(tags.open_ids) - 1 if settings.count_tags else 0)):
            result.finish = "max_tokens"
            return
        else:
            trace.tag(tags.open_ids, chosen=False)
        if trace.budget <= 0:  # the open tag was the last thing written: the segment is empty
            trace.tag(tags.close_ids, chosen=False)
            result.ended_in_segment = True
            result.finish = "max_tokens"
            return
        assert large is not None
        if _segment(trace, sessions, large, tags, mode, plan):
            return


def _segment(trace: _Trace, sessions: dict[str, ModelSession], large: ModelRunner, tags: TagIds, mode: Mode,
             plan: RandomPlan | None) -> bool:
    """The large model writes one segment; True when the trace ended inside it."""
    result = trace.result
    settings = trace.settings
    segment = TraceSegment("large", [], forced=False)
    trace.segments.append(segment)
    result.handoffs += 1
    length = plan.segment_tokens if mode == "random" and plan is not None else settings.max_segment_tokens
    banned = _banned_for_large(tags, large)
    while True:
        room = length - len(segment.token_ids)
        size = min(settings.chunk_tokens, room, trace.budget)
        chunk = _timed(result, "large", lambda: sessions["large"].generate(
            trace.large_context, max_new_tokens=size, sampling=settings.sampling, banned_ids=banned))
        close_at = None
        if mode == "learned" and chunk.ids:
            context = [*trace.small_context, *chunk.ids]
            close_at = _timed(result, "close_check", lambda: find_close(
                sessions["small"], context, len(chunk.ids), tags, settings.close_threshold, result))
        if close_at is not None:
            trace.large_writes(chunk.ids[: close_at + 1], segment)
            trace.tag(tags.close_ids, chosen=True)
            return False
        trace.large_writes(chunk.ids, segment)
        if chunk.reason == "eos" or trace.budget <= 0:
            # the trace ends inside the segment: closed once, written once
            segment.forced = True
            result.forced_closes += 1
            trace.tag(tags.close_ids, chosen=False)
            result.ended_in_segment = True
            result.finish = "eos" if chunk.reason == "eos" else "max_tokens"
            result.eos_id = chunk.eos_id
            return True
        if len(segment.token_ids) >= length:
            # mode random ends each segment at its planned length: that is the plan, not a cut
            # (counted, every random segment would be a "forced close")
            if mode != "random":
                segment.forced = True
                result.forced_closes += 1
            trace.tag(tags.close_ids, chosen=False)
            return False

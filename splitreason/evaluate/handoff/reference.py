"""A slow reference of the learned handoff: no caches, and the small model probed on every prefix.

After every token the large model writes, the small model reads its whole context from scratch
and says whether the close tag comes next (its greedy next tokens are the tag, or each of the
tag's tokens has probability at least the threshold) — the anchor's approach of one probe per
prefix, with transformers and greedy decoding only. It exists to check the runtime token by token
(tests) and to measure what the one-pass close check saves (benchmarks/bench_close_check.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from splitreason.evaluate.handoff.types import HandoffSettings, TagIds

__all__ = ["ReferenceTrace", "reference_trace"]


@dataclass
class ReferenceTrace:
    completion_ids: list[int] = field(default_factory=list)
    segments: list[tuple[str, list[int], bool | None]] = field(default_factory=list)  # (model, ids, forced)
    finish: str = "max_tokens"
    ended_in_segment: bool = False
    forward_passes: dict[str, int] = field(default_factory=lambda: {"small": 0, "large": 0})
    probes: int = 0  # close probes (one per large token)


class _Model:
    def __init__(self, model, name: str, counts: dict[str, int]):
        self.model, self.name, self.counts = model, name, counts

    def logits(self, ids: Sequence[int]):
        import torch

        with torch.no_grad():
            device = next(self.model.parameters()).device
            output = self.model(input_ids=torch.tensor([list(ids)], device=device), use_cache=False)
        self.counts[self.name] += 1
        return output.logits[0].float()

    def next_greedy(self, ids: Sequence[int], banned: Collection[int] = ()) -> int:
        import torch

        last = self.logits(ids)[-1]
        if banned:
            last = last.clone()
            last[[token for token in banned if token < last.shape[0]]] = float("-inf")
        return int(torch.argmax(last))


def _probe_close(small: _Model, context: Sequence[int], tags: TagIds, threshold: float | None) -> bool:
    import torch

    logits = small.logits([*context, *tags.close_ids[:-1]])[len(context) - 1:]
    probs = torch.softmax(logits, dim=-1)
    for row, token in enumerate(tags.close_ids):
        if threshold is None and int(torch.argmax(logits[row])) != token:
            return False
        if threshold is not None and float(probs[row, token]) < threshold:
            return False
    return True


def reference_trace(small_model, large_model, *, small_prompt_ids: Sequence[int], large_prompt_ids: Sequence[int],
                    tags: TagIds, settings: HandoffSettings, small_eos: Collection[int], large_eos: Collection[int],
                    large_banned: Collection[int] = ()) -> ReferenceTrace:
    """The learned handoff, greedy, the slow way (module docstring)."""
    trace = ReferenceTrace()
    small = _Model(small_model, "small", trace.forward_passes)
    large = _Model(large_model, "large", trace.forward_passes)
    small_context = list(small_prompt_ids)
    current: list[int] = []

    def written() -> list[int]:
        return [token for _, ids, _ in trace.segments for token in ids] + current

    def flush_small() -> None:
        if current:
            trace.segments.append(("small", list(current), None))
            current.clear()

    while len(written()) < settings.max_tokens:
        token = small.next_greedy(small_context)
        if token in small_eos:
            trace.finish = "eos"
            break
        small_context.append(token)
        current.append(token)
        if current[-len(tags.open_ids):] != list(tags.open_ids):
            continue
        del current[-len(tags.open_ids):]
        flush_small()
        if len(written()) >= settings.max_tokens:  # no room left for the segment: closed at once
            small_context += tags.close_ids
            trace.ended_in_segment = True
            break
        large_context = [*large_prompt_ids, *written()]
        segment: list[int] = []
        forced: bool | None = None
        while True:
            token = large.next_greedy(large_context, large_banned)
            if token in large_eos:
                forced, trace.ended_in_segment, trace.finish = True, True, "eos"
                break
            segment.append(token)
            small_context.append(token)
            large_context.append(token)
            trace.probes += 1
            if _probe_close(small, small_context, tags, settings.close_threshold):
                forced = False
                break
            if len(written()) + len(segment) >= settings.max_tokens:
                forced, trace.ended_in_segment = True, True
                break
            if len(segment) >= settings.max_segment_tokens:
                forced = True
                break
        trace.segments.append(("large", segment, forced))
        small_context += tags.close_ids
        if trace.ended_in_segment:
            break
    flush_small()
    trace.completion_ids = small_context[len(small_prompt_ids):]
    return trace

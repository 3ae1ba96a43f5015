"""GRPO's rewards: four named functions, each a number per completion, weighted by --reward-weights.

    correctness      1 when the answer equals the gold (math-verify, gold first, in worker
                     processes: TRL calls rewards off the main thread), else 0
    format           1 when the tags are well formed: balanced, not nested, not empty, none after the
                     final answer; -1 otherwise (the faults are listed by `tag_faults`)
    offload          the share of the completion's tokens inside tags against --target-offload: 1 at
                     the target, falling smoothly on both sides (a Gaussian of width
                     --offload-tolerance, mapped to [-1, 1])
    latency          1 - (projected time of this completion written by the pair) / (the large model
                     writing it alone), with the evaluator's latency model and a rates profile;
                     0 = as slow as the large model alone, floored at -1

The pure scores (`format_reward`, `offload_reward`, `latency_reward`, `correctness_reward`) take
plain values and are what the tests check on hand-written completions. `RewardFunctions` turns them
into the callables TRL's GRPOTrainer takes (named after the reward, which is how TRL logs them:
`rewards/<name>/mean` in OUT/log.jsonl), splitting each completion into segments by model once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.evaluate.answers import answer_start
from splitreason.evaluate.latency import Rates, Segment, project_latency
from splitreason.schemas.grpo import REWARD_NAMES, parse_reward_weights

__all__ = ["REWARD_NAMES", "RewardFunctions", "correctness_reward", "format_reward", "latency_reward",
           "offload_reward", "parse_reward_weights", "tag_faults", "text_pieces"]



# -- the pure scores ---------------------------------------------------------------------------

def text_pieces(text: str) -> list[tuple[str, str]]:
    """(model, text) pieces of a tagged completion in order: after an open tag is "large", after a
    close tag (or before any tag) "small"; the tags themselves are left out, so the pieces join to
    the text without its tags; an unclosed tag runs to the end."""
    events = sorted([(i, OPEN_TAG) for i in _all(text, OPEN_TAG)] + [(i, CLOSE_TAG) for i in _all(text, CLOSE_TAG)])
    pieces: list[tuple[str, str]] = []
    model, at = "small", 0
    for index, tag in [*events, (len(text), "")]:
        if index > at:
            if pieces and pieces[-1][0] == model:
                pieces[-1] = (model, pieces[-1][1] + text[at:index])
            else:
                pieces.append((model, text[at:index]))
        if tag:
            model, at = ("large" if tag == OPEN_TAG else "small"), index + len(tag)
    return pieces


def tag_faults(text: str) -> list[str]:
    """What is wrong with the tags of `text` (empty: nothing): "unclosed", "close without open",
    "nested", "empty", "after the answer"."""
    faults: list[str] = []
    events = sorted([(i, OPEN_TAG) for i in _all(text, OPEN_TAG)] + [(i, CLOSE_TAG) for i in _all(text, CLOSE_TAG)])
    depth, opened_at = 0, -1
    for index, tag in events:
        if tag == OPEN_TAG:
            if depth > 0:
                faults.append("nested")
            depth += 1
            opened_at = index + len(OPEN_TAG)
        else:
            if depth == 0:
                faults.append("close without open")
                continue
            if not text[opened_at:index].strip():
                faults.append("empty")
            depth -= 1
    if depth > 0:
        faults.append("unclosed")
    answer_at = answer_start(text)
    if answer_at is not None and events and events[-1][0] >= answer_at:
        faults.append("after the answer")
    return list(dict.fromkeys(faults))


def _all(text: str, needle: str) -> list[int]:
    found, at = [], text.find(needle)
    while at >= 0:
        found.append(at)
        at = text.find(needle, at + len(needle))
    return found


def format_reward(text: str) -> float:
    return -1.0 if tag_faults(text) else 1.0


def offload_reward(share: float, *, target: float, tolerance: float) -> float:
    """1 at `target`, 2·exp(-((share - target)/tolerance)²) - 1 around it: smooth, symmetric, -1 far off."""
    return 2.0 * math.exp(-(((share - target) / tolerance) ** 2)) - 1.0


def latency_reward(segments: Sequence[Segment], rates: Rates, *, prompt_tokens: int,
                   schedule: str = "pipelined") -> float:
    """1 - pair time / large-alone time of this completion (tags not counted), floored at -1."""
    if not any(segment.tokens for segment in segments):
        return 0.0
    projection = project_latency(segments, rates, small_prompt_tokens=prompt_tokens, schedule=schedule)  # type: ignore[arg-type]
    return max(-1.0, 1.0 - projection.pair_s / projection.large_alone_s)


def correctness_reward(correct: bool) -> float:
    return 1.0 if correct else 0.0


# -- TRL's callables ---------------------------------------------------------------------------

@dataclass
class Scored:
    """What the rewards learned about one completion (for OUT/rollouts.jsonl)."""

    segments: list[Segment]
    offload_share: float
    verdict: dict[str, Any] | None = None
    faults: list[str] = field(default_factory=list)
    speedup: float | None = None


@dataclass
class RewardFunctions:
    """The four rewards as TRL reward functions sharing one split of each completion.

    `count_tokens(text) -> int` counts a piece's tokens when the tags are text (with single-token
    tags the completion's ids are split directly). A rollout that went through the true-offload
    runtime brings its own `segments` column (what each model really wrote), used as it is.
    """

    grader: Any  # evaluate.grading.Grader
    rates: Rates
    weights: Mapping[str, float]
    target_offload: float
    tolerance: float
    open_id: int | None  # single-token tags: their ids; None when the tags are text
    close_id: int | None
    count_tokens: Any
    schedule: str = "pipelined"
    last: list[Scored] = field(default_factory=list)  # the latest batch, for the rollout log

    def functions(self) -> list:
        """The callables with non-zero weight, in REWARD_NAMES order (weights: `active_weights`)."""
        made = {"correctness": self._correctness, "format": self._format, "offload": self._offload,
                "latency": self._latency}
        chosen = []
        for name in self.active_names():
            function = _named(made[name], name)
            chosen.append(function)
        return chosen

    def active_names(self) -> list[str]:
        return [name for name in REWARD_NAMES if self.weights.get(name, 0.0) != 0.0]

    def active_weights(self) -> list[float]:
        return [float(self.weights[name]) for name in self.active_names()]

    # Each TRL reward function gets the batch; the first one called splits the completions.
    def _scored(self, completions, completion_ids, segments=None) -> list[Scored]:
        texts = [_text(c) for c in completions]
        if len(self.last) == len(texts) and getattr(self, "_batch", None) is completions:
            return self.last
        scored = []
        for index, text in enumerate(texts):
            given = segments[index] if segments is not None else None
            pieces = ([Segment(s["model"], int(s["tokens"]), bool(s.get("forced", False))) for s in given]
                      if given is not None else self._segments(text, completion_ids[index]))
            total = sum(piece.tokens for piece in pieces)
            large = sum(piece.tokens for piece in pieces if piece.model == "large")
            scored.append(Scored(pieces, large / total if total else 0.0, faults=tag_faults(text)))
        self.last, self._batch = scored, completions
        return scored

    def _segments(self, text: str, ids: Sequence[int]) -> list[Segment]:
        if self.open_id is not None and self.close_id is not None:
            from splitreason.evaluate.latency import segments_from_token_ids

            ids = list(ids)
            return segments_from_token_ids(ids, open_id=self.open_id, close_id=self.close_id)
        return [Segment(model, self.count_tokens(piece)) for model, piece in text_pieces(text)]  # type: ignore[arg-type]

    def _correctness(self, prompts, completions, completion_ids, answer, log_metric=None, segments=None, **_):
        scored = self._scored(completions, completion_ids, segments)
        verdicts = self.grader.grade_many(list(zip((_text(c) for c in completions), answer)))
        for item, verdict in zip(scored, verdicts):
            item.verdict = verdict.to_dict()
        rewards = [correctness_reward(v.correct) for v in verdicts]
        _log(log_metric, "accuracy", rewards)
        return rewards

    def _format(self, prompts, completions, completion_ids, log_metric=None, segments=None, **_):
        scored = self._scored(completions, completion_ids, segments)
        rewards = [-1.0 if item.faults else 1.0 for item in scored]
        _log(log_metric, "well_formed", [1.0 if r > 0 else 0.0 for r in rewards])
        return rewards

    def _offload(self, prompts, completions, completion_ids, log_metric=None, segments=None, **_):
        scored = self._scored(completions, completion_ids, segments)
        _log(log_metric, "offload_share", [item.offload_share for item in scored])
        return [offload_reward(item.offload_share, target=self.target_offload, tolerance=self.tolerance)
                for item in scored]

    def _latency(self, prompts, completions, completion_ids, prompt_tokens, log_metric=None, segments=None, **_):
        scored = self._scored(completions, completion_ids, segments)
        rewards = []
        for item, tokens in zip(scored, prompt_tokens):
            reward = latency_reward(item.segments, self.rates, prompt_tokens=int(tokens), schedule=self.schedule)
            item.speedup = 1.0 / (1.0 - reward) if reward < 1.0 else None
            rewards.append(reward)
        _log(log_metric, "speedup", [item.speedup for item in scored if item.speedup is not None])
        return rewards


def _named(method, name: str):
    def reward(*args, **kwargs):
        return method(*args, **kwargs)

    reward.__name__ = reward.__qualname__ = name
    return reward


def _text(completion) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


def _log(log_metric, name: str, values: list) -> None:
    if log_metric is not None and values:
        log_metric(name, sum(values) / len(values))

"""The offline, deterministic ``heuristic`` judge: rules instead of a model.

It needs no GPU, no network and no keys, so it is the default judge: a way to try the pipeline
offline, not a substitute for a strong judge model. Three stages, each its own module: the
thinking part is cut into steps (judges/steps.py), each step is scored by documented rules
(judges/heuristic_rules.py), and the best steps fill the target coverage (judges/selection.py).
The rules are documented in docs/heuristic_judge.md.

Change ``RULES_VERSION`` whenever a rule, a pattern or a weight changes: with the parameters it
is the judge's provenance (JudgeInfo.model and prompt_hash).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from splitreason.judges.base import Excerpt, Judge, Verdict
from splitreason.judges.heuristic_rules import DEFAULTS, HeuristicSettings, byte_view, problem_tokens, reason_for, score_steps
from splitreason.judges.selection import fill_target
from splitreason.judges.steps import segment, think_bounds
from splitreason.schemas import JudgeInfo, Trace, Usage

__all__ = ["RULES_VERSION", "HeuristicJudge", "HeuristicSettings", "select_spans"]

#: Names the rule set (JudgeInfo.model). Bump on any change to a rule, a pattern or a weight.
RULES_VERSION = "rules-v1"


def select_spans(
    text: str,
    target_coverage: float,
    *,
    max_span_chars: int = DEFAULTS.max_span_chars,
    min_span_chars: int = DEFAULTS.min_span_chars,
    problem: str | None = None,
    settings: HeuristicSettings = DEFAULTS,
) -> list[tuple[int, int, str]]:
    """Sorted, non-overlapping (start, end, reason) spans of `text`, inside its thinking part,
    covering about `target_coverage` of all its characters (end exclusive, code points).

    `problem`, when given, lets steps that mostly repeat the problem's words score low.
    Deterministic: the same arguments always give the same spans.
    """
    if isinstance(target_coverage, bool) or not isinstance(target_coverage, (int, float)):
        raise ValueError(f"target_coverage must be a number in [0, 1], got {target_coverage!r}")
    if math.isnan(target_coverage) or not 0.0 <= target_coverage <= 1.0:
        raise ValueError(f"target_coverage must be in [0, 1], got {target_coverage}")
    if (max_span_chars, min_span_chars) != (settings.max_span_chars, settings.min_span_chars):
        settings = settings.model_copy(update={"max_span_chars": max_span_chars, "min_span_chars": min_span_chars})
    target = target_coverage * len(text)
    lo, hi = think_bounds(text)
    if target <= 0 or hi - lo < settings.min_span_chars:
        return []
    steps = segment(text, lo, hi, settings.max_span_chars, settings.min_span_chars)
    if not len(steps):
        return []
    scores, features = score_steps(text, byte_view(text), lo, hi, steps, settings, problem_tokens(problem))
    runs = fill_target(steps, scores, target, max_span_chars=settings.max_span_chars, overshoot=settings.overshoot)
    return [(steps.starts[first], steps.ends[last], reason_for(features, first, last)) for first, last in runs]


class HeuristicJudge(Judge):
    """Rule-based judge: offline, deterministic, free; the default judge."""

    concurrent = False
    samples_differ = False  # the same rules give the same spans every time

    def __init__(self, name: str = "heuristic", *, max_span_chars: int = DEFAULTS.max_span_chars,
                 min_span_chars: int = DEFAULTS.min_span_chars, settings: HeuristicSettings = DEFAULTS):
        super().__init__(name)
        if min_span_chars < 1:
            raise ValueError(f"min_span_chars must be at least 1, got {min_span_chars}")
        if max_span_chars < min_span_chars:
            raise ValueError(f"max_span_chars ({max_span_chars}) must be at least min_span_chars ({min_span_chars})")
        self.settings = settings.model_copy(update={"max_span_chars": max_span_chars, "min_span_chars": min_span_chars})

    @property
    def max_span_chars(self) -> int:
        return self.settings.max_span_chars

    @property
    def min_span_chars(self) -> int:
        return self.settings.min_span_chars

    @property
    def params(self) -> dict[str, Any]:
        """The span sizes, and any weight that differs from the rule set's (so provenance never
        hides a changed rule)."""
        changed = {name: value for name, value in self.settings.model_dump().items()
                   if value != getattr(DEFAULTS, name) and name not in ("max_span_chars", "min_span_chars")}
        return {"max_span_chars": self.max_span_chars, "min_span_chars": self.min_span_chars, **changed}

    @property
    def info(self) -> JudgeInfo:
        # There is no prompt: the hash covers the rules version and the parameters instead.
        blob = json.dumps({"rules": RULES_VERSION, "params": self.params}, sort_keys=True)
        return JudgeInfo(
            name=self.name,
            backend="heuristic",
            model=RULES_VERSION,
            prompt_hash=hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16],
            params=self.params,
        )

    def select_spans(self, text: str, target_coverage: float, problem: str | None = None) -> list[tuple[int, int, str]]:
        """The synchronous core (for benchmarks): (start, end, reason) spans of `text`."""
        return select_spans(text, target_coverage, problem=problem, settings=self.settings,
                            max_span_chars=self.max_span_chars, min_span_chars=self.min_span_chars)

    async def judge(self, trace: Trace, target_coverage: float, sample: int = 0) -> Verdict:
        text = trace.text
        spans = self.select_spans(text, target_coverage, problem=trace.problem)
        excerpts = [Excerpt(text=text[s:e], reason=reason, start=s) for s, e, reason in spans]
        return Verdict(excerpts=excerpts, usage=Usage(), requests=0, cache_hits=0)

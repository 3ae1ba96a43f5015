"""Accuracy over graded samples: the rate with a 95 % Wilson interval, and the majority vote over
the k samples of each problem.

    from splitreason.evaluate.accuracy import summarize
    summary = summarize({"p1": [verdict, verdict, ...], "p2": [...]})   # problem id -> its verdicts
    summary.accuracy, summary.accuracy_ci95, summary.majority_accuracy

`accuracy` is the mean over all samples (each sample counts once; a problem answered k times
counts k times), the paper's "mean accuracy over samples". Its interval treats samples as
independent, which they are not quite when k > 1 (samples of one problem are alike): read it as
a lower bound on the uncertainty. `majority_accuracy` is over problems, one vote each: the
answer most samples of a problem gave (answers grouped by their parsed form, so `1/2` and
`\\frac{1}{2}` are one answer; every correct answer is the gold's group) is right. A tie goes to
the group whose first sample came first. Samples with no answer, or whose grading timed out or
failed, do not vote; a problem where none voted has no majority answer and counts as wrong.
`coverage` is the share of problems with at least one correct sample (pass@k for the k given).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from splitreason.evaluate.grading import Grade

__all__ = ["AccuracySummary", "majority_vote", "summarize", "wilson_interval"]

Z_95 = 1.959963984540054  # the normal quantile for a two-sided 95 % interval


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a proportion (good at small n and near 0 or 1, where the
    normal approximation gives bounds outside [0, 1]). (0, 1) when there are no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, {trials}], not {successes}")
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def majority_vote(verdicts: Sequence[Grade]) -> Grade | None:
    """The verdict of the answer most samples gave (a representative of its group), or None when
    no sample gave a gradable answer."""
    groups: dict[str, list[Grade]] = {}
    for verdict in verdicts:
        if verdict.status == "correct":
            key = "\0gold"
        elif verdict.status == "wrong":
            key = verdict.canonical or verdict.answer or ""
        else:
            continue
        groups.setdefault(key, []).append(verdict)
    if not groups:
        return None
    # dicts keep insertion order and max() keeps the first of equals: a tie goes to the earliest group
    return max(groups.values(), key=len)[0]


@dataclass(frozen=True)
class AccuracySummary:
    samples: int
    correct: int
    accuracy: float
    accuracy_ci95: tuple[float, float]
    no_answer: int
    timeouts: int
    errors: int
    problems: int
    samples_per_problem: tuple[int, int]  # (fewest, most)
    majority_correct: int
    majority_accuracy: float
    majority_ci95: tuple[float, float]
    coverage: float

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("accuracy_ci95", "majority_ci95", "samples_per_problem"):
            data[key] = list(data[key])
        return data


def summarize(by_problem: Mapping[str, Sequence[Grade]]) -> AccuracySummary:
    """Accuracy, its interval, majority vote and coverage over problems' verdicts."""
    groups = [list(verdicts) for verdicts in by_problem.values() if verdicts]
    every = [verdict for verdicts in groups for verdict in verdicts]
    correct = sum(verdict.correct for verdict in every)
    majority_correct = 0
    for verdicts in groups:
        winner = majority_vote(verdicts)
        majority_correct += winner is not None and winner.correct
    sizes = [len(verdicts) for verdicts in groups] or [0]
    return AccuracySummary(
        samples=len(every),
        correct=correct,
        accuracy=correct / len(every) if every else 0.0,
        accuracy_ci95=wilson_interval(correct, len(every)),
        no_answer=sum(verdict.status == "no_answer" for verdict in every),
        timeouts=sum(verdict.status == "timeout" for verdict in every),
        errors=sum(verdict.status == "error" for verdict in every),
        problems=len(groups),
        samples_per_problem=(min(sizes), max(sizes)),
        majority_correct=majority_correct,
        majority_accuracy=majority_correct / len(groups) if groups else 0.0,
        majority_ci95=wilson_interval(majority_correct, len(groups)),
        coverage=sum(any(verdict.correct for verdict in verdicts) for verdicts in groups) / len(groups) if groups else 0.0,
    )

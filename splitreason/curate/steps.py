"""The curation steps as stream stages: traces in, fewer traces out, every removal recorded.

A stage takes an iterator of `Trace | Reject` and yields what it keeps; rejects (bad input rows,
recorded in rejects.jsonl) pass through untouched. A removed trace goes to `Ledger.exclude`,
which writes it to exclusions.jsonl and counts it per step and reason; `Ledger.counted` wraps a
group of stages to count what went in and what came out. Decisions about a problem are made
once per problem: the generations of one record arrive one after another.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from splitreason.curate.decontaminate import MAX_NGRAMS_SHOWN, Decontaminator, Match
from splitreason.curate.dedup import ClusterBook, Duplicate, EmbeddingDedup
from splitreason.curate.filters import TraceFilter
from splitreason.io.jsonl import record_to_line
from splitreason.io.readers import one_line
from splitreason.schemas import Exclusion, Reject, Trace

Item = Trace | Reject

DEDUP_REASONS = {"exact": "exact_duplicate", "minhash": "near_duplicate", "embedding": "semantic_duplicate"}


@dataclass
class StepCount:
    seen: int = 0
    kept: int = 0
    excluded: Counter = field(default_factory=Counter)

    def as_dict(self, step: str) -> dict:
        return {"step": step, "in": self.seen, "out": self.kept, "excluded": dict(self.excluded.most_common())}


class Ledger:
    """Where removed traces go: exclusions.jsonl, counted per step and reason."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.steps: dict[str, StepCount] = {}

    def step(self, name: str) -> StepCount:
        return self.steps.setdefault(name, StepCount())

    def exclude(self, trace: Trace, step: str, reason: str, detail: str, **extra) -> None:
        self.step(step).excluded[reason] += 1
        self.handle.write(record_to_line(Exclusion(
            trace_id=trace.trace_id, uuid=trace.uuid, origin=trace.origin, row=trace.origin_row, step=step,
            reason=reason, detail=one_line(detail), **extra)))

    def counted(self, step: str, items: Iterable[Item], stages: Callable[[Iterable[Item]], Iterable[Item]]) -> Iterator[Item]:
        """Run `stages` over `items`, counting the traces that enter and leave as step `step`."""
        count = self.step(step)

        def entering() -> Iterator[Item]:
            for item in items:
                count.seen += isinstance(item, Trace)
                yield item

        for item in stages(entering()):
            count.kept += isinstance(item, Trace)
            yield item

    @property
    def excluded(self) -> int:
        return sum(sum(count.excluded.values()) for count in self.steps.values())


def _keep_where(items: Iterable[Item], keep: Callable[[Trace], bool]) -> Iterator[Item]:
    return (item for item in items if not isinstance(item, Trace) or keep(item))


class _PerProblem:
    """Remember the decision about the last problem: its other generations follow it directly."""

    def __init__(self, decide: Callable[[Trace], object]):
        self.decide, self.uuid, self.decision = decide, None, None

    def __call__(self, trace: Trace):
        if trace.uuid != self.uuid:
            self.uuid, self.decision = trace.uuid, self.decide(trace)
        return self.decision


class FilterStage:
    def __init__(self, filters: list[TraceFilter], ledger: Ledger):
        self.filters, self.ledger = filters, ledger

    def keep(self, trace: Trace) -> bool:
        for trace_filter in self.filters:
            verdict = trace_filter.why_not(trace)
            if verdict is not None:
                self.ledger.exclude(trace, "filter", *verdict)
                return False
        return True

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        return _keep_where(items, self.keep)


class DecontaminateStage:
    """Matched problems are written to contamination.jsonl (pairs, with the shared n-grams) and
    their traces removed, unless `drop` is off (then they are only reported)."""

    def __init__(self, decontaminator: Decontaminator, ledger: Ledger, pairs: IO[bytes], *, drop: bool):
        self.decontaminator, self.ledger, self.pairs, self.drop = decontaminator, ledger, pairs, drop
        self.matched_problems: Counter = Counter()  # per eval set
        self.removed_traces: Counter = Counter()
        self._per_problem = _PerProblem(self._decide)

    def _decide(self, trace: Trace) -> list[Match]:
        matches = self.decontaminator.matches(trace.problem)
        for match in matches:
            self.pairs.write(record_to_line({
                "uuid": trace.uuid, "problem": trace.problem[:1000], "eval_set": match.eval_set,
                "eval_id": match.eval_id, "eval_problem": match.eval_problem[:1000], "overlap": match.overlap,
                "ngrams": match.ngrams[:MAX_NGRAMS_SHOWN], "dropped": self.drop}))
        self.matched_problems.update({match.eval_set for match in matches})  # a problem counts once per set
        return matches

    def keep(self, trace: Trace) -> bool:
        matches = self._per_problem(trace)
        if not matches or not self.drop:
            return True
        best = matches[0]
        self.removed_traces[best.eval_set] += 1
        self.ledger.exclude(trace, "decontaminate", "contaminated",
                            f"shares {best.overlap} word {self.decontaminator.n}-gram(s) with {best.eval_set} problem "
                            f"{best.eval_id}, e.g. {best.ngrams[0]!r}", eval_set=best.eval_set)
        return False

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        return _keep_where(items, self.keep)

    def summary(self) -> dict:
        names = [eval_set["name"] for eval_set in self.decontaminator.summary_sets()]
        return {"matched_problems": sum(self.matched_problems.values()),
                "removed_traces": sum(self.removed_traces.values()),
                "by_eval_set": {name: {"matched_problems": self.matched_problems[name],
                                       "removed_traces": self.removed_traces[name]} for name in names}}


class DedupStage:
    """Exact and MinHash dedup: `checkers` have `check(uuid, problem) -> Duplicate | None`."""

    def __init__(self, checkers: list, book: ClusterBook, ledger: Ledger):
        self.checkers, self.book, self.ledger = checkers, book, ledger
        self._per_problem = _PerProblem(self._decide)

    def _decide(self, trace: Trace) -> Duplicate | None:
        for checker in self.checkers:
            duplicate = checker.check(trace.uuid, trace.problem)
            if duplicate is not None and duplicate.kept != trace.uuid:
                self.book.record(duplicate, trace.uuid, trace.problem)
                return duplicate
        return None

    def keep(self, trace: Trace) -> bool:
        duplicate = self._per_problem(trace)
        if duplicate is None:
            return True
        exclude_duplicate(trace, duplicate, self.book, self.ledger)
        return False

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        return _keep_where(items, self.keep)


def exclude_duplicate(trace: Trace, duplicate: Duplicate, book: ClusterBook, ledger: Ledger) -> None:
    book.count_trace(duplicate.kind)
    ledger.exclude(trace, "dedup", DEDUP_REASONS[duplicate.kind],
                   f"{duplicate.kind} duplicate of problem {duplicate.kept} (similarity {duplicate.similarity:.3f})",
                   kept=duplicate.kept, similarity=round(duplicate.similarity, 4))


class EmbeddingDedupStage:
    """Embedding dedup decides a batch of new problems at once, so traces wait for their batch."""

    def __init__(self, dedup: EmbeddingDedup, book: ClusterBook, ledger: Ledger):
        self.dedup, self.book, self.ledger = dedup, book, ledger

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        waiting: list[Item] = []
        problems: dict[str, str] = {}  # new problems of this batch, in order
        for item in items:
            # A batch is closed before a new problem, never between generations of one problem: a
            # problem checked again in the next batch would be recorded in its cluster twice.
            if isinstance(item, Trace) and item.uuid not in problems and len(problems) >= self.dedup.batch_size:
                yield from self._flush(waiting, problems)
            waiting.append(item)
            if isinstance(item, Trace):
                problems.setdefault(item.uuid, item.problem)
        yield from self._flush(waiting, problems)

    def _flush(self, waiting: list[Item], problems: dict[str, str]) -> Iterator[Item]:
        decisions = dict(zip(problems, self.dedup.check_batch(list(problems.items()))))
        for uuid, duplicate in decisions.items():
            if duplicate is not None and duplicate.kept != uuid:
                self.book.record(duplicate, uuid, problems[uuid])
        kept = list(waiting)
        waiting.clear()
        problems.clear()
        for item in kept:
            duplicate = decisions.get(item.uuid) if isinstance(item, Trace) else None
            if duplicate is not None and duplicate.kept != item.uuid:
                exclude_duplicate(item, duplicate, self.book, self.ledger)
                continue
            yield item

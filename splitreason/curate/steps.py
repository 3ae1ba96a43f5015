"""The curation steps as stream stages: traces in, fewer traces out, every removal recorded.

A stage takes an iterator of `Trace | Reject` and yields what it keeps; rejects (bad input rows,
recorded in rejects.jsonl) pass through untouched. A removed trace goes to `Ledger.exclude`,
which writes it to exclusions.jsonl and counts it per step and reason; `Ledger.counted` wraps a
group of stages to count what went in and what came out. Decisions about a problem are made
once per problem: the generations of one record arrive one after another.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from splitreason.curate.decontaminate import MAX_NGRAMS_SHOWN, Judgement
from splitreason.curate.dedup import ClusterBook, Duplicate, EmbeddingDedup
from splitreason.curate.filters import TraceFilter
from splitreason.errors import one_line
from splitreason.io.jsonl import JsonlAppender
from splitreason.schemas import Exclusion, Reject, Trace
from splitreason.schemas.contamination import ContaminationPair

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
    """Where removed traces go: exclusions.jsonl (an io.jsonl.JsonlAppender), counted per step and reason."""

    def __init__(self, exclusions: JsonlAppender):
        self.exclusions = exclusions
        self.steps: dict[str, StepCount] = {}

    def step(self, name: str) -> StepCount:
        return self.steps.setdefault(name, StepCount())

    def exclude(self, trace: Trace, step: str, reason: str, detail: str, **extra) -> None:
        self.step(step).excluded[reason] += 1
        self.exclusions.write(Exclusion(
            trace_id=trace.trace_id, uuid=trace.uuid, origin=trace.origin, row=trace.origin_row, step=step,
            reason=reason, detail=one_line(detail), **extra))

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
    """Every decision about a problem that shares n-grams with an evaluation problem is written to
    contamination.jsonl (curate/decontaminate.py); contaminated problems (and near matches under
    --strict) lose their traces, unless `drop` is off (then they are only reported). Counts go per
    rule and per evaluation set, for curate.json and the report."""

    def __init__(self, rule, ledger: Ledger, pairs: JsonlAppender, *, drop: bool):
        self.rule, self.ledger, self.pairs, self.drop = rule, ledger, pairs, drop
        self.problems: Counter = Counter()  # (verdict, rule) of each problem's strongest pair
        self.removed_traces: Counter = Counter()  # per rule
        self.by_set: dict[str, Counter] = defaultdict(Counter)  # set -> matched_problems, removed_traces, near_matches
        self._per_problem = _PerProblem(self._decide)

    def _decide(self, trace: Trace) -> Judgement:
        judgement = self.rule.judge(trace.problem)
        if judgement.verdict is None:
            return judgement
        dropped = self.drop and judgement.remove
        for pair in judgement.pairs:
            self.pairs.write(ContaminationPair(
                uuid=trace.uuid, problem=trace.problem[:1000], eval_set=pair.eval_set, eval_id=pair.eval_id,
                eval_problem=pair.eval_problem[:1000], verdict=pair.verdict, rule=pair.rule, dropped=dropped,
                score=pair.score, threshold=self.rule.threshold, ngrams=pair.ngrams[:MAX_NGRAMS_SHOWN],
                ngrams_shared=len(pair.ngrams), boilerplate=pair.boilerplate[:MAX_NGRAMS_SHOWN],
                boilerplate_shared=len(pair.boilerplate), eval_numbers=pair.eval_numbers,
                missing_numbers=pair.missing_numbers, candidates=judgement.candidates))
        self.problems[(judgement.verdict, judgement.best.rule)] += 1
        counted = "matched_problems" if judgement.verdict == "contaminated" else "near_matches"
        if judgement.verdict != "clean":
            for eval_set in {pair.eval_set for pair in judgement.pairs}:  # a problem counts once per set
                self.by_set[eval_set][counted] += 1
        return judgement

    def keep(self, trace: Trace) -> bool:
        judgement = self._per_problem(trace)
        if not self.drop or not judgement.remove:
            return True
        best = judgement.best
        self.removed_traces[best.rule] += 1
        self.by_set[best.eval_set]["removed_traces"] += 1
        reason = "contaminated" if best.verdict == "contaminated" else "near_match"
        example = f", e.g. {best.ngrams[0]!r}" if best.ngrams else ""
        self.ledger.exclude(trace, "decontaminate", reason, f"{best.verdict} ({best.rule}, score {best.score:g}) with "
                            f"{best.eval_set} problem {best.eval_id}{example}", eval_set=best.eval_set)
        return False

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        return _keep_where(items, self.keep)

    def summary(self) -> dict:
        """Counts per rule and per evaluation set (curate.json's decontamination block)."""
        names = [eval_set["name"] for eval_set in self.rule.summary()["eval_sets"]]
        removing = {rule for (verdict, rule) in self.problems if verdict == "contaminated"}
        if self.rule.strict:
            removing.add("near_match")
        by_rule = {rule: {"problems": sum(n for (verdict, r), n in self.problems.items() if r == rule),
                          "removed_traces": self.removed_traces[rule]} for rule in sorted(removing)}
        near = sum(n for (verdict, _), n in self.problems.items() if verdict == "near_match")
        return {"matched_problems": sum(n for (verdict, _), n in self.problems.items() if verdict == "contaminated"),
                "removed_traces": sum(self.removed_traces.values()), "by_rule": by_rule,
                "near_matches": {"problems": near, "kept": 0 if self.rule.strict and self.drop else near},
                "kept_with_overlap": {rule: n for (verdict, rule), n in sorted(self.problems.items())
                                      if verdict == "clean"},
                "by_eval_set": {name: {key: self.by_set[name][key] for key in
                                       ("matched_problems", "removed_traces", "near_matches")} for name in names}}


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

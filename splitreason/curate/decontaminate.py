"""Keep benchmark problems out of training data: word n-gram overlap with evaluation sets.

An evaluation set (io/eval_sets.py) is a local .jsonl/.jsonl.gz/.parquet file or a hub dataset
with a problem field, or one of the names in EVAL_SETS. Every word n-gram (default n = 8, as
open-r1's decontamination script uses) of every evaluation problem goes into one index; a training
problem that shares at least `min_overlap` of them with an evaluation problem is matched, and
the match keeps the overlapping n-grams so a person can see why. An evaluation problem shorter
than n words is indexed whole (if it has at least MIN_SHORT_WORDS words), so "Compute
binom(31, 28)." is found inside a longer training problem too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from splitreason.curate.text import word_ngrams, words
from splitreason.io.eval_sets import EvalSet, load_eval_set

DEFAULT_NGRAM = 8
MIN_SHORT_WORDS = 4  # shorter evaluation problems would match common phrases, not problems
MAX_NGRAMS_SHOWN = 10

__all__ = ["DEFAULT_NGRAM", "Decontaminator", "EvalSet", "Match", "load_eval_set"]


@dataclass
class Match:
    eval_set: str
    eval_id: str
    eval_problem: str
    ngrams: list[str] = field(default_factory=list)

    @property
    def overlap(self) -> int:
        return len(self.ngrams)


class Decontaminator:
    def __init__(self, eval_sets: list[EvalSet], n: int = DEFAULT_NGRAM, min_overlap: int = 1):
        if n < 1 or min_overlap < 1:
            raise ValueError("n-gram size and minimum overlap must be at least 1")
        self.eval_sets, self.n, self.min_overlap = eval_sets, n, min_overlap
        self._index: dict[str, list[int]] = defaultdict(list)  # n-gram -> indices into _problems
        self._problems: list[tuple[str, str, str]] = []  # (set name, id, text)
        self._lengths = {n}  # gram lengths to look for in training problems
        for eval_set in eval_sets:
            for problem in eval_set.problems:
                eval_id, text = problem.id, problem.problem
                tokens = words(text)
                if len(tokens) < n:
                    if len(tokens) < MIN_SHORT_WORDS:
                        continue
                    self._lengths.add(len(tokens))
                index = len(self._problems)
                self._problems.append((eval_set.name, eval_id, text))
                for gram in set(word_ngrams(tokens, n)):
                    self._index[gram].append(index)

    def matches(self, problem: str) -> list[Match]:
        """Evaluation problems this problem overlaps, most overlapping first."""
        tokens = words(problem)
        shared: dict[int, list[str]] = defaultdict(list)
        for length in self._lengths:
            if len(tokens) < length:
                continue
            for gram in dict.fromkeys(" ".join(tokens[i : i + length]) for i in range(len(tokens) - length + 1)):
                for index in self._index.get(gram, ()):
                    shared[index].append(gram)
        found = [Match(self._problems[i][0], self._problems[i][1], self._problems[i][2], grams)
                 for i, grams in shared.items() if len(grams) >= self.min_overlap]
        return sorted(found, key=lambda m: (-m.overlap, m.eval_set, m.eval_id))

    def summary_sets(self) -> list[dict]:
        return [{"name": s.name, "source": s.source, "problems": len(s.problems)} for s in self.eval_sets]

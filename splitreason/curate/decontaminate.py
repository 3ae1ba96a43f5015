"""Keep benchmark problems out of training data: the decisions both rules share, and today's rule.

Two rules decide whether a training problem leaked an evaluation problem (io/eval_sets.py reads
the sets):

- `specific` (the default, curate/specific.py): the share of what is specific to the evaluation
  problem that the training problem repeats, stock phrasing left out, numbers checked apart;
- `ngram` (`NgramRule` below, open-r1's and lighteval's rule): any `min_overlap` shared word
  n-grams (n = 8). Eager: stock phrasing such as "where m and n are relatively prime positive
  integers. Find m+n" is enough. Kept for those who want it (`--rule ngram`).

Each rule returns a `Judgement` per training problem: the verdict (contaminated, near_match, clean)
and the pairs (training problem, evaluation problem) that explain it, which curate writes to
contamination.jsonl.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal

from splitreason.curate.text import word_ngrams, words
from splitreason.io.eval_sets import EvalSet

DEFAULT_NGRAM = 8
MIN_SHORT_WORDS = 4  # shorter evaluation problems would match common phrases, not problems
MAX_NGRAMS_SHOWN = 10
MAX_PAIRS_PER_PROBLEM = 5  # contaminated and near-match pairs written per training problem
RULES = ("specific", "ngram")

# What each rule name in contamination.jsonl, curate.json and the report means.
RULE_MEANINGS = {
    "exact": "the evaluation problem itself, after normalisation",
    "contains": "holds the evaluation problem, after normalisation",
    "overlap": "repeats enough of what is specific to the evaluation problem, with its numbers",
    "near_match": "the evaluation problem's wording with other numbers",
    "below_threshold": "shares some specific n-grams, too few",
    "boilerplate_only": "shares only stock phrasing",
    "ngram": "shares at least --min-overlap word n-grams (stock phrasing included)",
}

Contamination = Literal["contaminated", "near_match", "clean"]
_STRENGTH = {"contaminated": 0, "near_match": 1, "clean": 2}

__all__ = ["DEFAULT_NGRAM", "MAX_NGRAMS_SHOWN", "RULE_MEANINGS", "RULES", "Judgement", "NgramRule", "Pair"]


@dataclass
class Pair:
    """A training problem against one evaluation problem: the verdict and why."""

    eval_set: str
    eval_id: str
    eval_problem: str
    verdict: Contamination
    rule: str  # exact, contains, overlap, near_match, below_threshold, boilerplate_only; ngram
    score: float  # specific rule: share of the evaluation problem's specific words; ngram rule: shared n-grams
    ngrams: list[str] = field(default_factory=list)  # the n-grams that counted
    boilerplate: list[dict] = field(default_factory=list)  # shared n-grams that did not: {ngram, eval_df, corpus_df}
    eval_numbers: list[str] = field(default_factory=list)
    missing_numbers: list[str] = field(default_factory=list)  # the evaluation problem's numbers the problem lacks

    def sort_key(self) -> tuple:
        return (_STRENGTH[self.verdict], -self.score, -len(self.ngrams), -len(self.boilerplate), self.eval_set,
                self.eval_id)


@dataclass
class Judgement:
    """What a rule decided about one training problem."""

    verdict: Contamination | None  # None: no n-gram in common with any evaluation problem
    pairs: list[Pair]  # to write: every contaminated / near-match pair (at most MAX_PAIRS_PER_PROBLEM), else the best
    candidates: int  # evaluation problems scored (sharing a specific n-gram)
    remove: bool  # contaminated, or a near match under --strict

    @classmethod
    def of(cls, pairs: list[Pair], *, strict: bool = False) -> Judgement:
        if not pairs:
            return cls(None, [], 0, False)
        pairs.sort(key=Pair.sort_key)
        verdict = pairs[0].verdict
        shown = [p for p in pairs if p.verdict == verdict][:MAX_PAIRS_PER_PROBLEM] if verdict != "clean" else pairs[:1]
        return cls(verdict, shown, len(pairs), verdict == "contaminated" or (strict and verdict == "near_match"))

    @property
    def best(self) -> Pair:
        return self.pairs[0]


def describe_sets(eval_sets: list[EvalSet], too_short: Counter) -> list[dict]:
    return [{"name": s.name, "source": s.source, "problems": len(s.problems), "too_short": too_short[s.name]}
            for s in eval_sets]


class NgramRule:
    """Today's rule: a training problem sharing at least `min_overlap` word n-grams with an evaluation
    problem is contaminated. An evaluation problem shorter than n words is indexed whole (if it has
    at least MIN_SHORT_WORDS words), so "Compute binom(31, 28)." is found inside a longer problem."""

    name = "ngram"
    strict = False

    def __init__(self, eval_sets: list[EvalSet], n: int = DEFAULT_NGRAM, min_overlap: int = 1):
        if n < 1 or min_overlap < 1:
            raise ValueError("n-gram size and minimum overlap must be at least 1")
        self.eval_sets, self.n, self.min_overlap = eval_sets, n, min_overlap
        self.threshold = min_overlap
        self._index: dict[str, list[int]] = defaultdict(list)  # n-gram -> indices into _problems
        self._problems: list[tuple[str, str, str]] = []  # (set name, id, text)
        self._lengths = {n}  # gram lengths to look for in training problems
        self.too_short: Counter = Counter()
        for eval_set in eval_sets:
            for problem in eval_set.problems:
                tokens = words(problem.problem)
                if len(tokens) < n:
                    if len(tokens) < MIN_SHORT_WORDS:
                        self.too_short[eval_set.name] += 1
                        continue
                    self._lengths.add(len(tokens))
                index = len(self._problems)
                self._problems.append((eval_set.name, problem.id, problem.problem))
                for gram in set(word_ngrams(tokens, n)):
                    self._index[gram].append(index)

    def judge(self, problem: str) -> Judgement:
        tokens = words(problem)
        shared: dict[int, list[str]] = defaultdict(list)
        for length in self._lengths:
            if len(tokens) < length:
                continue
            for gram in dict.fromkeys(" ".join(tokens[i : i + length]) for i in range(len(tokens) - length + 1)):
                for index in self._index.get(gram, ()):
                    shared[index].append(gram)
        pairs = [Pair(*self._problems[i], verdict="contaminated" if len(grams) >= self.min_overlap else "clean",
                      rule="ngram" if len(grams) >= self.min_overlap else "below_threshold",
                      score=len(grams), ngrams=grams) for i, grams in shared.items()]
        return Judgement.of(pairs)

    def learn_corpus(self, problems) -> None:
        """The n-gram rule weighs no phrasing against the corpus: a sample changes nothing."""

    def summary(self) -> dict:
        return {"rule": self.name, "ngram": self.n, "min_overlap": self.min_overlap, "strict": False,
                "eval_sets": describe_sets(self.eval_sets, self.too_short)}

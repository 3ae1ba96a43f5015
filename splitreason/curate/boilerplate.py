"""Which n-grams of the evaluation problems are stock phrasing, and so prove nothing when shared.

"m/n, where m and n are relatively prime positive integers. Find m+n" or "is not divisible by
the square of any prime" occur in many competition problems; a training problem that shares them
with an evaluation problem shares a style, not the problem. An n-gram is boilerplate when it is
frequent among *different* problems:

- across the evaluation sets: it occurs in at least `eval_df` evaluation problems that are not
  variants of each other (two evaluation problems with the same wording and other numbers are
  one wording, so they never make each other's n-grams boilerplate);
- across a sample of the corpus being curated (`corpus_sample`: its first distinct problems;
  optional): it occurs in at least `corpus_df` sampled problems that are not copies of an
  evaluation problem (a leaked problem copied ten times must not make its own n-grams look like
  stock phrasing).

Only n-grams of evaluation problems are counted (a sampled problem's other n-grams are never
kept), so the counts take no more memory than the evaluation index itself, however large the
sample (for AIME 2024, AIME 2025 and MATH-500, a few tens of thousands): that is why they are
held in memory rather than in SQLite beside the dedup index. `counts()` gives both numbers for a
gram, for the explanation of every decision.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from splitreason.curate.text import problem_key

DEFAULT_EVAL_DF = 3
DEFAULT_CORPUS_DF = 10
DEFAULT_BOILERPLATE_SAMPLE = 2000  # corpus problems read first to find stock phrasing
# The smallest sample measured to keep clean problems in stock phrasing (benchmarks/bench_decontam.py,
# README): with 2,000 none was removed, with 500 0.9 %, with none 10.4 %.
MIN_RELIABLE_SAMPLE = DEFAULT_BOILERPLATE_SAMPLE


@dataclass
class Boilerplate:
    eval_df: int = DEFAULT_EVAL_DF
    corpus_df: int = DEFAULT_CORPUS_DF
    eval_counts: Counter = field(default_factory=Counter)  # gram -> evaluation wordings holding it
    corpus_counts: Counter = field(default_factory=Counter)  # gram -> sampled corpus problems holding it
    corpus_sampled: int = 0  # problems read from the corpus sample
    corpus_variants: int = 0  # of those, variants of an evaluation problem (not counted)

    def __post_init__(self) -> None:
        if self.eval_df < 2 or self.corpus_df < 2:
            raise ValueError("boilerplate document frequencies must be at least 2 (one problem is not a style)")

    def __contains__(self, gram: str) -> bool:
        return self.eval_counts[gram] >= self.eval_df or self.corpus_counts[gram] >= self.corpus_df

    def counts(self, gram: str) -> dict:
        return {"ngram": gram, "eval_df": self.eval_counts[gram], "corpus_df": self.corpus_counts[gram]}

    def thin_sample_warning(self) -> str | None:
        """One line when the corpus sample was smaller than the size measured to be enough (a small
        input, or a small --boilerplate-sample), else None."""
        if self.corpus_sampled >= MIN_RELIABLE_SAMPLE:
            return None
        return (f"stock phrasing was learned from {self.corpus_sampled:,} distinct input problems, fewer than the "
                f"{MIN_RELIABLE_SAMPLE:,} the benchmark needed (with 500, 0.9 % of clean problems in stock phrasing "
                "were removed; with none, 10.4 %): check the removals in contamination.jsonl")

    def summary(self, grams, top: int = 20) -> dict:
        """Settings, how many of `grams` (the evaluation index's) are boilerplate, the most frequent ones."""
        boiler = [gram for gram in grams if gram in self]
        boiler.sort(key=lambda g: (-self.corpus_counts[g] - self.eval_counts[g], g))
        return {"eval_df": self.eval_df, "corpus_df": self.corpus_df, "corpus_sampled": self.corpus_sampled,
                "corpus_variants_skipped": self.corpus_variants, "eval_ngrams": len(grams),
                "boilerplate_ngrams": len(boiler), "most_frequent": [self.counts(g) for g in boiler[:top]]}


def corpus_sample(problems: Iterable[str], limit: int) -> Iterator[str]:
    """The first `limit` distinct problems (exact copies after normalisation counted once): the
    sample of the corpus whose stock phrasing is counted."""
    seen: set[bytes] = set()
    for problem in problems:
        key = problem_key(problem)
        if key not in seen:
            seen.add(key)
            yield problem
            if len(seen) >= limit:
                return

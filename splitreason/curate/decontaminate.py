"""Keep benchmark problems out of training data: word n-gram overlap with evaluation sets.

An evaluation set is a local .jsonl/.jsonl.gz/.parquet file or a hub dataset with a problem
field, or one of the names in EVAL_SETS. Every word n-gram (default n = 8, as open-r1's
decontamination script uses) of every evaluation problem goes into one index; a training
problem that shares at least `min_overlap` of them with an evaluation problem is matched, and
the match keeps the overlapping n-grams so a person can see why. An evaluation problem shorter
than n words is indexed whole (if it has at least MIN_SHORT_WORDS words), so "Compute
binom(31, 28)." is found inside a longer training problem too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from splitreason.curate.text import word_ngrams, words
from splitreason.io.readers import InputError, RawRow, is_hub_id, iter_rows

DEFAULT_NGRAM = 8
MIN_SHORT_WORDS = 4  # shorter evaluation problems would match common phrases, not problems
PROBLEM_FIELDS = ("problem", "question", "Problem", "Question", "prompt")
MAX_NGRAMS_SHOWN = 10

# name -> (hub id, split, problem field): the usual math benchmarks (the same sources open-r1
# decontaminates against).
EVAL_SETS: dict[str, tuple[str, str, str]] = {
    "aime24": ("HuggingFaceH4/aime_2024", "train", "problem"),
    "aime25": ("yentinglin/aime_2025", "train", "problem"),
    "math500": ("HuggingFaceH4/MATH-500", "test", "problem"),
}


@dataclass(frozen=True)
class EvalSet:
    name: str
    source: str
    problems: list[tuple[str, str]]  # (id within the set, problem text)


@dataclass
class Match:
    eval_set: str
    eval_id: str
    eval_problem: str
    ngrams: list[str] = field(default_factory=list)

    @property
    def overlap(self) -> int:
        return len(self.ngrams)


def _field_of(row: RawRow, wanted: str | None, source: str) -> str:
    if wanted is not None:
        if wanted not in row.data:
            raise InputError(f"evaluation set {source} has no field {wanted!r} (row {row.row}); fields: "
                             f"{', '.join(sorted(row.data))[:200]}")
        return wanted
    for name in PROBLEM_FIELDS:
        if name in row.data:
            return name
    raise InputError(f"evaluation set {source}: no problem field among {', '.join(PROBLEM_FIELDS)} (row {row.row}); "
                     "name it with --eval-field")


def load_eval_set(spec: str, problem_field: str | None = None) -> EvalSet:
    """Read an evaluation set named by `spec`: a name in EVAL_SETS, a local file, or a hub id."""
    split = "train"
    if spec in EVAL_SETS and not Path(spec).exists():
        source, split, default_field = EVAL_SETS[spec]
        problem_field = problem_field or default_field
        name = spec
    else:
        source = spec
        name = Path(spec).name.split(".")[0] if not is_hub_id(spec) else spec.split("/")[-1]
    problems: list[tuple[str, str]] = []
    column = problem_field
    for item in iter_rows(source, hub_split=split):
        if not isinstance(item, RawRow):
            raise InputError(f"evaluation set {source}: unreadable row {item.row} ({item.reason}: {item.detail})")
        column = column or _field_of(item, None, source)
        _field_of(item, column, source)
        text = item.data[column]
        if isinstance(text, str) and text.strip():
            identifier = item.data.get("id", item.data.get("unique_id", item.row))
            problems.append((str(identifier), text))
    if not problems:
        raise InputError(f"evaluation set {spec} holds no problems")
    return EvalSet(name=name, source=source, problems=problems)


class Decontaminator:
    def __init__(self, eval_sets: list[EvalSet], n: int = DEFAULT_NGRAM, min_overlap: int = 1):
        if n < 1 or min_overlap < 1:
            raise ValueError("n-gram size and minimum overlap must be at least 1")
        self.eval_sets, self.n, self.min_overlap = eval_sets, n, min_overlap
        self._index: dict[str, list[int]] = defaultdict(list)  # n-gram -> indices into _problems
        self._problems: list[tuple[str, str, str]] = []  # (set name, id, text)
        self._lengths = {n}  # gram lengths to look for in training problems
        for eval_set in eval_sets:
            for eval_id, text in eval_set.problems:
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

"""The default decontamination rule: what a training problem repeats of what is *specific* to an
evaluation problem, with the numbers checked apart from the wording.

Both problems are read by `math_words` (canonical text, answer instructions and a leading
"Problem 3." label taken out, digit runs as words of their own). Word n-grams (n = 5 by default)
are taken with every number written "#", so "the remainder when 7^100 is divided by 9" and "...
5^200 ... 11" have the same wording. A word of an evaluation problem E is *stock* when it lies
inside a boilerplate n-gram (curate/boilerplate.py: frequent across the evaluation sets or across
a sample of the corpus); the others are E's specific words. For a training problem P:

    score = share of E's specific words that lie inside an n-gram P shares with E

and the decision, strongest first:

    exact      P's words are E's words                                   contaminated
    contains   E's words occur in P, in order                            contaminated
    overlap    score >= min_overlap_ratio and E's numbers all occur in P  contaminated
    near_match the wording matches (score >= min_overlap_ratio, or E's words with numbers
               masked occur in P) but some of E's numbers do not: the same question about other
               numbers, another problem; reported, and removed only under --strict
    below_threshold / boilerplate_only   shared n-grams that are not enough, or only stock ones: kept

An evaluation problem shorter than n words is one n-gram of its own length, so it is found inside
a longer training problem (by `contains`). One of fewer than MIN_SHORT_WORDS words ("Compute
$7!$.") is too short to tell a problem from a phrase inside a longer text ("Find $x$." is in
every other problem), so it is matched whole only: a training problem that is that problem after
normalisation, signs kept (`short_problem_key`: "Compute $7!$." is not "Compute $7$."), is
`exact`; such evaluation problems are counted as `too_short`. A leak in which the specific part
of E is shorter than n words and is moved to another place (a sentence reordered) is not found:
no n-gram of it survives the move.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from splitreason.curate.boilerplate import Boilerplate
from splitreason.curate.decontaminate import Judgement, Pair, describe_sets
from splitreason.curate.text import math_words, short_problem_key
from splitreason.io.eval_sets import EvalSet

DEFAULT_SPECIFIC_NGRAM = 5  # measured: benchmarks/bench_decontam.py
DEFAULT_MIN_OVERLAP_RATIO = 0.5  # measured: the middle of the range (0.3-0.7) that lost nothing
MIN_SHORT_WORDS = 3
VARIANT_COVERAGE = 0.8  # an n-gram cover this large makes two problems variants of one wording
VARIANT_POSTINGS = 50  # grams held by more evaluation wordings than this do not propose variants
STOCK_VISITS = 2000  # holders of stock grams looked at to explain a problem sharing only those
NUMBER = "#"


@dataclass
class Reading:
    """A problem as the rule compares it."""

    words: list[str]
    masked: list[str]
    numbers: Counter

    @classmethod
    def of(cls, text: str) -> Reading:
        words = math_words(text)
        masked = [NUMBER if word.isdigit() else word for word in words]
        return cls(words, masked, Counter(str(int(word)) for word in words if word.isdigit()))

    def grams(self, n: int) -> set[str]:
        return {" ".join(self.masked[i : i + n]) for i in range(len(self.masked) - n + 1)}


@dataclass
class EvalEntry:
    set_name: str
    id: str
    text: str
    reading: Reading
    gram_length: int  # n, or the problem's own length when it is shorter
    starts: dict[str, list[int]]  # masked gram -> where it starts in the problem
    stock: bytearray = field(default_factory=bytearray)  # 1 for a word inside a boilerplate gram
    specific_words: int = 0  # words inside no boilerplate gram: the score's denominator

    @property
    def size(self) -> int:
        return len(self.reading.words)

    def marks(self, grams: Iterable[str]) -> bytearray:
        """1 for each word of this problem inside one of `grams`."""
        marks = bytearray(self.size)
        for gram in grams:
            for start in self.starts[gram]:
                marks[start : start + self.gram_length] = b"\x01" * self.gram_length
        return marks

    def weigh(self, boilerplate: Boilerplate) -> None:
        self.stock = self.marks(g for g in self.starts if g in boilerplate)
        self.specific_words = self.size - sum(self.stock)

    def specific_share(self, grams: Iterable[str]) -> float:
        """Share of this problem's specific words inside one of `grams`."""
        if not self.specific_words:
            return 0.0
        covered = self.marks(grams)
        return sum(1 for mark, stock in zip(covered, self.stock) if mark and not stock) / self.specific_words

    def share(self, grams: Iterable[str]) -> float:
        """Share of all this problem's words inside one of `grams`."""
        return sum(self.marks(grams)) / self.size


def _contains(inner: list[str], outer: list[str]) -> bool:
    return f" {' '.join(inner)} " in f" {' '.join(outer)} "


class SpecificRule:
    """Index of the evaluation problems; `judge(problem)` decides and explains."""

    name = "specific"

    def __init__(self, eval_sets: list[EvalSet], n: int = DEFAULT_SPECIFIC_NGRAM,
                 min_overlap_ratio: float = DEFAULT_MIN_OVERLAP_RATIO, boilerplate: Boilerplate | None = None,
                 strict: bool = False):
        if n < 2 or not 0 < min_overlap_ratio <= 1:
            raise ValueError("n-gram size must be at least 2 and the overlap ratio in (0, 1]")
        self.eval_sets, self.n, self.min_overlap_ratio, self.strict = eval_sets, n, min_overlap_ratio, strict
        self.threshold = min_overlap_ratio
        self.boilerplate = boilerplate or Boilerplate()
        self.entries: list[EvalEntry] = []
        self.too_short: Counter = Counter()  # per set: problems too short for n-grams, matched whole only
        self._short: dict[str, list[tuple[str, str, str, Reading]]] = defaultdict(list)  # short_problem_key -> problems
        self._index: dict[str, list[int]] = defaultdict(list)  # masked gram -> entries
        self._lengths = {n}  # gram lengths to look for in training problems
        for eval_set in eval_sets:
            for problem in eval_set.problems:
                self._add(eval_set.name, problem.id, problem.problem)
        for index, entry in enumerate(self.entries):
            for gram in entry.starts:
                self._index[gram].append(index)
        self._count_eval_wordings()
        self._weigh()

    def _add(self, set_name: str, eval_id: str, text: str) -> None:
        reading = Reading.of(text)
        if len(reading.words) < MIN_SHORT_WORDS:
            self.too_short[set_name] += 1
            self._short[short_problem_key(text)].append((set_name, eval_id, text, reading))
            return
        length = min(self.n, len(reading.words))
        self._lengths.add(length)
        starts: dict[str, list[int]] = defaultdict(list)
        for i in range(len(reading.masked) - length + 1):
            starts[" ".join(reading.masked[i : i + length])].append(i)
        self.entries.append(EvalEntry(set_name, eval_id, text, reading, length, dict(starts)))

    def _grams(self, reading: Reading) -> dict[str, None]:
        """The problem's grams of every length the index holds, in the problem's order."""
        return dict.fromkeys(gram for length in sorted(self._lengths) for gram in reading.grams(length))

    def _candidates(self, grams: dict[str, None]) -> dict[int, list[str]]:
        """Entries sharing a specific gram with the problem, or holding only stock grams whose first
        one the problem has; each with every gram it shares, in its own order. Stock grams are never
        followed to the entries holding them: there can be many."""
        found: set[int] = set()
        for gram in grams:
            if gram not in self._stock:
                found.update(self._index.get(gram, ()))
            found.update(self._all_stock.get(gram, ()))
        return {index: [g for g in self.entries[index].starts if g in grams] for index in sorted(found)}

    def _variant_of(self, shared: dict[int, list[str]], numbers: Counter) -> int | None:
        """An entry whose specific words (all its words, when it has none) `shared` covers at
        VARIANT_COVERAGE or more, with all its numbers: what the rule itself would call a copy,
        with a stricter threshold."""
        for index, grams in shared.items():
            entry = self.entries[index]
            words = entry.specific_words or entry.size
            if len(grams) * entry.gram_length < VARIANT_COVERAGE * words:
                continue  # too few grams to cover that much
            share = entry.specific_share(grams) if entry.specific_words else entry.share(grams)
            if share >= VARIANT_COVERAGE and not entry.reading.numbers - numbers:
                return index
        return None

    def _count_eval_wordings(self) -> None:
        """Evaluation document frequencies, counting variants of one wording once: problems with the
        same wording (numbers masked) and problems covering VARIANT_COVERAGE of each other's words."""
        parent = list(range(len(self.entries)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        wordings: dict[str, int] = {}
        for index, entry in enumerate(self.entries):
            parent[index] = wordings.setdefault(" ".join(entry.reading.masked), index)
        representatives = sorted(set(wordings.values()))
        holders: dict[str, list[int]] = defaultdict(list)
        for index in representatives:
            for gram in self.entries[index].starts:
                holders[gram].append(index)
        for index in representatives:
            entry = self.entries[index]
            shared = Counter(other for gram in entry.starts if len(holders[gram]) <= VARIANT_POSTINGS
                             for other in holders[gram])
            for other, count in shared.items():
                if other <= index:
                    continue
                candidate = self.entries[other]
                common = [g for g in candidate.starts if g in entry.starts]
                if any(count * e.gram_length >= VARIANT_COVERAGE * e.size and e.share(common) >= VARIANT_COVERAGE
                       for e in (entry, candidate)):  # either covers most of the other
                    parent[root(other)] = root(index)
        for gram, entries in self._index.items():
            self.boilerplate.eval_counts[gram] = len({root(i) for i in entries})

    def _weigh(self) -> None:
        self._stock = {gram for gram in self._index if gram in self.boilerplate}
        self._all_stock: dict[str, list[int]] = defaultdict(list)  # first gram -> entries with no specific gram
        for index, entry in enumerate(self.entries):
            entry.weigh(self.boilerplate)
            if all(gram in self._stock for gram in entry.starts):
                self._all_stock[next(iter(entry.starts))].append(index)

    # -- the corpus sample
    def learn_corpus(self, problems: Iterable[str]) -> None:
        """Count, over sampled corpus problems, the evaluation n-grams each holds, then weigh the
        evaluation problems again. A sampled problem that repeats most of what is specific to an
        evaluation problem (by the evaluation sets' counts alone) with its numbers is a copy of it,
        not an example of stock phrasing, and is skipped; the same wording with other numbers
        counts (a wording used for many problems is a template)."""
        counts = self.boilerplate.corpus_counts
        for problem in problems:
            self.boilerplate.corpus_sampled += 1
            reading = Reading.of(problem)
            grams = self._grams(reading)
            if self._variant_of(self._candidates(grams), reading.numbers) is not None:
                self.boilerplate.corpus_variants += 1
                continue
            counts.update(gram for gram in grams if gram in self._index)
        self._weigh()

    # -- deciding
    def judge(self, problem: str) -> Judgement:
        reading = Reading.of(problem)
        if len(reading.words) < MIN_SHORT_WORDS and self._short:  # only so short a problem can be one of them
            copies = self._short_copies(problem)
            if copies:
                return Judgement.of(copies, strict=self.strict)
        grams = self._grams(reading)
        shared = self._candidates(grams)
        decided = [(self._decide(self.entries[index], reading, entry_grams), index)
                   for index, entry_grams in shared.items()]
        if not decided:  # a kept problem sharing only stock phrasing is explained by one evaluation problem
            index = self._stock_neighbour(grams)
            if index is None:
                return Judgement.of([])
            entry = self.entries[index]
            shared[index] = [g for g in entry.starts if g in grams]
            decided.append((Pair(entry.set_name, entry.id, entry.text, "clean", "boilerplate_only", 0.0), index))
        judgement = Judgement.of([pair for pair, _ in decided], strict=self.strict)
        entry_of = {id(pair): index for pair, index in decided}
        for pair in judgement.pairs:
            index = entry_of[id(pair)]
            self._explain(pair, self.entries[index], reading, shared[index])
        return judgement

    def _short_copies(self, problem: str) -> list[Pair]:
        """The very short evaluation problems that `problem` is, whole."""
        key = short_problem_key(problem)
        pairs = []
        for set_name, eval_id, text, reading in self._short.get(key, ()):
            numbers = sorted(reading.numbers.elements(), key=_num)
            pairs.append(Pair(set_name, eval_id, text, "contaminated", "exact", 1.0, ngrams=[key],
                              eval_numbers=numbers))
        return pairs

    def _stock_neighbour(self, grams: dict[str, None]) -> int | None:
        """The evaluation problem sharing the most stock grams with the problem, looking at no more
        than STOCK_VISITS of their holders."""
        counts: Counter = Counter()
        visits = 0
        for gram in grams:
            holders = self._index.get(gram)
            if holders and visits < STOCK_VISITS:
                visits += len(holders)
                counts.update(holders)
        return min(counts, key=lambda i: (-counts[i], i)) if counts else None

    def _decide(self, entry: EvalEntry, reading: Reading, grams: list[str]) -> Pair:
        specific = [g for g in grams if g not in self._stock]
        score = entry.specific_share(specific)
        every_gram = len(grams) == len(entry.starts)
        if every_gram and reading.words == entry.reading.words:
            verdict, rule = "contaminated", "exact"
        elif every_gram and _contains(entry.reading.words, reading.words):
            verdict, rule = "contaminated", "contains"
        elif score >= self.min_overlap_ratio and not entry.reading.numbers - reading.numbers:
            verdict, rule = "contaminated", "overlap"
        elif score >= self.min_overlap_ratio or (every_gram and _contains(entry.reading.masked, reading.masked)):
            verdict, rule = "near_match", "near_match"
        else:
            verdict, rule = "clean", "below_threshold" if specific else "boilerplate_only"
        return Pair(entry.set_name, entry.id, entry.text, verdict, rule, round(score, 4))

    def _explain(self, pair: Pair, entry: EvalEntry, reading: Reading, grams: list[str]) -> None:
        """The n-grams that counted and those that did not (`grams` are in the evaluation problem's
        order), and the numbers."""
        pair.ngrams = [g for g in grams if g not in self._stock]
        pair.boilerplate = [self.boilerplate.counts(g) for g in grams if g in self._stock]
        pair.eval_numbers = sorted(entry.reading.numbers.elements(), key=_num)
        pair.missing_numbers = sorted((entry.reading.numbers - reading.numbers).elements(), key=_num)

    def summary(self) -> dict:
        return {"rule": self.name, "ngram": self.n, "min_overlap_ratio": self.min_overlap_ratio, "strict": self.strict,
                "eval_sets": describe_sets(self.eval_sets, self.too_short),
                "boilerplate": self.boilerplate.summary(list(self._index)),
                "warnings": [w for w in (self.boilerplate.thin_sample_warning(),) if w]}


def _num(value: str) -> tuple[int, str]:
    return len(value), value


"""The pieces of curation on their own: normal forms, duplicate checks, decontamination, sampling."""

from __future__ import annotations

import pytest

from splitreason.curate.decontaminate import NgramRule
from splitreason.io.eval_sets import EvalProblem, EvalSet
from splitreason.curate.dedup import ExactDedup, MinHashDedup
from splitreason.curate.filters import Language, prose_sample
from splitreason.curate.index import DedupIndex
from splitreason.curate.sampling import StratifiedSampler
from splitreason.curate.text import normalized_problem, problem_key
from splitreason.schemas import Trace

BASE = "Find the remainder when \\( 3^{100} \\) is divided by \\( 7 \\)."


@pytest.mark.parametrize("variant", [
    "find the remainder when $3^{100}$ is divided by $7$",
    "Problem 12. Find the remainder when \\(3^{100}\\) is divided by \\(7\\).",
    "Find  the remainder when $3^{100}$ is\ndivided by $7$ .",
])
def test_formatting_variants_share_the_exact_key(variant):
    assert problem_key(variant) == problem_key(BASE)


@pytest.mark.parametrize("other", [
    "Find the remainder when \\( 3^{100} \\) is divided by \\( 11 \\).",
    "Find the remainder when \\( 3^{100} \\) is multiplied by \\( 7 \\).",
    "Find the remainder when \\( 3^{10} \\) is divided by \\( 7 \\).",
])
def test_other_problems_keep_their_own_key(other):
    assert problem_key(other) != problem_key(BASE)


def test_normal_form_is_readable():
    assert normalized_problem("Problem 3. Let $x+y=\\dfrac{1}{2}$.") == "let x + y = \\ frac { 1 } { 2 }"


@pytest.fixture
def index(tmp_path):
    index = DedupIndex(tmp_path)
    yield index
    index.close()


def test_exact_dedup_names_the_first_problem(index):
    dedup = ExactDedup(index)
    assert dedup.check("a", BASE) is None
    duplicate = dedup.check("b", "find the remainder when $3^{100}$ is divided by $7$")
    assert (duplicate.kind, duplicate.kept, duplicate.similarity) == ("exact", "a", 1.0)
    assert dedup.check("a", BASE) is None  # the same record again is not its own duplicate


def test_near_duplicates_need_similar_words_and_the_same_numbers(index):
    dedup = MinHashDedup(index, threshold=0.5)
    long = ("A bag contains 5 red marbles and 7 green marbles. Two marbles are drawn at random without replacement. "
            "What is the probability that both marbles have the same color?")
    assert dedup.check("a", long) is None
    reworded = long.replace("at random", "randomly") + " Express it as a fraction."
    duplicate = dedup.check("b", reworded)
    assert duplicate is not None and duplicate.kept == "a" and 0.5 <= duplicate.similarity < 1.0
    assert dedup.check("c", long.replace("7 green", "9 green")) is None  # other numbers: another problem
    assert dedup.check("d", "Compute the area of a regular hexagon with side 5.") is None
    assert dedup.check("a", long) is None  # the same record again is not its own duplicate
    empty = DedupIndex()  # a scratch index of its own, removed on close
    assert MinHashDedup(empty, threshold=0.5, same_numbers=False).find(long) is None  # an empty index finds nothing
    empty.close()
    assert not empty.path.exists()


def test_decontamination_keeps_the_shared_ngrams_and_matches_short_problems_whole():
    eval_set = EvalSet("bench", "bench.jsonl", [EvalProblem("1", "Compute binom(31, 28)."),
                                                 EvalProblem("2", "Let a, b and c be the sides of a triangle with "
                                                             "perimeter 12 and area 6. Find the product abc of the "
                                                             "three sides."),
                                                 EvalProblem("3", "Find x.")])
    rule = NgramRule([eval_set], n=8)  # --rule ngram
    long = rule.judge("Here is a warm-up. Let $a$, $b$ and $c$ be the sides of a triangle with perimeter "
                      "12 and area 6; what is abc?")
    assert [(p.eval_id, p.score, p.rule) for p in long.pairs] == [("2", 10, "ngram")]  # 17 shared words: 10 8-grams
    assert long.remove and long.best.ngrams[0] == "let a b and c be the sides"
    short = rule.judge("First compute $\\binom{31}{28}$ and then add 5.")
    assert [p.eval_id for p in short.pairs] == ["1"]
    assert rule.judge("Find x and y.").verdict is None  # "Find x." is too short to index
    assert rule.too_short["bench"] == 1


def _trace(i: int, source: str, chars: int) -> Trace:
    return Trace(trace_id=f"t{i}:0", uuid=f"t{i}", generation_index=0, problem="p", text="x" * chars, source=source)


def test_stratified_quotas_are_proportional_with_largest_remainders():
    sampler = StratifiedSampler(target=10, seed=1, by=("source", "length"), length_buckets=(100,))
    for i in range(20):
        sampler.add(_trace(i, "a", 50))
    for i in range(20, 29):
        sampler.add(_trace(i, "b", 500))
    for i in range(29, 30):
        sampler.add(_trace(i, "c", 50))
    quotas = sampler.quotas()
    assert quotas == {("a", "<100"): 7, ("b", ">=100"): 3, ("c", "<100"): 0}
    chosen, report = sampler.chosen()
    assert len(chosen) == 10 and sum(r["taken"] for r in report) == 10
    bigger = StratifiedSampler(target=29, seed=1, by=("source",))
    for i in range(30):
        bigger.add(_trace(i, "a" if i < 20 else "b", 50))
    assert len(bigger.chosen()[0]) == 29


def test_language_reads_prose_not_math():
    language = Language(["en"])
    sample = prose_sample("<think>\nSo \\( x^2 + 3x = 10 \\) and $y=4$, then \\frac{1}{2} gives 0.5.\n</think>")
    assert "frac" not in sample and "x^2" not in sample and "So" in sample
    assert language.detect("$x$ " * 100) == (None, 0.0)  # no prose: undecided, and such a trace is kept
    code, probability = language.detect("Wir müssen alle ganzen Zahlen finden, deren Quadrat vier ist. Zuerst betrachten "
                                        "wir die positiven Zahlen und danach die negativen, dann zählen wir.")
    assert code == "de" and probability > 0.9


@pytest.mark.slow
def test_embedding_dedup_finds_paraphrases_with_the_same_numbers():
    from splitreason.curate.dedup import EmbeddingDedup

    dedup = EmbeddingDedup(threshold=0.85, batch_size=3)
    first = [("a", "A bag has 5 red and 7 green marbles; two are drawn without replacement. Find the probability "
                   "that they have the same colour."),
             ("b", "Find the area of a triangle with sides 13, 14 and 15.")]
    assert dedup.check_batch(first) == [None, None]
    later = dedup.check_batch([
        ("c", "Two marbles are taken without replacement from a bag holding 5 red and 7 green marbles. What is the "
              "probability both are the same colour?"),
        ("d", "A bag has 6 red and 7 green marbles; two are drawn without replacement. Find the probability that "
              "they have the same colour."),
        ("e", "Find the area of the triangle whose sides are 13, 14, 15."),
    ])
    assert [d.kept if d else None for d in later] == ["a", None, "b"]


@pytest.mark.slow
def test_embedding_dedup_stage_keeps_a_problems_generations_in_one_batch(tmp_path):
    """Two generations per problem and batches of two problems: a duplicate's cluster lists it
    once, and each of its generations is excluded once."""
    from splitreason.curate.dedup import ClusterBook, EmbeddingDedup
    from splitreason.curate.steps import EmbeddingDedupStage, Ledger
    from splitreason.io.jsonl import JsonlAppender

    problems = {"a": "Find the area of a triangle with sides 13, 14 and 15.",
                "b": "A bag has 5 red and 7 green marbles; two are drawn. Find the chance they match in colour.",
                "c": "Find the area of the triangle whose sides are 13, 14, 15."}
    traces = [Trace(trace_id=f"{uuid}:{g}", uuid=uuid, generation_index=g, problem=problem,
                    text=f"<think>{uuid} {g}</think>", origin="mem", origin_row=i)
              for i, (uuid, problem) in enumerate(problems.items()) for g in range(2)]
    ledger, book = Ledger(JsonlAppender(tmp_path / "exclusions.jsonl")), ClusterBook()
    stage = EmbeddingDedupStage(EmbeddingDedup(threshold=0.85, batch_size=2), book, ledger)

    kept = [trace.trace_id for trace in stage(iter(traces))]

    assert kept == ["a:0", "a:1", "b:0", "b:1"]
    assert ledger.step("dedup").excluded == {"semantic_duplicate": 2}
    [cluster] = book.records()
    assert cluster["kept"] == "a" and [member["uuid"] for member in cluster["removed"]] == ["c"]

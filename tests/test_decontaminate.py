"""Decontamination rules on their own: the specific-overlap rule removes every kind of leaked copy,
keeps problems that only share stock competition phrasing, reports the same wording with other
numbers as a near match, and explains each decision; today's n-gram rule is the contrast."""

from __future__ import annotations

import pytest

from splitreason.curate.boilerplate import Boilerplate, corpus_sample
from splitreason.curate.decontaminate import NgramRule
from splitreason.curate.specific import SpecificRule
from splitreason.curate.text import math_words, strip_instructions
from splitreason.io.eval_sets import EvalProblem, EvalSet
from tests.builders import CORPUS, DICE, EVAL, LEAKS, MN, URN


@pytest.fixture(scope="module")
def rule() -> SpecificRule:
    rule = SpecificRule([EvalSet("aime", "aime.jsonl", EVAL)], boilerplate=Boilerplate(corpus_df=10))
    rule.learn_corpus(CORPUS + [URN] * 12)  # a leaked problem copied twelve times is not stock phrasing
    return rule


def test_instructions_and_labels_are_read_away():
    assert strip_instructions("Problem 7. Find $x$. Please reason step by step, and put your final answer within "
                              "\\boxed{}.").strip() == "find  x ."
    assert math_words("Express $\\sin 3x$ in terms of $\\sin x$.") == ["express", "sin", "3", "x", "in", "terms",
                                                                       "of", "sin", "x"]  # a question stays


@pytest.mark.parametrize("kind", LEAKS)
def test_every_kind_of_leak_is_removed(rule, kind):
    text, expected_rule = LEAKS[kind]
    judgement = rule.judge(text)
    assert judgement.verdict == "contaminated" and judgement.remove, kind
    assert judgement.best.rule == expected_rule and judgement.best.eval_set == "aime"


def test_stock_phrasing_alone_is_kept_and_explained(rule):
    clean = f"{DICE} Let $q$ be the chance that the larger number is at least $5$. Then $q = \\frac{{m}}{{n}}$, {MN}"
    judgement = rule.judge(clean)
    assert judgement.verdict == "clean" and not judgement.remove
    best = judgement.best
    assert best.eval_id == "dice" and best.rule == "boilerplate_only" and best.score == 0.0 and best.ngrams == []
    stock = {g["ngram"]: g for g in best.boilerplate}
    assert "relatively prime positive integers find" in stock  # frequent across the evaluation problems
    assert stock["relatively prime positive integers find"]["eval_df"] >= 3
    assert any(g["corpus_df"] >= 10 for g in best.boilerplate if g["ngram"].startswith("fair six sided"))
    # today's rule removes it for the very same phrasing
    assert NgramRule([EvalSet("aime", "aime.jsonl", EVAL)]).judge(clean).remove


def test_the_corpus_sample_finds_stock_settings_the_evaluation_sets_cannot(rule):
    clean = f"{DICE} The probability that both dice show primes is $\\frac{{m}}{{n}}$, {MN}"
    without = SpecificRule([EvalSet("aime", "aime.jsonl", EVAL)])
    assert "fair six sided dice one" not in without.boilerplate  # the setting is in one evaluation problem only
    assert "fair six sided dice one" in rule.boilerplate
    assert rule.judge(clean).verdict == "clean"
    assert rule.boilerplate.corpus_variants == 12  # the urn's copies were skipped...
    assert all(gram not in rule.boilerplate for gram in rule.judge(URN).best.ngrams)  # ...so the urn stays specific


def test_variants_of_one_evaluation_wording_never_make_each_other_stock():
    urn_again = URN.replace("$4$ green", "$3$ green").replace("$16$ green", "$15$ green")  # other numbers
    longer = URN + (" Then the balls are put back, the urns are shaken, and a ball is drawn again from each urn, "
                    "twice more.")  # holds all of URN's words, URN less than 80 % of its own
    rule = SpecificRule([EvalSet("twins", "t.jsonl", [EvalProblem("a", URN), EvalProblem("b", urn_again),
                                                     EvalProblem("c", longer), *EVAL[:1]])])
    assert rule.boilerplate.eval_counts["an urn contains # green"] == 1  # one wording, three problems
    assert "an urn contains # green" not in rule.boilerplate
    assert rule.judge(LEAKS["reordered"][0]).best.rule == "overlap"


def test_the_corpus_sample_counts_each_problem_once():
    problems = ["Problem 1. Find $x$ if $x+1=2$.", "find x if x + 1 = 2", "Find $y$ if $y+1=3$.", "Find z."]
    assert list(corpus_sample(problems, 2)) == [problems[0], problems[2]]


def test_other_numbers_make_a_near_match_that_is_kept_unless_strict(rule):
    other = URN.replace("$4$ green", "$5$ green").replace("$16$ green", "$12$ green")
    judgement = rule.judge(other)
    assert judgement.verdict == "near_match" and not judgement.remove
    assert judgement.best.rule == "near_match" and judgement.best.missing_numbers == ["4", "16"]
    strict = SpecificRule([EvalSet("aime", "aime.jsonl", EVAL)], strict=True)
    assert strict.judge(other).remove
    assert strict.judge("Compute $\\dbinom{30}{8}$.").verdict == "near_match"  # a short problem's wording too


def test_short_evaluation_problems_are_matched_by_their_text(rule):
    judgement = rule.judge("First compute $\\binom{31}{28}$, then add $5$ to it.")
    assert judgement.remove and judgement.best.eval_id == "binom" and judgement.best.rule == "contains"
    assert rule.judge("Simplify $\\sqrt{242}$ and give the answer in simplest radical form.").best.eval_id == "sqrt"
    assert rule.judge("Find $x$ if $2x = 4$.").verdict is None  # "Find x." is too short to be told from a phrase
    assert rule.too_short["aime"] == 1 and rule.summary()["eval_sets"][0]["too_short"] == 1


def test_a_reworded_problem_below_the_threshold_is_kept_with_its_score(rule):
    partial = ("An urn contains $4$ green balls and $6$ blue balls. Two balls are drawn without replacement. "
               "What is the probability that they differ in color?")
    judgement = rule.judge(partial)
    assert judgement.verdict == "clean" and judgement.best.rule == "below_threshold"
    assert 0 < judgement.best.score < rule.min_overlap_ratio and judgement.best.ngrams


def test_the_ngram_rule_still_counts_shared_ngrams():
    rule = NgramRule([EvalSet("aime", "aime.jsonl", EVAL)], n=8, min_overlap=7)
    six = rule.judge("The probability is $\\frac{m}{n}$, where $m$ and $n$ are relatively prime positive integers.")
    assert six.verdict == "clean" and six.best.rule == "below_threshold" and six.best.score == 6
    assert rule.judge(URN).best.rule == "ngram" and rule.judge(URN).remove


NUMBERS_EVAL = [
    EvalProblem("sep", "Find the number of positive integers less than $10,\\!000$ whose digits sum to $9$."),
    EvalProblem("pens", "A store sells $1,000$ pens and $250$ pencils in a week. How many items does it sell in a year?"),
    EvalProblem("tank", "A tank is $\\frac12$ full and holds $30$ liters more than when it is $\\frac{1}{3}$ full. "
                        "Find the volume of the tank."),
    EvalProblem("coin", "A coin lands heads with probability $0.5$ on each of $7$ flips. Find the chance of exactly "
                        "$3$ heads."),
    EvalProblem("list", "Find the mean of the numbers $1, 2, 3$ and the median of the numbers $4, 5, 6, 7$."),
]


@pytest.mark.parametrize("eval_id, copy", [
    ("sep", "Find the number of positive integers less than $10000$ whose digits sum to $9$."),
    ("sep", "Find the number of positive integers less than $10{,}000$ whose digits sum to $9$."),
    ("sep", "Find the number of positive integers less than 10\u2009000 whose digits sum to 9. Show your work."),
    ("pens", "A store sells $1000$ pens and $250$ pencils in a week. How many items does it sell in a year?"),
    ("pens", "A store sells $1\\,000$ pens and $250$ pencils in a week. How many items does it sell in a year?"),
    ("tank", "A tank is $\\frac{1}{2}$ full and holds $30$ liters more than when it is $\\tfrac13$ full. "
             "Find the volume of the tank."),
    ("tank", "A tank is $\\dfrac1{2}$ full and holds $30$ liters more than when it is $\\frac{1}3$ full. "
             "Find the volume of the tank."),
    ("coin", "A coin lands heads with probability $.5$ on each of $7$ flips. Find the chance of exactly $3$ heads."),
    ("list", "Find the mean of the numbers $1,2,3$ and the median of the numbers $4,5,6,7$."),
])
def test_a_leak_with_its_numbers_written_another_way_is_removed(eval_id, copy):
    rule = SpecificRule([EvalSet("e", "e.jsonl", NUMBERS_EVAL)])
    judgement = rule.judge(copy)
    assert (judgement.verdict, judgement.remove, judgement.best.eval_id) == ("contaminated", True, eval_id)
    assert judgement.best.rule in ("exact", "contains") and judgement.best.missing_numbers == []


def test_numbers_are_read_whole_and_lists_stay_lists():
    assert math_words("less than $10,\\!000$") == ["less", "than", "10000"]
    assert math_words("$1\\,000\\,000$ and $2{,}500$") == ["1000000", "and", "2500"]
    assert math_words("$\\frac12 + .25$") == ["frac", "1", "2", "0", "25"]
    assert math_words("the numbers 1, 2, 3 and 4,5") == ["the", "numbers", "1", "2", "3", "and", "4", "5"]
    assert math_words("$1,0000$") == ["1", "0000"]  # not groups of three: two numbers
    rule = SpecificRule([EvalSet("e", "e.jsonl", NUMBERS_EVAL)])
    judgement = rule.judge(NUMBERS_EVAL[0].problem.replace("10,\\!000", "20,\\!000"))
    assert judgement.verdict == "near_match" and judgement.best.eval_numbers == ["9", "10000"]
    assert judgement.best.missing_numbers == ["10000"]
    listed = rule.judge("Find the mean of the numbers $1, 2, 4$ and the median of the numbers $4, 5, 6, 7$.")
    assert listed.verdict == "near_match" and listed.best.missing_numbers == ["3"]


def test_a_very_short_evaluation_problem_is_caught_whole_and_only_whole():
    evals = [EvalProblem("fact", "Compute $7!$."), *EVAL]  # EVAL holds "Find $x$." (tiny)
    rule = SpecificRule([EvalSet("math", "math.jsonl", evals)])
    for copy in ("Compute $7!$.", "compute \\( 7! \\)", "Problem 4. Compute $7!$. Put your final answer in a box."):
        judgement = rule.judge(copy)
        assert (judgement.verdict, judgement.remove, judgement.best.rule) == ("contaminated", True, "exact"), copy
        assert judgement.best.eval_id == "fact" and judgement.best.eval_numbers == ["7"]
    assert rule.judge("Find $x$").best.eval_id == "tiny"
    for other in ("Compute $7$.", "Compute $8!$.", "Compute $7!$ and $8!$.", "Find $x$ and $y$."):
        assert rule.judge(other).verdict is None, other  # another problem, or a phrase inside one
    assert rule.too_short["math"] == 2  # still counted: the report says how many were matched whole only


def test_a_thin_corpus_sample_is_warned_about():
    assert "from 17 distinct input problems" in Boilerplate(corpus_sampled=17).thin_sample_warning()
    assert Boilerplate(corpus_sampled=2000).thin_sample_warning() is None
    rule = SpecificRule([EvalSet("aime", "aime.jsonl", EVAL)])
    assert len(rule.summary()["warnings"]) == 1  # no sample at all (--boilerplate-sample 0)

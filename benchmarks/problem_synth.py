"""Synthetic math problems with known duplicates, for the dedup and scale benchmarks.

`make_problem(rng)` writes a competition-style problem from one of TEMPLATES with random
numbers and names, so two calls rarely give the same problem but often the same template.
Variants of a problem, each with a label a dedup step should agree with:

  reformatted  the same problem as another source writes it: ``$`` for ``\\(``, spacing commands,
               ``\\dfrac``, case, a "Problem 7." label, no final full stop        (a duplicate)
  reworded     reformatted and lightly edited: synonyms (find -> determine), a clause added
               or dropped, one typo                                                (a duplicate)
  renumbered   the same template with other numbers: another problem with another answer
                                                                                   (not a duplicate)
  different    a problem of another template                                       (not a duplicate)
"""

from __future__ import annotations

import random
import re

TEMPLATES = [
    "Find the remainder when \\( {a}^{{{n}}} \\) is divided by \\( {m} \\).",
    "How many positive integers \\( n \\le {N} \\) are divisible by \\( {a} \\) or \\( {b} \\) but not by \\( {c} \\)?",
    "Let \\( f(x) = {a}x^2 + {b}x + {c} \\). Find the sum of all real numbers \\( x \\) such that \\( f(f(x)) = {d} \\).",
    "A bag contains {r} red marbles and {g} green marbles. Two marbles are drawn at random without replacement. "
    "What is the probability that both marbles have the same color? Express your answer as a common fraction.",
    "In triangle \\( ABC \\), \\( AB = {a} \\), \\( BC = {b} \\), and \\( CA = {c} \\). Find the area of triangle \\( ABC \\).",
    "{name} walks from home to school at {a} km/h and returns along the same road at {b} km/h. The round trip takes "
    "{c} hours in total. How far is the school from {name}'s home, in kilometers?",
    "Let \\( r_1 \\) and \\( r_2 \\) be the roots of \\( x^2 - {a}x + {b} = 0 \\). Compute \\( r_1^3 + r_2^3 \\).",
    "Find the number of ordered pairs of positive integers \\( (x, y) \\) such that \\( {a}x + {b}y = {N} \\).",
    "The sequence \\( a_1, a_2, \\ldots \\) satisfies \\( a_1 = {a} \\) and \\( a_{{n+1}} = {b}a_n - {c} \\) for all "
    "\\( n \\ge 1 \\). Find the remainder when \\( a_{{{n}}} \\) is divided by \\( {m} \\).",
    "A rectangle has perimeter {p} and its length is {a} more than its width. A square has the same area as the "
    "rectangle. What is the side length of the square?",
    "How many ways are there to choose {a} books from a shelf of {N} books so that no two chosen books are adjacent?",
    "Let \\( x \\) and \\( y \\) be real numbers with \\( x + y = {a} \\) and \\( xy = {b} \\). Find \\( x^4 + y^4 \\).",
    "Compute \\( \\displaystyle\\sum_{{k=1}}^{{{N}}} \\dfrac{{1}}{{k(k+{a})}} \\).",
    "A fair die is rolled {a} times. What is the probability that the sum of the rolls is exactly {s}? "
    "Give your answer as a fraction in lowest terms.",
    "{name} has {a} coins, all nickels and dimes, worth {c} cents in total. How many dimes does {name} have?",
    "Find the smallest positive integer \\( n \\) such that \\( n \\equiv {a} \\pmod{{{m}}} \\) and "
    "\\( n \\equiv {b} \\pmod{{{p}}} \\).",
    "The vertices of a triangle are \\( ({a}, 0) \\), \\( (0, {b}) \\) and \\( ({c}, {d}) \\). Find the area of the "
    "triangle and the length of its longest side.",
    "Let \\( P(x) \\) be a polynomial with integer coefficients such that \\( P({a}) = {b} \\) and "
    "\\( P({c}) = {d} \\). Find the least possible value of \\( |P({N})| \\).",
    "A circle of radius {a} is inscribed in a right triangle whose hypotenuse has length {N}. Find the perimeter "
    "of the triangle.",
    "In how many ways can {a} identical balls be placed into {b} distinct boxes so that every box holds at least "
    "{c} balls?",
]
# Benchmark-style problems worded unlike TEMPLATES: a test set shares no template with training data.
EVAL_TEMPLATES = [
    "Positive reals \\( p \\) and \\( q \\) obey \\( p^2 + q^2 = {a} \\) while \\( pq = {b} \\); evaluate "
    "\\( (p - q)^2 \\).",
    "Twelve students sit around a round table; {a} of them wear hats. In how many seatings are no two hat "
    "wearers neighbours, if rotations count as the same seating?",
    "On a {a} by {b} grid a rook walks from the lower left corner to the upper right corner using only up and "
    "right moves. Count the walks that avoid the center square.",
    "Write \\( {N} \\) in base {m} and report the sum of its base-{m} digits.",
    "For which integers \\( k \\) between 1 and {N} inclusive is \\( k^2 + {a}k + {b} \\) a perfect square? "
    "Report how many there are.",
    "A cone has slant height {a} and base radius {b}. A sphere sits inside the cone touching its base and "
    "lateral surface. Determine the sphere's radius.",
    "Triangle \\( XYZ \\) is isosceles with \\( XY = XZ = {a} \\) and \\( YZ = {b} \\). Point \\( W \\) "
    "lies on \\( YZ \\) with \\( XW \\perp YZ \\). Evaluate \\( XW^2 \\).",
    "Three dice are thrown together. Which total is more likely, {a} or {b}, and by what ratio?",
]
NAMES = ["Alice", "Bilal", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ines", "Jonas", "Kemal", "Lena"]
SYNONYMS = [("Find", "Determine"), ("Compute", "Calculate"), ("How many", "What is the number of"),
            ("such that", "so that"), ("positive integers", "positive whole numbers"), ("at random", "randomly"),
            ("real numbers", "reals"), ("in total", "altogether")]
CLAUSES = [" Justify your answer.", " (Give an exact value.)", " Show your reasoning.", " Simplify fully."]


def fill(template: str, rng: random.Random) -> str:
    """The template with random numbers (a..s: 2-97, n: 10-500, N: 100-5000) and a name."""
    values = {key: rng.randint(2, 97) for key in ("a", "b", "c", "d", "m", "p", "r", "g", "s")}
    values.update(n=rng.randint(10, 500), N=rng.randint(100, 5000), name=rng.choice(NAMES))
    return template.format(**values)


def make_problem(rng: random.Random, template: int | None = None) -> tuple[int, str]:
    """(template index, problem text)."""
    index = rng.randrange(len(TEMPLATES)) if template is None else template
    return index, fill(TEMPLATES[index], rng)


def make_eval_problem(rng: random.Random) -> str:
    return fill(rng.choice(EVAL_TEMPLATES), rng)


def reformatted(problem: str, rng: random.Random) -> str:
    text = re.sub(r"\\\( ?(.*?) ?\\\)", lambda m: f"${m.group(1)}$", problem) if rng.random() < 0.7 else problem
    text = text.replace("\\frac", "\\dfrac") if rng.random() < 0.5 else text
    text = re.sub(r" = ", "=", text) if rng.random() < 0.5 else text
    if rng.random() < 0.4:
        text = text.lower() if rng.random() < 0.3 else text
    if rng.random() < 0.5:
        text = f"Problem {rng.randint(1, 30)}. " + text
    if rng.random() < 0.5 and text.endswith("."):
        text = text[:-1]
    return "  ".join(text.split(" ")) if rng.random() < 0.3 else text


def reworded(problem: str, rng: random.Random) -> str:
    text = reformatted(problem, rng)
    swaps = [pair for pair in SYNONYMS if pair[0] in text]
    for old, new in rng.sample(swaps, min(len(swaps), 2)):
        text = text.replace(old, new, 1)
    if rng.random() < 0.5:
        text += rng.choice(CLAUSES)
    words = text.split(" ")
    long_words = [i for i, word in enumerate(words) if word.isalpha() and len(word) > 5]
    if long_words and rng.random() < 0.5:
        i = rng.choice(long_words)
        word = words[i]
        cut = rng.randrange(1, len(word) - 1)
        words[i] = word[:cut] + word[cut + 1:]  # one dropped letter
    return " ".join(words)


def renumbered(template: int, rng: random.Random) -> str:
    return make_problem(rng, template)[1]

"""A labelled decontamination set: evaluation problems, their leaked variants, and clean problems in
the same stock competition phrasing.

Problems are built from *families*: a few sentences of a problem of its own (with random numbers,
problem_synth.fill) followed, in AIME style, by a stock closing sentence ("... where m and n are
relatively prime positive integers. Find m+n.", "Find the remainder when N is divided by 1000.")
and sometimes opened by a stock setting ("Two fair six-sided dice are rolled.") or followed by an
answer instruction ("Express your answer as a common fraction."). EVAL_FAMILIES make evaluation
problems (long AIME-like ones and short MATH-like ones); TRAIN_FAMILIES make other problems in the
same phrasing. `split(families, part)` gives the tuning half or the held-out half of each list,
so a rule tuned on one half is reported on families it never saw; the answer instructions are
split the same way.

Each labelled training problem has a label (leaked or clean) and a kind:

  leaked  verbatim              the evaluation problem as it is
          respaced              other LaTeX delimiters, spacing commands, \\dfrac, line breaks, case
          prefix                another problem-number label ("Problem 7.", "12)", "Question 3:")
          instructions_added    an answer instruction added (front or end)
          instructions_removed  the evaluation problem's answer instruction left out
          reordered             two sentences in the other order
          numbers_reformatted   the same numbers written another way: thousands separators ("1,000",
                                "1\\,000", "1{,}000", "1,\\!000"), "\\frac ab" for "\\frac{a}{b}", ".5"
                                for "0.5" (problems holding such a number)
  clean   boilerplate           another family's problem ending (and sometimes starting) with the
                                very stock sentences of an evaluation problem
          renumbered            the evaluation problem's wording with all its numbers changed
          renumbered_one        ... with one number changed (still another problem)
          other                 a problem of another family (or of problem_synth.TEMPLATES)
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from problem_synth import TEMPLATES, fill

# Stock closing sentences, by the kind of answer they ask for.
STOCK_TAILS = {
    "mn": ["This probability can be written as $\\frac{{m}}{{n}}$, where $m$ and $n$ are relatively prime positive "
           "integers. Find $m+n$.",
           "The answer can be expressed in the form $\\frac{{m}}{{n}}$, where $m$ and $n$ are relatively prime "
           "positive integers. Find $m+n$.",
           "Then $\\frac{{m}}{{n}}$ is this value, where $m$ and $n$ are relatively prime positive integers. Find "
           "$m+n$."],
    "sqrt": ["This can be written in the form $m\\sqrt{{n}}$, where $m$ and $n$ are positive integers and $n$ is not "
             "divisible by the square of any prime. Find $m+n$.",
             "It can be written as $\\frac{{m\\sqrt{{n}}}}{{p}}$, where $m$, $n$, and $p$ are positive integers, $m$ "
             "and $p$ are relatively prime, and $n$ is not divisible by the square of any prime. Find $m+n+p$."],
    "mod": ["Find the remainder when $N$ is divided by $1000$.",
            "What is the remainder when $N$ is divided by $1000$?"],
    "count": ["Find the number of such arrangements.", "How many such sequences are there?"],
}
STOCK_SETUPS = [
    "Two fair six-sided dice, one red and one blue, are rolled.",
    "Let $ABC$ be a triangle with $AB = 13$, $BC = 14$, and $CA = 15$.",
    "A fair coin is flipped $10$ times, and the sequence of heads and tails is recorded.",
    "Let $\\omega$ be a circle with center $O$ and radius $6$.",
    "An integer is chosen uniformly at random from the set $\\{{1, 2, 3, \\ldots, 100\\}}$.",
    "A standard deck of $52$ cards is shuffled and the top five cards are dealt.",
]
# Answer instructions: the first list for tuning, the second held out.
INSTRUCTIONS = (
    ["Express your answer as a common fraction.", "Give your answer in simplest radical form.",
     "Please reason step by step, and put your final answer within \\boxed{{}}.",
     "Round your answer to the nearest hundredth.", "Put your final answer in a box."],
    ["Return your final response within \\boxed{{}}.", "Write your answer in lowest terms.",
     "Enter your answer as a decimal to the nearest tenth.", "Express the result in simplest form.",
     "Your answer should be an integer."],
)
PREFIXES = ["Problem {k}.", "{k}.", "{k})", "Question {k}:", "Task {k}.", "## Problem {k}", "Example {k}."]


@dataclass(frozen=True)
class Family:
    sentences: tuple[str, ...]  # templates, in order
    tail: str | None  # a STOCK_TAILS kind, or None
    setup: bool = False  # opened by a stock setting sentence


def _family(tail: str | None, *sentences: str, setup: bool = False) -> Family:
    return Family(tuple(sentences), tail, setup)


EVAL_FAMILIES = [
    _family("mn", "Two fair ${a}$-sided dice are rolled.", "Let $P$ be the probability that the product of the "
            "numbers rolled is a multiple of ${b}$."),
    _family("sqrt", "Triangle $ABC$ has side lengths $AB={a}$, $BC={b}$, and $CA={c}$.", "Point $D$ lies on "
            "$\\overline{{BC}}$ so that $\\overline{{AD}}$ bisects $\\angle BAC$.", "Consider the length of $AD$."),
    _family("mn", "Let $S$ be the set of positive integer divisors of ${N}$.", "Three numbers are chosen "
            "independently and at random with replacement from $S$.", "Let $P$ be the probability that the first "
            "divides the second and the second divides the third."),
    _family("sqrt", "A regular ${a}$-gon is inscribed in a circle of radius ${b}$.", "Let $K$ be the area of the "
            "region inside the circle but outside the polygon."),
    _family("mod", "Let $N$ be the number of ordered triples $(x, y, z)$ of positive integers with "
            "$x + y + z = {N}$ and $x < y < z$."),
    _family("mod", "Let $a_0 = {a}$ and $a_{{k+1}} = a_k^2 - {b} a_k + {c}$ for $k \\ge 0$.", "Let $N$ be the sum "
            "of the terms $a_0, a_1, \\ldots, a_{{{n}}}$."),
    _family("mn", "A point $P$ is chosen uniformly at random in the interior of a rectangle with side lengths "
            "${a}$ and ${b}$.", "Let $q$ be the probability that $P$ is closer to the center of the rectangle than "
            "to any of its vertices.", setup=False),
    _family("mod", "Each of the ${a}$ members of a club votes for exactly one of ${b}$ candidates.", "Every "
            "candidate receives at least ${c}$ votes.", "Let $N$ be the number of possible vote counts."),
    _family("sqrt", "A sphere of radius ${a}$ is tangent to all six edges of a regular tetrahedron.", "Consider "
            "the volume of the tetrahedron."),
    _family(None, "Find the least positive integer $n > {c}$ for which $n^2 + {a}n + {b}$ is divisible by ${m}$."),
    _family("mn", "Circles $\\omega_1$ and $\\omega_2$ with radii ${a}$ and ${b}$ are externally tangent at "
            "point $T$.", "A common external tangent touches $\\omega_1$ at $P$ and $\\omega_2$ at $Q$.", "Let $d$ "
            "be the distance from $T$ to the line $PQ$."),
    _family("mn", "The polynomial $f(x) = x^3 - {a}x^2 + {b}x - {c}$ has roots $r$, $s$, and $t$.", "Let $Q$ be "
            "the value of $\\frac{{1}}{{r^2}} + \\frac{{1}}{{s^2}} + \\frac{{1}}{{t^2}}$."),
    _family("mn", "A bug starts at a vertex of a cube.", "At each step it moves along an edge to one of the three "
            "adjacent vertices, each with equal probability.", "Let $p$ be the probability that after ${a}$ moves "
            "the bug is back where it started."),
    _family("sqrt", "Positive real numbers $x$, $y$, $z$ satisfy $xyz = {a}$ and $x + y + z = {b}$.", "Let $M$ be "
            "the largest possible value of $xy + yz + zx$."),
    _family("mn", "An urn contains ${r}$ red balls and ${g}$ blue balls.", "Balls are drawn one at a time without "
            "replacement until the urn is empty.", "Let $p$ be the probability that the last ball drawn is red and "
            "the one before it is blue."),
    _family(None, "Find the sum of all positive integers $n$ such that $n^2 - {a}n + {b}$ is a perfect square."),
    _family("mn", "In convex quadrilateral $ABCD$, $AB = {a}$, $BC = {b}$, $CD = {c}$, and $\\angle ABC = "
            "\\angle BCD = 90^\\circ$.", "The diagonals $AC$ and $BD$ meet at $E$.", "Let $h$ be the distance from "
            "$E$ to side $BC$."),
    _family("mod", "A sequence satisfies $b_1 = {a}$, $b_2 = {b}$, and $b_{{n+2}} = b_{{n+1}} + b_n$ for all "
            "$n \\ge 1$.", "Let $N$ be the sum of its first ${n}$ terms."),
    _family("count", "There are ${a}$ chairs in a row.", "Each of ${b}$ people chooses a chair so that no person "
            "sits next to two other people."),
    _family(None, "Let $z$ be a complex number with $|z| = {a}$.", "Find the largest possible real part of "
            "$({b} + {c}i)z + \\frac{{{d} + {m}i}}{{z}}$."),
    _family("mn", "A frog starts at $0$ on the number line and makes jumps of length $1$ or ${a}$, each chosen "
            "with equal probability.", "Let $p$ be the probability that the frog lands exactly on ${b}$."),
    _family(None, "Pyramid $OABCD$ has square base $ABCD$ with side ${a}$ and congruent edges $OA$, $OB$, $OC$, "
            "$OD$ of length ${b}$.", "Let $\\theta$ be the dihedral angle formed by faces $OAB$ and $OBC$.",
            "Given that $\\cos \\theta = m + \\sqrt{{n}}$ with integers $m$ and $n$, find $m + n$."),
    _family("mn", "Two of the numbers rolled are added.", "Let $P$ be the probability that their sum is greater "
            "than ${a}$ but less than ${b}$.", setup=True),
    _family("sqrt", "Point $P$ lies inside the triangle at distance ${a}$ from side $BC$.", "Consider the "
            "distance from $P$ to the incenter of the triangle.", setup=True),
    # short problems of their own between a stock setting and a stock tail
    _family("mn", "Let $P$ be the probability that the sum is ${a}$.", setup=True),
    _family("sqrt", "Let $I$ be the incenter.", "Consider $AI$.", setup=True),
    _family("mn", "Let $p$ be the probability that it is divisible by ${a}$ but not by ${b}$.", setup=True),
    _family("mod", "Let $N$ be the product of the ${a}$ smallest outcomes.", setup=True),
    _family("mn", "Let $p$ be the probability that exactly ${a}$ are heads.", setup=True),
    _family("sqrt", "Chord $AB$ has length ${a}$.", setup=True),
    _family("sqrt", "Let $r$ be its inradius.", setup=True),
    _family("mn", "Let $p$ be the chance of ${a}$ sixes.", setup=True),
    _family("mod", "Let $N$ be the ${a}$th smallest sum.", setup=True),
    _family("sqrt", "Let $G$ be the centroid.", "Consider $BG$.", setup=True),
]
SHORT_EVAL_FAMILIES = [
    _family(None, "Compute $\\dbinom{{{a}}}{{{b}}}$."),
    _family(None, "Simplify $\\sqrt{{{N}}}$."),
    _family(None, "Compute $\\tan {n}^\\circ$."),
    _family(None, "Find the units digit of ${a}^{{{n}}}$."),
    _family(None, "How many positive divisors does ${N}$ have?"),
    _family(None, "Solve for $x$: ${a}x + {b} = {c}$."),
    _family(None, "What is $\\frac{{{a}}}{{{b}}}$ of ${N}$?"),
    _family(None, "Evaluate $\\lceil {a}.{b}^2 \\rceil$."),
]
TRAIN_FAMILIES = [
    _family("mn", "Let $P$ be the probability that the larger of the two numbers is at least ${a}$.", setup=True),
    _family("mn", "A committee of ${a}$ people is chosen at random from ${b}$ women and ${c}$ men.", "Let $p$ be "
            "the probability that the committee has more women than men."),
    _family("sqrt", "Square $ABCD$ has side length ${a}$.", "Point $E$ lies on side $CD$ with $DE = {b}$.",
            "Consider the radius of the circle through $A$, $B$, and $E$."),
    _family("mod", "Let $N$ be the number of subsets of $\\{{1, 2, \\ldots, {n}\\}}$ whose elements sum to a "
            "multiple of ${a}$."),
    _family("mn", "Points $A$ and $B$ are chosen independently and uniformly on a circle.", "Let $q$ be the "
            "probability that chord $AB$ is longer than ${a}$ times the radius divided by ${b}$."),
    _family("count", "A ${a} \\times {b}$ board is tiled with dominoes.", "No two dominoes may form a "
            "$2 \\times 2$ square."),
    _family("mod", "Let $N = \\sum_{{k=1}}^{{{N}}} k^{{{a}}}$."),
    _family("sqrt", "The trapezoid $ABCD$ has $AB \\parallel CD$, $AB = {a}$, $CD = {b}$, and legs of length "
            "${c}$.", "Consider the length of its diagonals."),
    _family("mn", "{name} and a friend each pick an integer from $1$ to ${a}$ at random.", "Let $p$ be the "
            "probability that the two integers differ by at most ${b}$."),
    _family("mod", "Define $a_n = {a}^n + {b}^n$ for $n \\ge 1$.", "Let $N = a_{{{n}}}$."),
    _family("count", "Each cell of a ${a} \\times {a}$ grid is colored red or blue.", "Every row and every column "
            "contains exactly ${b}$ red cells."),
    _family("sqrt", "Let $M$ be the midpoint of side $BC$.", "Consider the distance from $M$ to the foot of the "
            "altitude from $A$, scaled by ${a}$.", setup=True),
    _family("mn", "Exactly ${a}$ of the cards drawn are hearts.", "Let $p$ be the probability of this event when "
            "${b}$ cards are drawn.", setup=True),
    _family("mod", "Let $N$ be the number of positive integers less than ${N}$ whose base-${a}$ representation has "
            "no digit ${b}$."),
    _family("mn", "A spinner has ${a}$ equal sectors numbered $1$ through ${a}$.", "It is spun ${b}$ times.",
            "Let $p$ be the probability that the numbers spun are strictly increasing."),
    _family("sqrt", "A cone has base radius ${a}$ and height ${b}$.", "Consider the radius of the largest sphere "
            "that fits inside the cone."),
    _family("mn", "The number of heads is compared with ${a}$.", "Let $p$ be the probability that it is larger.",
            setup=True),
    _family("mod", "Let $N$ be the number of ways to write ${N}$ as an ordered sum of ${a}$ positive odd "
            "integers."),
    _family("count", "Each of ${a}$ guests hangs a hat on one of ${b}$ distinct hooks.", "No hook holds more "
            "than ${c}$ hats."),
    _family("sqrt", "Chord $PQ$ of the circle has length ${a}$.", "Consider the distance from $O$ to the chord.",
            setup=True),
    _family("mn", "A monkey types ${a}$ letters at random from the letters A, B, and C.", "Let $p$ be the "
            "probability that no two adjacent letters are equal."),
    _family("mod", "The sequence $c_n$ satisfies $c_1 = {a}$ and $c_{{n+1}} = c_n^2 + {b}$.", "Let $N = c_{{{c}}}$."),
    _family("mn", "Let $p$ be the probability that the integer chosen is divisible by ${a}$ or ${b}$.",
            setup=True),
    _family("count", "A necklace has ${a}$ beads, each red, green, or blue.", "Rotations of the necklace count as "
            "the same."),
]


def split(families: list, part: str) -> list:
    """The tuning half (even positions) or the held-out half (odd positions)."""
    return families[0::2] if part == "tune" else families[1::2]


@dataclass
class Problem:
    family: int  # index into its family list
    sentences: list[str]  # filled, in order (setup, own sentences, stock tail, instruction)
    setup: str | None = None  # the stock setting's template, if any
    tail: str | None = None  # the stock tail's template, if any
    instruction: int | None = None  # position of the instruction sentence, if any

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def write_problem(families: list[Family], index: int, rng: random.Random, instructions: list[str],
                  setup: str | None = None, tail: str | None = None, instruction: bool | None = None) -> Problem:
    family = families[index]
    sentences = [fill(sentence, rng) for sentence in family.sentences]
    setup = (setup or rng.choice(STOCK_SETUPS)) if family.setup else None
    tail = (tail or rng.choice(STOCK_TAILS[family.tail])) if family.tail is not None else None
    sentences = ([fill(setup, rng)] if setup else []) + sentences + ([fill(tail, rng)] if tail else [])
    problem = Problem(index, sentences, setup, tail)
    if instruction if instruction is not None else rng.random() < 0.4:
        problem.instruction = len(problem.sentences)
        problem.sentences.append(fill(rng.choice(instructions), rng))
    return problem


def sharing_stock(problem: Problem, eval_families: list[Family], train: list[Family], rng: random.Random,
                  instructions: list[str]) -> str | None:
    """Another family's problem with the very stock setting and tail of `problem` (None if it has none)."""
    wanted = eval_families[problem.family]
    if wanted.tail is None and not wanted.setup:
        return None
    fits = [i for i, f in enumerate(train) if f.tail == wanted.tail and (f.setup or not wanted.setup)] or \
           [i for i, f in enumerate(train) if f.tail == wanted.tail]
    if not fits:
        return None
    return write_problem(train, rng.choice(fits), rng, instructions, setup=problem.setup, tail=problem.tail).text


# -- leaked variants
def respaced(text: str, rng: random.Random) -> str:
    text = re.sub(r"\$([^$]*)\$", lambda m: f"\\( {m.group(1)} \\)", text) if rng.random() < 0.6 else text
    text = text.replace("\\frac", "\\dfrac") if rng.random() < 0.5 else text
    text = re.sub(r"\s*([=+<>])\s*", lambda m: rng.choice([m.group(1), f" {m.group(1)} ", f"\\,{m.group(1)}\\,"]), text)
    text = re.sub(r"(?<=[.?]) ", lambda m: rng.choice([" ", "  ", "\n", "\n\n"]), text)
    return text.upper() if rng.random() < 0.1 else text.lower() if rng.random() < 0.2 else text


def prefixed(text: str, rng: random.Random) -> str:
    return rng.choice(PREFIXES).format(k=rng.randint(1, 30)) + " " + text


def with_instruction(problem: Problem, rng: random.Random, instructions: list[str]) -> str:
    added = fill(rng.choice(instructions), rng)
    return f"{added} {problem.text}" if rng.random() < 0.25 else f"{problem.text} {added}"


def without_instruction(problem: Problem) -> str:
    return " ".join(s for i, s in enumerate(problem.sentences) if i != problem.instruction)


def reordered(problem: Problem, rng: random.Random) -> str | None:
    body = [s for i, s in enumerate(problem.sentences) if i != problem.instruction]
    if len(body) < 2:
        return None
    i = rng.randrange(len(body) - 1)
    body[i], body[i + 1] = body[i + 1], body[i]
    return " ".join(body)


THOUSANDS_SEPARATORS = [",", "\\,", "{,}", ",\\!"]


def numbers_reformatted(text: str, rng: random.Random) -> str | None:
    """The same numbers written another way (None when the problem has no number that can be): each
    number of four digits or more with a thousands separator, single-digit fractions as "\\frac12",
    decimals below one without their leading zero."""
    separator = rng.choice(THOUSANDS_SEPARATORS)

    def grouped(match: re.Match) -> str:
        digits = match.group()
        head = len(digits) % 3 or 3
        return separator.join([digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)])

    changed = re.sub(r"(?<![\d.])\d{4,}(?![\d.])", grouped, text)
    changed = re.sub(r"\\(d?frac)\{(\d)\}\{(\d)\}", lambda m: f"\\{m.group(1)}{m.group(2)}{m.group(3)}", changed)
    changed = re.sub(r"(?<![\d.])0\.(?=\d)", ".", changed)
    return changed if changed != text else None


# -- clean problems
def renumbered(problem: Problem, rng: random.Random, *, only_one: bool) -> str | None:
    """The same sentences with other numbers: all of the problem's own numbers, or one of them (None
    when it has none)."""
    numbers = list(re.finditer(r"\d+", problem.text))
    own = [m for m in numbers if m.group() not in _stock_numbers()]
    if not own:
        return None
    targets = [rng.choice(own)] if only_one else own
    text = problem.text
    for match in sorted(targets, key=lambda m: -m.start()):
        old = int(match.group())
        new = old + rng.choice([-1, 1]) * rng.randint(1, max(2, old // 3))
        text = text[: match.start()] + str(max(new, 2) if new != old else old + 1) + text[match.end():]
    return text


def _stock_numbers() -> set[str]:
    return {n for sentence in STOCK_SETUPS + [t for tails in STOCK_TAILS.values() for t in tails]
            for n in re.findall(r"\d+", sentence)}


def other_problem(rng: random.Random, train: list[Family], instructions: list[str]) -> str:
    if rng.random() < 0.3:
        return fill(rng.choice(TEMPLATES), rng)
    return write_problem(train, rng.randrange(len(train)), rng, instructions).text

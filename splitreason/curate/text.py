"""How curation reads a problem statement: one normal form for exact dedup, words for n-grams.

Two statements of the same problem rarely differ in substance; they differ in LaTeX delimiters
(``$x$``, ``\\(x\\)``), spacing commands (``\\,``, ``\\quad``), ``\\dfrac`` for ``\\frac`` (and
``\\dbinom`` for ``\\binom``), case, whitespace, a leading "Problem 3." label and a final full
stop. `problem_key` removes exactly those, so exact dedup never merges two problems that differ
in a number or a word. Numbers are read as one way of writing them: thousands separators between
digit groups of three ("10,000", "10{,}000", "10\\,000", "10,\\!000", a thin space) are dropped,
"\\frac12" is "\\frac{1}{2}" and ".5" is "0.5", so that "$10,\\!000$" is the number 10000 and not
the numbers 10 and 0. A comma followed by a space ("1, 2, 3") or by other than exactly three
digits ("1,2,3") separates a list and stays.

`words` is the lower-cased run of letters and digits that n-gram based steps (MinHash near-dup
detection, the n-gram decontamination rule) compare: punctuation and LaTeX markup do not count.
Decontamination's specific-overlap rule reads a problem with `math_words`: answer-format
instructions ("Express your answer as a common fraction.", "put your final answer within
\\boxed{}") taken out, and digit runs apart from letters ("3x" is "3", "x"), so that a number
can be told from the wording around it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_DELIMITERS = re.compile(r"\\[()\[\]]|\$+")
_SPACING = re.compile(r"\\(?:[,;:! ]|quad\b|qquad\b|left\b|right\b|displaystyle\b|textstyle\b)|~")
_FRAC_VARIANTS = re.compile(r"\\[dt](frac|binom)\b")
# A group of 1-3 digits followed by groups of exactly three, each after a thousands separator:
# ",", "{,}", "\,", ",\!", "\!", "\ ", a thin or no-break space (before NFKC turns those into spaces).
_THOUSANDS_SEPARATOR = r"(?:\{,\}|,\\!|\\[,!]|\\ |,|[\u2009\u202f\u00a0])"
_GROUPED_NUMBER = re.compile(r"(?<![\d.,])\d{1,3}(?:" + _THOUSANDS_SEPARATOR + r"\d{3})+(?!\d|,\d)")
_SEPARATOR = re.compile(_THOUSANDS_SEPARATOR)
# \frac12, \tfrac1{2}, \dfrac{1}2, \frac ab: LaTeX's one-character arguments, braced as \frac{1}{2}.
_FRAC_ARGUMENT = r"\s*([a-zA-Z\d]|\{[^{}]*\})"
_SHORT_FRAC = re.compile(r"\\[dt]?(frac|binom)(?![a-zA-Z])" + _FRAC_ARGUMENT + _FRAC_ARGUMENT)
_BARE_DECIMAL = re.compile(r"(?<![\w.])\.(?=\d)")  # ".5": a decimal without its leading zero
_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:(?:problem|example|task|exercise|question)\s*)?\d+(?:\.\d+)*\s*[.):]\s+",
                    re.IGNORECASE)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TRAILING_PUNCTUATION = frozenset(".!?;:,")
_MATH_WORD = re.compile(r"\d+|[^\W\d_]+")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+|\n+")
_VERB = r"(?:please\s+|now\s+|then\s+)?"
# A sentence that only says how to write or present the answer. Each alternative names the
# answer, a format or a presentation word, so that "Express sin 3x in terms of sin x." (a
# question) stays.
_INSTRUCTION = re.compile(
    r"^[(\[]?\s*" + _VERB + r"(?:"
    r"(?:express|give|write|enter|present|leave|state|put|provide|report|return|round|box|list|separate)\b.*"
    r"\b(?:answers?|responses?)\b"
    r"|(?:express|give|write|leave|round|simplify)\s+(?:it\s+|this\s+|them\s+|the\s+result\s+|each\s+)?(?:as|in|to)\s+"
    r"(?:a\s+|an\s+|the\s+)?(?:common\s+fraction|fraction\s+in|simplest|lowest\s+terms|decimal|mixed\s+number|"
    r"interval\s+notation|radical\s+form|exact\s+form|nearest)"
    r"|round\s+to\s+the\s+nearest\b|(?:give|find)\s+an\s+exact\s+value\b|simplify\s+(?:fully|completely)\b"
    r"|reason\s+step\s+by\s+step\b|solve\s+the\s+following\b|think\s+step\s+by\s+step\b"
    r"|(?:justify|explain)\s+your\s+(?:answer|reasoning|solution)\b|show\s+(?:your|all)\s+(?:work|reasoning|steps)\b"
    r"|your\s+(?:final\s+)?answer\b|the\s+(?:final\s+)?answer\s+(?:should|must|is\s+an?\s+integer)\b|answer\s*:"
    r")")


def numbers_written_one_way(text: str) -> str:
    """Thousands separators dropped, \\frac12 braced as \\frac{1}{2}, ".5" as "0.5"."""
    text = _GROUPED_NUMBER.sub(lambda m: _SEPARATOR.sub("", m.group()), text)
    text = _SHORT_FRAC.sub(lambda m: f"\\{m.group(1)}{_braced(m.group(2))}{_braced(m.group(3))}", text)
    return _BARE_DECIMAL.sub("0.", text)


def _braced(argument: str) -> str:
    return argument if argument.startswith("{") else "{" + argument + "}"


def canonical(text: str) -> str:
    """NFKC, case-folded, numbers written one way, without LaTeX delimiters, spacing commands or a
    leading label."""
    text = unicodedata.normalize("NFKC", numbers_written_one_way(text)).casefold()
    text = _LABEL.sub("", text, count=1)
    text = _FRAC_VARIANTS.sub(r"\\\1", text)
    text = _SPACING.sub(" ", text)
    return _DELIMITERS.sub(" ", text)


def normalized_problem(text: str) -> str:
    """The problem as tokens joined by single spaces ("x+y" and "x + y" read the same)."""
    tokens = _TOKEN.findall(canonical(text))
    while tokens and tokens[-1] in _TRAILING_PUNCTUATION:
        tokens.pop()
    return " ".join(tokens)


def problem_key(text: str) -> bytes:
    """Exact-dedup key: a digest of `normalized_problem` (16 bytes whatever the problem's size)."""
    return hashlib.blake2b(normalized_problem(text).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def words(text: str) -> list[str]:
    """Letters-and-digits words of the canonical text."""
    return _WORD.findall(canonical(text))


def numbers_key(text: str) -> bytes:
    """Digest of the numbers of the problem, in order: in math, other numbers make another problem."""
    joined = " ".join(_NUMBER.findall(canonical(text)))
    return hashlib.blake2b(joined.encode("ascii", "replace"), digest_size=8).digest()


def word_ngrams(tokens: list[str], n: int) -> list[str]:
    """Word n-grams as strings; a text shorter than n words is one gram of all its words."""
    if len(tokens) < n:
        return [" ".join(tokens)] if tokens else []
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def strip_instructions(text: str) -> str:
    """The canonical text without sentences that only say how to present the answer."""
    kept = [sentence for sentence in _SENTENCE_END.split(canonical(text))
            if sentence.strip() and not _INSTRUCTION.match(sentence.strip())]
    return _LABEL.sub("", " ".join(kept), count=1)  # "Solve the following. Problem 3. ..." has a label inside


def short_problem_key(text: str) -> str:
    """A very short problem whole, as `math_words` reads it but with its signs kept ("compute 7 !"
    is not "compute 7"): the text without answer instructions, tokens joined by single spaces, a
    closing full stop, question mark, colon or comma left out ("!" is a factorial as often as not)."""
    tokens = _TOKEN.findall(strip_instructions(text))
    while tokens and tokens[-1] in ".?;:,":
        tokens.pop()
    return " ".join(tokens)


def math_words(text: str) -> list[str]:
    """Words of the problem without answer instructions; digit runs are words of their own."""
    return _MATH_WORD.findall(strip_instructions(text))

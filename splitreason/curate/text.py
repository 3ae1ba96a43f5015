"""How curation reads a problem statement: one normal form for exact dedup, words for n-grams.

Two statements of the same problem rarely differ in substance; they differ in LaTeX delimiters
(``$x$``, ``\\(x\\)``), spacing commands (``\\,``, ``\\quad``), ``\\dfrac`` for ``\\frac``, case,
whitespace, a leading "Problem 3." label and a final full stop. `problem_key` removes exactly
those, so exact dedup never merges two problems that differ in a number or a word.
`words` is the lower-cased run of letters and digits that n-gram based steps (MinHash
near-dup detection, decontamination) compare: punctuation and LaTeX markup do not count.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_DELIMITERS = re.compile(r"\\[()\[\]]|\$+")
_SPACING = re.compile(r"\\(?:[,;:! ]|quad\b|qquad\b|left\b|right\b|displaystyle\b|textstyle\b)|~")
_FRAC_VARIANTS = re.compile(r"\\[dt]frac\b")
_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:(?:problem|example|task|exercise|question)\s*)?\d+(?:\.\d+)*\s*[.):]\s+",
                    re.IGNORECASE)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TRAILING_PUNCTUATION = frozenset(".!?;:,")


def canonical(text: str) -> str:
    """NFKC, case-folded, without LaTeX delimiters, spacing commands or a leading label."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _LABEL.sub("", text, count=1)
    text = _FRAC_VARIANTS.sub(r"\\frac", text)
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

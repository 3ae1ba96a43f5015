"""Find the final answer in a model's text: the string the grader compares with the gold.

math-verify finds LaTeX only inside math delimiters and, left to itself, takes any number it can
find in plain text, so a reasoning trace cut off mid-way would "answer" with whatever number it
last wrote. We pick the answer ourselves, in this order, and hand math-verify only that string:

1. the last non-empty `\\boxed{...}` (or `\\fbox{...}`, or `\\boxed 5`), braces balanced;
2. the last "answer is X" / "Answer: X" / "final answer: X" (X on the same line, or the next
   non-empty line when the phrase ends its line), X cut at the end of its sentence and taken from
   its math delimiters where it has them;
3. a text that is one short line, and not a sentence, is itself the answer (predictions made
   elsewhere are often just "25" or "\\frac{14}{3}").

When the text holds a `</think>`, the part after the last one is searched first (that is where a
reasoning model states its answer), then the whole text. Nothing found is `None`: no answer.
Pure string work, linear in the text (no regex that can backtrack badly).
"""

from __future__ import annotations

import re

__all__ = ["answer_start", "extract_answer"]

MAX_ANSWER_CHARS = 300  # a longer "answer" is a sentence, not an answer
SHORT_TEXT_CHARS = 120  # a one-line text at most this long is taken as the answer itself

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_THINK_END = "</think>"
# "the answer is X", "Answer: X", "final answer = X"; or a heading "**Final Answer**" ending its line
_ANSWER_PHRASE = re.compile(r"\banswer(?:\s+(?:is|was)\b\s*:?|\s*[:=])|\bfinal\s+answer\b(?=[\s*_:.]*$)",
                            re.IGNORECASE | re.MULTILINE)
_MATH_SPANS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
# where an answer stated in prose ends: a full stop, or a clause that explains it ("12, because ...")
_SENTENCE_END = re.compile(r"\.(?:\s|$)|,?\s+(?:because|since|so|which|as|thus|therefore|hence)\b", re.IGNORECASE)
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")  # a word, not a LaTeX command like \frac
_DECORATION = " \t*_`'\"“”"  # markdown bold/italics and quotes around an answer


def extract_answer(text: str) -> str | None:
    """The final answer stated in `text`, as written (LaTeX kept), or None when it states none."""
    if not isinstance(text, str) or not text.strip():
        return None
    regions = [text]
    if _THINK_END in text:
        regions.insert(0, text.rsplit(_THINK_END, 1)[1])
    for region in regions:
        answer = _last_boxed(region) or _after_answer_phrase(region)
        if answer:
            return answer
    return _short_text(text)


def answer_start(text: str) -> int | None:
    """Where the final answer is stated in `text` (the index of its last `\\boxed`, else of its last
    "answer is" phrase), or None when it states none: what GRPO's format reward checks tags against."""
    if extract_answer(text) is None:
        return None
    boxes = [text.rfind(command) for command in _BOX_COMMANDS]
    if max(boxes) >= 0:
        return max(boxes)
    phrases = list(_ANSWER_PHRASE.finditer(text))
    return phrases[-1].start() if phrases else 0  # a one-line text is its own answer


def _last_boxed(text: str) -> str | None:
    """Content of the last non-empty box whose braces close."""
    positions = sorted((match.start(), command) for command in _BOX_COMMANDS
                       for match in re.finditer(re.escape(command), text))
    for start, command in reversed(positions):
        content = _box_content(text, start + len(command))
        if content:
            return content
    return None


def _box_content(text: str, index: int) -> str | None:
    if index < len(text) and text[index].isalpha():  # \boxedfoo is another command
        return None
    while index < len(text) and text[index] in " \t":
        index += 1
    if index >= len(text):
        return None
    if text[index] != "{":  # "\boxed 5": up to the next space or delimiter
        match = re.match(r"[^\s$]+", text[index:])
        return _clean(match.group(0)) if match else None
    depth, begin = 0, index + 1
    for position in range(index, len(text)):
        char = text[position]
        if char == "{" and text[position - 1] != "\\":
            depth += 1
        elif char == "}" and text[position - 1] != "\\":
            depth -= 1
            if depth == 0:
                return _clean(text[begin:position])
    return None  # cut off before its closing brace: not an answer


def _after_answer_phrase(text: str) -> str | None:
    matches = list(_ANSWER_PHRASE.finditer(text))
    for match in reversed(matches):
        rest = text[match.end():]
        line, _, following = rest.partition("\n")
        if not line.strip(_DECORATION):  # "Final Answer:\n\n\\[ 25 \\]"
            line = next((candidate for candidate in following.split("\n") if candidate.strip()), "")
        answer = _first_math_span(line) or _clean(_SENTENCE_END.split(line, maxsplit=1)[0])
        if answer:
            return answer
    return None


def _first_math_span(line: str) -> str | None:
    earliest: tuple[int, str] | None = None
    for opening, closing in _MATH_SPANS:
        start = line.find(opening)
        if start < 0 or (earliest is not None and start >= earliest[0]):
            continue
        end = line.find(closing, start + len(opening))
        if end > start:
            earliest = (start, line[start + len(opening):end])
    return _clean(earliest[1]) if earliest else None


def _short_text(text: str) -> str | None:
    stripped = text.strip()
    if "\n" in stripped or len(stripped) > SHORT_TEXT_CHARS:
        return None
    if any(command in stripped for command in _BOX_COMMANDS) or _ANSWER_PHRASE.search(stripped):
        return None  # it tried to state an answer and did not finish (an unclosed or empty box)
    if len(_PROSE_WORD.findall(stripped)) >= 3:
        return None  # a sentence ("still thinking about it"), not an answer
    return _first_math_span(stripped) or _clean(stripped)


def _clean(answer: str) -> str | None:
    answer = answer.strip().strip(_DECORATION).strip()
    if answer.startswith("$") and answer.endswith("$"):
        answer = answer.strip("$").strip()
    answer = answer.rstrip(".;,").strip()
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return None
    return answer

"""Turn an LLM judge's answer into excerpts, robustly.

Models wrap JSON in code fences, add prose after it, and write LaTeX backslashes into JSON
strings without escaping them: "\\sqrt" is then an invalid escape, and "\\frac" silently
decodes to a form feed followed by "rac". We repair what is unambiguous and offer the
aligner alternative readings for the rest; the trace decides which reading is right.
"""

from __future__ import annotations

import json
import re
from typing import Any

from splitreason.judges.base import Excerpt
from splitreason.schemas.annotate import AnnotateSettings

# The answer schema. Strings and arrays are bounded so that grammar-constrained decoding ends.
# Defaults declared once, in AnnotateSettings (--max-spans, --max-excerpt-chars).
MAX_SPANS: int = AnnotateSettings.default("max_spans")
MAX_EXCERPT_CHARS: int = AnnotateSettings.default("max_excerpt_chars")
MAX_REASON_CHARS = 300


def answer_schema(
    *, bounded: bool = True, max_spans: int = MAX_SPANS, max_excerpt_chars: int = MAX_EXCERPT_CHARS
) -> dict[str, Any]:
    """JSON schema of the judge's answer; `bounded=False` for APIs that reject maxLength."""
    text: dict[str, Any] = {"type": "string"}
    reason: dict[str, Any] = {"type": "string"}
    spans: dict[str, Any] = {"type": "array"}
    if bounded:
        text["maxLength"] = max_excerpt_chars
        reason["maxLength"] = MAX_REASON_CHARS
        spans["maxItems"] = max_spans
    spans["items"] = {
        "type": "object",
        "properties": {"text": text, "reason": reason},
        "required": ["text", "reason"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"spans": spans},
        "required": ["spans"],
        "additionalProperties": False,
    }


# Keys under which models put the list of quotes.
_SPANS_KEYS = ("spans", "excerpts", "difficult_spans")


class UnparseableAnswer(ValueError):
    """The answer holds no JSON object of the expected shape."""


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
# A backslash that does not start a valid JSON escape (e.g. "\sqrt", "\(", "\{", "\underline"):
# double it. Only the backslash is replaced, so the letter after it (the "u" of "\underline") stays.
_INVALID_ESCAPE = re.compile(r'(?<!\\)((?:\\\\)*)\\(?!["\\/bfnrt]|u[0-9a-fA-F]{4})')
# A backslash followed by letters reads as a LaTeX command when taken literally.
_LATEX_ESCAPE = re.compile(r'(?<!\\)((?:\\\\)*)\\(?=[a-zA-Z]{2,})')
# LaTeX commands whose first letter is also a JSON escape letter (\b \f \n \r \t).
_COMMANDS_AFTER_CONTROL = {
    "\b": ("eta", "inom", "ar", "oxed", "mod", "egin", "ig", "igl", "igr", "ot", "ullet", "ackslash", "f", "m"),
    "\f": ("rac", "orall", "loor", "box"),
    "\n": ("eq", "e", "abla", "ot", "u", "eg", "i", "geq", "leq", "mid", "otin", "ewline", "ormalsize"),
    "\r": ("ho", "ight", "angle", "floor", "ceil", "m", "Rightarrow"),
    "\t": ("heta", "imes", "an", "ext", "extbf", "extit", "o", "au", "op", "riangle", "ilde", "frac", "anh", "herefore"),
}


def _strip_fences(text: str) -> str:
    match = _FENCE.search(text)
    return match.group(1) if match else text


def _repair_invalid_escapes(text: str) -> str:
    return _INVALID_ESCAPE.sub(lambda m: (m.group(1) or "") + "\\\\", text)


def _looks_like_answer(value: Any) -> bool:
    """A spans object, or a non-empty list of quotes: not an inner item nor a stray "[1]"."""
    if isinstance(value, dict):
        return any(key in value for key in _SPANS_KEYS)
    return isinstance(value, list) and bool(value) and all(isinstance(item, (dict, str)) for item in value)


def _decode_first_object(text: str) -> tuple[Any, str]:
    """Decode the first JSON value that starts at a '{' or '[': returns (value, its source text).

    A value shaped like an answer wins over one that is not, so that when the raw text fails
    on an invalid escape in a later item, the first item's own object is not taken for the
    answer: the repaired text's whole object is.
    """
    decoder = json.JSONDecoder(strict=False)  # strict=False: raw newlines inside strings are fine
    fallback: tuple[Any, str] | None = None
    for candidate in (text, _repair_invalid_escapes(text)):
        for match in re.finditer(r"[\[{]", candidate):
            try:
                value, end = decoder.raw_decode(candidate, match.start())
            except json.JSONDecodeError:
                continue
            if isinstance(value, (dict, list)):
                if _looks_like_answer(value):
                    return value, candidate[match.start() : end]
                if fallback is None:
                    fallback = value, candidate[match.start() : end]
    if fallback is not None:
        return fallback
    raise UnparseableAnswer("no JSON object found in the answer")


_CONTROL = re.compile("[\b\f\n\r\t]")


def repair_control_characters(text: str) -> str:
    """Undo JSON escapes that swallowed a LaTeX backslash: form feed + "rac" -> "\\frac".

    Form feeds and backspaces never occur in real traces, so they are always restored; a tab,
    carriage return or newline is restored only when the letters after it spell a LaTeX command.
    """
    if not _CONTROL.search(text):
        return text  # the common case: nothing to repair, no per-character loop
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        tails = _COMMANDS_AFTER_CONTROL.get(char)
        if tails is not None:
            rest = text[i + 1 : i + 12]
            word = re.match(r"[A-Za-z]*", rest).group(0)
            if char in "\b\f" or word in tails:
                out.append("\\" + {"\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}[char])
                i += 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


def _items(value: Any) -> list[Any]:
    if isinstance(value, dict):
        for key in _SPANS_KEYS:
            if key in value:
                value = value[key]
                break
        else:
            raise UnparseableAnswer(f"JSON object has no 'spans' key (keys: {sorted(value)[:5]})")
    if not isinstance(value, list):
        raise UnparseableAnswer("'spans' is not a list")
    return value


def parse_answer(answer: str) -> list[Excerpt]:
    """Excerpts from a judge's answer; raises UnparseableAnswer when there is nothing usable."""
    if not answer or not answer.strip():
        raise UnparseableAnswer("empty answer")
    body = _strip_fences(answer)
    value, source = _decode_first_object(body)
    items = _items(value)
    # A literal reading of the same JSON: every backslash before letters kept as LaTeX.
    try:
        literal_items = _items(json.loads(_LATEX_ESCAPE.sub(lambda m: (m.group(1) or "") + "\\\\", source), strict=False))
    except (json.JSONDecodeError, UnparseableAnswer):
        literal_items = []
    if len(literal_items) != len(items):
        literal_items = [None] * len(items)

    excerpts: list[Excerpt] = []
    for item, literal in zip(items, literal_items):
        text, reason = _text_and_reason(item)
        if not text.strip():
            continue
        alternatives: list[str] = []
        for reading in (repair_control_characters(text), _text_and_reason(literal)[0] if literal is not None else ""):
            if reading and reading != text and reading not in alternatives:
                alternatives.append(reading)
        excerpts.append(Excerpt(text=text, reason=reason[:MAX_REASON_CHARS], alternatives=tuple(alternatives)))
    if items and not excerpts:
        # e.g. {"spans": [1, 2]} or only blank quotes: not an answer to route, one to ask again.
        raise UnparseableAnswer("the spans hold no quoted text")
    return excerpts


_SPANS_OPENING = re.compile(r'"(?:spans|excerpts|difficult_spans)"\s*:\s*\[')


def complete_spans(answer: str) -> list[Excerpt]:
    """The spans a truncated answer finished (an answer cut at max_tokens): every item of its spans
    list that closes before the cut, read as `parse_answer` reads a whole answer; [] when none did."""
    text = _repair_invalid_escapes(answer)  # item boundaries are found in the repaired reading
    opening, closing = _SPANS_OPENING.search(text), "]}"  # {"spans": [ ... anywhere (prose, fences)
    if opening is None:
        opening, closing = re.match(r"\s*(?:```(?:json|JSON)?\s*)?\[", text), "]"  # a bare list of quotes
        if opening is None:
            return []
    decoder = json.JSONDecoder(strict=False)
    position, last_end = opening.end(), None
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        try:
            _, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            break
        position = last_end = end
    if last_end is None:
        return []
    try:
        return parse_answer(text[:last_end] + closing)
    except UnparseableAnswer:
        return []


def _text_and_reason(item: Any) -> tuple[str, str]:
    if isinstance(item, str):
        return item, ""
    if isinstance(item, dict):
        text = item.get("text", item.get("excerpt", item.get("quote", "")))
        reason = item.get("reason", item.get("why", ""))
        return (text if isinstance(text, str) else ""), (reason if isinstance(reason, str) else "")
    return "", ""

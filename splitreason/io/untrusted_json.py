"""Parse JSON that someone else wrote (an input row, a request body) without letting it stop us.

`json.loads` fails in ways beyond `JSONDecodeError` on hostile or odd input: a number of more than
4,300 digits raises a plain `ValueError` (Python's limit on int conversion), deep nesting raises
`RecursionError`. Each becomes a `BadJson` with a short reason code and one line of detail, for
the caller to turn into a reject (readers) or a 400 (the review server). Only what the *content*
causes is caught here; the caller's own code runs outside, so a bug of ours is never taken for
bad input.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["MAX_ROW_DEPTH", "BadJson", "json_depth", "parse_untrusted_json", "too_deep"]

# How deeply an input row may nest (a flat object is 1). Explicit, so every reader and every
# command gives the same answer for the same row: without it the limit was Python's recursion
# limit less whatever the call stack held at parse time, and curate refused rows annotate took.
# OpenR1-Math rows nest 3 or 4 levels; 200 leaves room for any honest data.
MAX_ROW_DEPTH = 200


class BadJson(ValueError):
    """Content that is not usable JSON: `reason` is a code (invalid_json, number_too_large,
    nested_too_deeply), `detail` one line for a person."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def json_depth(value: Any, limit: int) -> int:
    """How deeply `value` nests (a scalar is 0, [] is 1), counted without recursion and only up to
    `limit + 1`: enough to refuse what is too deep."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return deepest
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_untrusted_json(text: str | bytes, *, max_depth: int | None = None) -> Any:
    """The value `text` holds, or `BadJson`. `max_depth` also refuses deeper nesting than that."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadJson("invalid_json", f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except UnicodeDecodeError as error:
        raise BadJson("invalid_utf8", f"invalid UTF-8 byte at offset {error.start}") from None
    except RecursionError:
        if max_depth is not None:  # deeper than the recursion limit is deeper than max_depth too
            raise too_deep(max_depth) from None
        raise BadJson("nested_too_deeply", "JSON nested too deeply (more than Python's recursion limit, "
                      f"about {sys.getrecursionlimit()} levels)") from None
    except ValueError as error:  # only the int-conversion limit reaches here from json.loads
        raise BadJson("number_too_large", f"a number has too many digits ({_first_line(error)})") from None
    if max_depth is not None and json_depth(value, max_depth) > max_depth:
        raise too_deep(max_depth)
    return value


def too_deep(max_depth: int) -> BadJson:
    """The one answer for a value nested deeper than `max_depth`, however it was found."""
    return BadJson("nested_too_deeply", f"nested more than {max_depth} levels deep")


def _first_line(error: BaseException) -> str:
    text = str(error).split(":", 1)[0]
    return text.strip() or type(error).__name__

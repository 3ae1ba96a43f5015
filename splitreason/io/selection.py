"""Validate raw OpenR1 rows and select the generations to annotate as `Trace`s.

Each `RawRow` is validated first. Problems with the row as a whole give one
`Reject` with ``trace_id=None``:

* ``missing_field``: ``uuid``, ``problem`` or ``generations`` is absent or null;
* ``bad_field``: ``uuid`` not a non-empty string, ``problem`` not a non-empty string,
  ``generations`` not a non-empty list of strings, a per-generation list
  (``correctness_math_verify``, ``finish_reasons``, ``is_reasoning_complete``) that is
  present but not a list, has the wrong length or ill-typed elements, or ``answer`` /
  ``source`` / ``problem_type`` / ``question_type`` of a non-scalar type or a number that is not
  finite (``-Infinity``, ``NaN``);
* ``bad_trace_id``: the row's trace ids (``{uuid}:{index}``) would hold a control character
  (newline, escape, NUL ...), a line separator or a lone surrogate, or be longer than
  `MAX_TRACE_ID_CHARS` (what the review UI accepts), so every selected trace can be reviewed.

``correctness_count`` (carried on the trace for curation filters) must be a non-negative
integer or null (``bad_field`` otherwise). Fields the selection does not use (``solution``,
``correctness_llama``, ``messages`` ...) are not checked at all.

Then every generation is checked against the `Selection` flags, in this order:

1. ``require_correct``: ``correctness_math_verify[i] is True``
   (not selected: ``incorrect``; list or element null: ``unknown_correctness``);
2. ``require_stop``: ``finish_reasons[i] == "stop"``
   (``not_stop``; null: ``unknown_finish_reason``);
3. ``require_complete``: ``is_reasoning_complete[i] is True``
   (``incomplete``; null: ``unknown_completeness``).

A generation that fails a required flag is *not selected*: no reject, only the
first failing reason is counted in `SelectionStats.not_selected` (and handed to the
selector's `on_not_selected` callback, which curation uses to record every removal). A missing
(null) per-generation list therefore deselects every generation of its row when
the corresponding flag is required, and is ignored when it is not.

Only a generation that would be selected is then checked for content problems, giving
a `Reject` that carries its ``trace_id``: ``nul_character`` / ``lone_surrogate`` in the
problem text (detail says "problem") or in answer / source / problem_type /
question_type (detail names the field), then ``empty_generation`` (empty or whitespace),
``contains_tag`` (``<bigmodel>`` or ``</bigmodel>``), ``nul_character``,
``lone_surrogate`` (a code point in U+D800..U+DFFF, e.g. from an unpaired ``\\ud835``
JSON escape) in the generation; and ``duplicate_trace_id`` when a trace id was
already selected earlier in the same run.

Rejects coming from the reader pass through unchanged. ``limit`` caps the number of
traces yielded; reading stops as soon as it is reached.
"""

from __future__ import annotations

import math

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.errors import one_line
from splitreason.io.readers import RawRow
from splitreason.schemas.reject import Reject
from splitreason.schemas.trace import Trace, trace_id_issue

__all__ = ["Selection", "SelectionStats", "TraceSelector", "select_traces"]

_SURROGATE_RE = re.compile("[\ud800-\udfff]")

# Per-generation list fields: name -> (element types allowed besides None).
_BOOL_LISTS = ("correctness_math_verify", "is_reasoning_complete")
_STR_LISTS = ("finish_reasons",)
_OPTIONAL_TEXT = ("answer", "source", "problem_type", "question_type")


@dataclass
class Selection:
    """Which generations to keep. Defaults select correct, finished, complete generations."""

    require_correct: bool = True
    require_stop: bool = True
    require_complete: bool = True
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0 or None, got {self.limit}")


@dataclass
class SelectionStats:
    """Counters kept while selecting.

    ``generations_seen == selected + sum(not_selected.values()) + generations_rejected``
    for the generations of valid rows that were fully processed.
    """

    rows_read: int = 0  # input items consumed: RawRows plus reader rejects
    rows_rejected: int = 0  # reader rejects plus row-level validation rejects
    generations_seen: int = 0
    selected: int = 0
    generations_rejected: int = 0
    not_selected: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)  # every reject yielded, by reason
    limit_reached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "generations_seen": self.generations_seen,
            "selected": self.selected,
            "generations_rejected": self.generations_rejected,
            "not_selected": dict(sorted(self.not_selected.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "limit_reached": self.limit_reached,
        }


class _RowError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _shown(uuid: str) -> str:
    """A uuid as messages may show it: escaped and cut (it may hold newlines or be a megabyte long)."""
    text = ascii(uuid[:60])
    return text + ("…" if len(uuid) > 60 else "")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class TraceSelector:
    """Stateful selector: ``selector(rows)`` yields traces and rejects; ``selector.stats`` counts."""

    def __init__(self, selection: Selection | None = None,
                 on_not_selected: Callable[[RawRow, str, str], None] | None = None) -> None:
        self.selection = selection if selection is not None else Selection()
        self.stats = SelectionStats()
        self._seen_ids: set[str] = set()
        # Called with (row, trace id, reason) for every generation a required flag deselects.
        self.on_not_selected = on_not_selected

    def __call__(self, rows: Iterable[RawRow | Reject]) -> Iterator[Trace | Reject]:
        return self.iter(rows)

    def iter(self, rows: Iterable[RawRow | Reject]) -> Iterator[Trace | Reject]:
        limit = self.selection.limit
        if limit is not None and self.stats.selected >= limit:
            self.stats.limit_reached = True
            return
        for item in rows:
            self.stats.rows_read += 1
            if isinstance(item, Reject):
                self.stats.rows_rejected += 1
                self.stats.rejected[item.reason] += 1
                yield item
                continue
            if not isinstance(item, RawRow):
                raise TypeError(f"expected RawRow or Reject, got {type(item).__name__}")
            for out in self._select_row(item):
                yield out
                if isinstance(out, Trace) and limit is not None and self.stats.selected >= limit:
                    self.stats.limit_reached = True
                    return

    # -- one row -----------------------------------------------------------------

    def _reject(self, row: RawRow, reason: str, detail: str, trace_id: str | None = None) -> Reject:
        self.stats.rejected[reason] += 1
        return Reject(origin=row.origin, row=row.row, trace_id=trace_id, reason=reason, detail=one_line(detail))

    def _select_row(self, row: RawRow) -> Iterator[Trace | Reject]:
        try:
            fields = _validate(row.data)
        except _RowError as err:
            self.stats.rows_rejected += 1
            yield self._reject(row, err.reason, err.detail)
            return
        uuid, problem, generations, lists, meta, correctness_count = fields
        finish_reasons = lists["finish_reasons"]
        sel = self.selection
        problem_issue = _text_issue(problem)
        if problem_issue is not None:
            problem_issue = (problem_issue[0], f"problem {problem_issue[1]}")
        else:
            for name, value in meta.items():
                issue = _text_issue(value) if value is not None else None
                if issue is not None:
                    problem_issue = (issue[0], f"field {name} {issue[1]}")
                    break
        for index, text in enumerate(generations):
            self.stats.generations_seen += 1
            why_not = None
            if sel.require_correct:
                why_not = _flag(lists["correctness_math_verify"], index, True, "incorrect", "unknown_correctness")
            if why_not is None and sel.require_stop:
                why_not = _flag(lists["finish_reasons"], index, "stop", "not_stop", "unknown_finish_reason")
            if why_not is None and sel.require_complete:
                why_not = _flag(lists["is_reasoning_complete"], index, True, "incomplete", "unknown_completeness")
            if why_not is not None:
                self.stats.not_selected[why_not] += 1
                if self.on_not_selected is not None:
                    self.on_not_selected(row, f"{uuid}:{index}", why_not)
                continue
            trace_id = f"{uuid}:{index}"
            issue = problem_issue if problem_issue is not None else _generation_issue(text, index)
            if issue is None and trace_id in self._seen_ids:
                issue = ("duplicate_trace_id", f"trace id {trace_id} was already selected (duplicate uuid)")
            if issue is not None:
                self.stats.generations_rejected += 1
                yield self._reject(row, issue[0], issue[1], trace_id=trace_id)
                continue
            self._seen_ids.add(trace_id)
            self.stats.selected += 1
            yield Trace(
                trace_id=trace_id,
                uuid=uuid,
                generation_index=index,
                problem=problem,
                text=text,
                origin=row.origin,
                origin_row=row.row,
                finish_reason=finish_reasons[index] if finish_reasons is not None else None,
                correctness_count=correctness_count,
                **meta,
            )


def select_traces(
    rows: Iterable[RawRow | Reject],
    selection: Selection | None = None,
    *,
    stats: SelectionStats | None = None,
) -> Iterator[Trace | Reject]:
    """Functional form of `TraceSelector`; pass `stats` to get the counters filled in."""
    selector = TraceSelector(selection)
    if stats is not None:
        selector.stats = stats
    return selector.iter(rows)


# -- validation helpers ----------------------------------------------------------


def _flag(values: list[Any] | None, index: int, wanted: Any, failed: str, unknown: str) -> str | None:
    if values is None or values[index] is None:
        return unknown
    return None if values[index] == wanted and type(values[index]) is type(wanted) else failed


def _text_issue(text: str) -> tuple[str, str] | None:
    pos = text.find("\x00")
    if pos >= 0:
        return ("nul_character", f"contains a NUL character at char {pos}")
    match = _SURROGATE_RE.search(text)
    if match is not None:
        return (
            "lone_surrogate",
            f"contains a lone surrogate U+{ord(match.group()):04X} at char {match.start()}",
        )
    return None


def _generation_issue(text: str, index: int) -> tuple[str, str] | None:
    if not text.strip():
        return ("empty_generation", f"generation {index} is empty or whitespace only")
    for tag in (OPEN_TAG, CLOSE_TAG):
        pos = text.find(tag)
        if pos >= 0:
            return ("contains_tag", f"generation {index} already contains {tag} at char {pos}")
    issue = _text_issue(text)
    if issue is not None:
        return (issue[0], f"generation {index} {issue[1]}")
    return None


def _validate(
    data: dict[str, Any],
) -> tuple[str, str, list[str], dict[str, list[Any] | None], dict[str, str | None], int | None]:
    uuid = data.get("uuid")
    if uuid is None:
        raise _RowError("missing_field", "missing field uuid")
    if not isinstance(uuid, str) or not uuid.strip():
        raise _RowError("bad_field", f"field uuid must be a non-empty string, got {_type_name(uuid)}")
    uuid_issue = trace_id_issue(uuid)
    if uuid_issue is not None:  # checked before any message names the row by its uuid
        raise _RowError("bad_trace_id", f"row {_shown(uuid)}: field uuid: {uuid_issue}")
    who = f"row {uuid}: "

    problem = data.get("problem")
    if problem is None:
        raise _RowError("missing_field", who + "missing field problem")
    if not isinstance(problem, str):
        raise _RowError("bad_field", who + f"field problem must be a string, got {_type_name(problem)}")
    if not problem.strip():
        raise _RowError("bad_field", who + "field problem is empty")

    generations = data.get("generations")
    if generations is None:
        raise _RowError("missing_field", who + "missing field generations")
    if not isinstance(generations, list):
        raise _RowError("bad_field", who + f"field generations must be a list, got {_type_name(generations)}")
    if not generations:
        raise _RowError("bad_field", who + "field generations is an empty list")
    for i, gen in enumerate(generations):
        if not isinstance(gen, str):
            raise _RowError("bad_field", who + f"generations[{i}] must be a string, got {_type_name(gen)}")
    # Every trace id of the row is "{uuid}:{index}": the last one is the longest.
    id_issue = trace_id_issue(f"{uuid}:{len(generations) - 1}")
    if id_issue is not None:
        raise _RowError("bad_trace_id", f"row {_shown(uuid)}: {id_issue}")

    lists: dict[str, list[Any] | None] = {}
    for name in (*_BOOL_LISTS, *_STR_LISTS):
        value = data.get(name)
        if value is None:
            lists[name] = None
            continue
        if not isinstance(value, list):
            raise _RowError("bad_field", who + f"field {name} must be a list or null, got {_type_name(value)}")
        if len(value) != len(generations):
            raise _RowError(
                "bad_field",
                who + f"field {name} has {len(value)} entries but generations has {len(generations)}",
            )
        element_type = bool if name in _BOOL_LISTS else str
        for i, element in enumerate(value):
            if element is not None and not isinstance(element, element_type):
                raise _RowError(
                    "bad_field",
                    who + f"{name}[{i}] must be {element_type.__name__} or null, got {_type_name(element)}",
                )
        lists[name] = value

    meta: dict[str, str | None] = {}
    for name in _OPTIONAL_TEXT:
        value = data.get(name)
        if value is None or isinstance(value, str):
            meta[name] = value
        elif isinstance(value, float) and not math.isfinite(value):
            # JSON has no Infinity or NaN, but Python's parser takes them: stored as "-inf" they would
            # pass for a source or an answer.
            raise _RowError("bad_field", who + f"field {name} must be a string, a finite number or null, got {value}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            meta[name] = str(value)
        else:
            raise _RowError("bad_field", who + f"field {name} must be a string or null, got {_type_name(value)}")
    correctness_count = data.get("correctness_count")
    if correctness_count is not None and (isinstance(correctness_count, bool) or not isinstance(correctness_count, int)
                                          or correctness_count < 0):
        raise _RowError("bad_field", who + "field correctness_count must be a non-negative integer or null, "
                        f"got {_type_name(correctness_count) if not isinstance(correctness_count, int) else correctness_count}")
    return uuid, problem, generations, lists, meta, correctness_count

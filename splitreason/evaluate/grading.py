"""Grade a model's answer against the gold with math-verify, safely from any thread.

    from splitreason.evaluate.grading import grade_answer
    verdict = grade_answer(model_text, gold)      # Grade(status="correct", answer="\\frac{14}{3}", ...)
    verdict.correct                                # True

The answer is found by `answers.extract_answer` (the last `\\boxed{}`, else "the answer is X",
else a one-line text), then math-verify compares it with the gold, **gold first**
(`verify(gold, prediction)` is not symmetric: the gold decides what counts as equal). Both are
parsed as LaTeX inside `$...$` (math-verify reads LaTeX only inside math delimiters), falling back
to a plain expression; when either side does not parse at all, the two are compared as strings
without spaces, dollars or `\\text{}`.

Every comparison runs in a worker process under a time limit (see `worker_pool`): math-verify's
own timeouts need the main thread, and a pathological answer (`\\boxed{9^{9^{9^{9}}}}`) must cost
a few seconds, not the run. So `Grader.grade` and `grade_answer` may be called from any thread
(TRL calls reward functions off the main thread; the offload runner grades while it generates).

A verdict's status is one of
    correct     the answer equals the gold
    wrong       an answer that is not the gold
    no_answer   the text states no answer (wrong, and counted as such)
    timeout     grading did not finish in time (wrong, and counted)
    error       grading failed (a worker crashed, math-verify raised): wrong, counted, `detail` says why
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

from splitreason.errors import ServiceUnavailable
from splitreason.evaluate.answers import extract_answer
from splitreason.evaluate.worker_pool import CallFailed, CallTimedOut, WorkerCrashed, WorkerPool, WorkerStartFailed

__all__ = ["DEFAULT_TIMEOUT_S", "Grader", "GradingUnavailable", "Status", "Grade", "check_answer",
           "grade_answer", "shared_grader"]

DEFAULT_TIMEOUT_S = 10.0
Status = Literal["correct", "wrong", "no_answer", "timeout", "error"]
_CANONICAL_CHARS = 200


class GradingUnavailable(ServiceUnavailable):
    """math-verify (extra [evaluate]) is not installed or cannot be imported."""


@dataclass(frozen=True)
class Grade:
    """How one answer was graded."""

    status: Status
    answer: str | None  # the answer as extracted from the text (LaTeX kept); None: no answer
    gold: str
    canonical: str | None = None  # the answer's parsed form: what a majority vote groups by
    detail: str | None = None  # why grading failed (status "error")

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "correct": self.correct}


def check_answer(text: str, gold: str) -> Grade:
    """Grade in this process, with no time limit. Called in the grader's workers; elsewhere use
    `Grader.grade` or `grade_answer`, which bound the time."""
    answer = extract_answer(text)
    if answer is None:
        return Grade("no_answer", None, gold)
    from math_verify import verify

    gold_parsed, predicted = _parse(gold), _parse(answer)
    if gold_parsed and predicted:
        correct = bool(verify(gold_parsed, predicted, timeout_seconds=None))
    else:
        correct = bool(_plain(gold)) and _plain(gold) == _plain(answer)
    canonical = str(predicted[0]) if predicted else _plain(answer)
    return Grade("correct" if correct else "wrong", answer, gold, canonical[:_CANONICAL_CHARS])


def _parse(expression: str) -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    delimited = any(mark in expression for mark in ("$", "\\boxed", "\\(", "\\["))
    latex = parse(expression if delimited else f"${expression}$", extraction_config=[LatexExtractionConfig()],
                  parsing_timeout=None)
    return latex or parse(expression, extraction_config=[ExprExtractionConfig()], parsing_timeout=None)


def _plain(answer: str) -> str:
    answer = re.sub(r"\\text(?:bf|rm)?\{([^{}]*)\}", r"\1", answer)
    return re.sub(r"[\s$]", "", answer).lower()


def _warm_up() -> None:
    """Import math-verify once per worker, quietly (its "timeout disabled" warning is expected:
    the worker pool bounds the time)."""
    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from math_verify import parse

    parse("$1$", parsing_timeout=None)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Grader:
    """Grades answers in worker processes, each answer within `timeout_s` seconds; thread-safe.

    `soft_timeout_s` (default 80 % of `timeout_s`) interrupts the grading inside its worker, which
    is then reused; `timeout_s` is the hard limit past which the worker is killed. Use as a context
    manager or call `close()`; `grade_answer` uses one shared grader closed at exit.
    """

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, workers: int | None = None,
                 soft_timeout_s: float | None = None):
        if importlib.util.find_spec("math_verify") is None:
            raise GradingUnavailable("grading needs math-verify: pip install 'splitreason[evaluate]'")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self.soft_timeout_s = soft_timeout_s if soft_timeout_s is not None else 0.8 * timeout_s
        self.workers = workers or default_workers()
        self._pool = WorkerPool(check_answer, size=self.workers, warm_up=_warm_up)

    def grade(self, text: str, gold: str) -> Grade:
        """The verdict on `text` (a model's whole answer) against `gold`."""
        if not isinstance(gold, str) or not gold.strip():
            raise ValueError("a gold answer must be a non-empty string")
        if not isinstance(text, str):
            raise TypeError(f"the text to grade must be a string, not {type(text).__name__}")
        try:
            return self._pool.call((text, gold), hard_limit_s=self.timeout_s, soft_limit_s=self.soft_timeout_s)
        except CallTimedOut:
            return Grade("timeout", extract_answer(text), gold, detail=f"not graded within {self.timeout_s:g} s")
        except WorkerStartFailed as error:
            hint = (" (pip install 'antlr4-python3-runtime==4.13.2', one that latex2sympy2_extended supports)"
                    if "ANTLR" in str(error) else "")
            raise GradingUnavailable(f"grading cannot start: {error}{hint}") from None
        except (WorkerCrashed, CallFailed) as error:
            return Grade("error", extract_answer(text), gold, detail=str(error)[:300])

    def grade_many(self, pairs: Iterable[tuple[str, str]], *,
                   on_done: Callable[[int, Grade], None] | None = None) -> list[Grade]:
        """Verdicts for (text, gold) pairs, in order, graded `workers` at a time. `on_done(i, v)`
        is called (from worker threads) as each finishes, for progress."""
        items = list(pairs)

        def one(index: int) -> Grade:
            verdict = self.grade(*items[index])
            if on_done is not None:
                on_done(index, verdict)
            return verdict

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="grade") as executor:
            return list(executor.map(one, range(len(items))))

    @property
    def killed_workers(self) -> int:
        return self._pool.killed

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: Grader | None = None
_shared_lock = threading.Lock()


def shared_grader() -> Grader:
    """One grader for the whole process (created on first use, closed at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Grader()
            atexit.register(_shared.close)
        return _shared


def grade_answer(text: str, gold: str) -> Grade:
    """Grade `text` against `gold` with the shared grader: safe from any thread, time-bounded."""
    return shared_grader().grade(text, gold)

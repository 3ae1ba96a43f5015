"""The report's evaluation section: `evaluate offload` runs, read from their summary.json.

An evaluation is found when `--evaluation OUT` names it, or when the run directory holds it: a
folder of the run (or of RUN/evaluations/) whose manifest.json says `evaluate offload` and that
has a summary.json. Per mode the section shows accuracy (95 % interval) against offload share and
the projected speed-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from splitreason.errors import UsageError

__all__ = ["Evaluation", "EvaluationError", "find_evaluations", "read_evaluation"]


class EvaluationError(UsageError):
    """A directory named as an evaluation that is not one (or not finished)."""


@dataclass
class Evaluation:
    path: Path
    eval_set: str
    problems: int
    samples_per_problem: int
    rates: str | None
    modes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def points(self) -> list[tuple[str, float, float, tuple[float, float]]]:
        """(mode, offload share, accuracy, interval) per mode."""
        return [(mode, figures["offload_share"], figures["accuracy"], tuple(figures["accuracy_ci95"]))
                for mode, figures in self.modes.items()]


def read_evaluation(path: Path) -> Evaluation:
    path = Path(path)
    summary_path = path / "summary.json"
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise EvaluationError(f"{path} is not a finished `evaluate offload` output (no {Path(error.filename).name})") \
            from None
    except (OSError, ValueError) as error:
        raise EvaluationError(f"{path}: cannot read the evaluation ({' '.join(str(error).split())[:200]})") from None
    if manifest.get("command") != "evaluate offload" or not isinstance(summary.get("modes"), dict):
        raise EvaluationError(f"{path} is not an `evaluate offload` output")
    return Evaluation(path=path, eval_set=str(summary.get("eval_set")), problems=int(summary.get("problems", 0)),
                      samples_per_problem=int(summary.get("samples_per_problem", 1)), rates=summary.get("rates"),
                      modes=summary["modes"])


def find_evaluations(run: Path, explicit: list[Path] | None = None) -> list[Evaluation]:
    """The evaluations named with --evaluation, else those the run directory holds."""
    if explicit:
        return [read_evaluation(path) for path in explicit]
    found = []
    for parent in (Path(run), Path(run) / "evaluations"):
        if not parent.is_dir():
            continue
        for child in sorted(parent.iterdir()):
            if (child / "summary.json").is_file() and (child / "manifest.json").is_file():
                try:
                    found.append(read_evaluation(child))
                except EvaluationError:
                    continue  # another command's output that happens to have those files
    return found

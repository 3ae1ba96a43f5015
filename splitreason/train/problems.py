"""Step 1 of `train grpo`: the problems, each with its gold answer, decontaminated, before anything
heavy is imported.

Every problem read ends in exactly one place: trained on, dropped as contaminated (listed in
OUT/rejects.jsonl with the evaluation problem it matches), or past --limit (counted). A problem
without an answer is refused with one line: GRPO cannot reward what it cannot grade.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from splitreason.io.eval_sets import EvalProblem, load_eval_set
from splitreason.schemas.grpo import GRPOSettings
from splitreason.schemas.reject import Reject
from splitreason.train import TrainDataError

__all__ = ["Problems", "load_problems"]

CORPUS_SAMPLE = 2000  # problems the decontamination rule learns stock phrasing from (curate's default order)


@dataclass
class Problems:
    source: str
    read: int
    kept: list[EvalProblem]
    contaminated: list[Reject] = field(default_factory=list)
    past_limit: int = 0
    decontamination: dict | None = None

    def file_record(self) -> dict:
        """What train.json stores of the problems (a resume must find the same)."""
        path = Path(self.source).expanduser()
        digest = _sha256(path) if path.is_file() else None
        return {"path": self.source, "sha256": digest or f"hub:{self.source}", "rows": self.read, "format": "problems"}

    def counts(self) -> dict:
        return {"read": self.read, "contaminated": len(self.contaminated), "past_limit": self.past_limit,
                "trained": len(self.kept)}


def load_problems(settings: GRPOSettings) -> Problems:
    problem_set = load_eval_set(settings.problems, problem_field=settings.problem_field,
                                answer_field=settings.answer_field, need_answers=True, problem_option="--problem-field",
                                kind="problem set", set_option="--problems")
    problems = Problems(settings.problems, len(problem_set.problems), list(problem_set.problems))
    if settings.decontaminate_against:
        _decontaminate(problems, settings)
    if settings.limit is not None and len(problems.kept) > settings.limit:
        problems.past_limit = len(problems.kept) - settings.limit
        problems.kept = problems.kept[: settings.limit]
    if not problems.kept:
        raise TrainDataError(f"no problems left to train on: {problems.read} read, {len(problems.contaminated)} "
                             "contaminated")
    return problems


def _decontaminate(problems: Problems, settings: GRPOSettings) -> None:
    """curate's default rule (what is specific to each evaluation problem, stock phrasing weighed
    on a sample of the training problems), dropping what it calls contaminated."""
    from splitreason.curate.boilerplate import Boilerplate
    from splitreason.curate.specific import SpecificRule

    eval_sets = [load_eval_set(spec, set_option="--decontaminate-against") for spec in settings.decontaminate_against]
    rule = SpecificRule(eval_sets, boilerplate=Boilerplate())
    rule.learn_corpus(problem.problem for problem in problems.kept[:CORPUS_SAMPLE])
    kept = []
    for problem in problems.kept:
        judgement = rule.judge(problem.problem)
        if judgement.remove:
            best = judgement.best
            problems.contaminated.append(Reject(
                origin=settings.problems, row=problem.index, trace_id=problem.id, reason="contaminated",
                detail=f"{best.rule} {best.eval_set}:{best.eval_id} (score {best.score:.2f})"))
        else:
            kept.append(problem)
    problems.kept = kept
    problems.decontamination = rule.summary()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""The offload evaluation run: every (mode, problem, sample) written once to OUT/samples.jsonl.

    OUT/manifest.json    the settings and the eval set's content fingerprint (a resume must match
                         both), the prompts used
    OUT/samples.jsonl    one row per (mode, problem, sample), appended and fsynced as each finishes
    OUT/summary.json     per mode: accuracy, tokens, offload share, handoffs, wall time, projected latency

A killed run resumes: rows already in samples.jsonl are kept and skipped (a torn last line is
repaired first). Each (problem, sample) has one seed, the same in every mode. Mode random on a
problem takes the offload share and mean segment length learned reached on the same (problem,
sample), so learned runs first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.errors import UsageError
from splitreason.evaluate.handoff.types import HandoffSettings, Sampling
from splitreason.io.eval_sets import EvalProblem, EvalSet
from splitreason.schemas.evaluate_offload import EvaluateOffloadSettings
from splitreason.schemas.settings import SettingsError

log = logging.getLogger(__name__)

__all__ = ["MANIFEST", "SAMPLES", "SUMMARY", "OffloadRun", "run_offload", "sample_seed"]

MANIFEST, SAMPLES, SUMMARY = "manifest.json", "samples.jsonl", "summary.json"
MODE_ORDER = ("learned", "random", "small", "large")  # learned first: random takes its share


class OffloadRunError(UsageError):
    """An evaluation that cannot run as asked (a backend not available, an OUT of another run)."""


def sample_seed(seed: int, problem_id: str, sample: int) -> int:
    """The seed of one (problem, sample), the same in every mode."""
    digest = hashlib.sha256(f"{seed}\0{problem_id}\0{sample}".encode()).hexdigest()
    return int(digest[:15], 16)


@dataclass
class OffloadRun:
    """What a finished (or resumed-and-finished) run produced."""

    out: Path
    summary: dict[str, Any]
    written: int = 0  # rows written by this process
    resumed: int = 0  # rows found from an earlier process
    notes: list[str] = field(default_factory=list)


def load_problems(settings: EvaluateOffloadSettings) -> EvalSet:
    from splitreason.io.eval_sets import load_eval_set

    evaluation = load_eval_set(settings.eval_set, problem_field=settings.problem_field,
                               answer_field=settings.answer_field, id_field=settings.id_field, need_answers=True)
    if settings.limit is not None:
        evaluation = EvalSet(evaluation.name, evaluation.source, evaluation.problems[: settings.limit])
    return evaluation


def eval_set_fingerprint(evaluation: EvalSet) -> str:
    """sha256 of the problems as loaded (id, problem, gold, in order): a resume on a rewritten set
    would otherwise keep rows graded against old golds, or of problems no longer in it."""
    content = [[problem.id, problem.problem, problem.answer] for problem in evaluation.problems]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()


def handoff_settings(settings: EvaluateOffloadSettings) -> HandoffSettings:
    return HandoffSettings(chunk_tokens=settings.chunk_tokens, max_segment_tokens=settings.max_segment_tokens,
                           max_tokens=settings.max_tokens, close_threshold=settings.close_threshold,
                           sampling=Sampling(temperature=settings.temperature, top_p=settings.top_p))


def run_offload(settings: EvaluateOffloadSettings, *, progress: Callable[[int, int], Any] | None = None) -> OffloadRun:
    """The command: check everything cheap first (eval set, tokenizers, vocabularies), claim OUT,
    check it holds this run or nothing, then load the models and write the missing rows."""
    from splitreason.evaluate.offload.backends import open_pair
    from splitreason.io.environment import environment_errors
    from splitreason.io.lock import claim_output_dir

    evaluation = load_problems(settings)
    notes = []
    if settings.samples > 1 and settings.temperature == 0:
        notes.append(f"--samples {settings.samples} at --temperature 0: the samples of a problem are the same greedy "
                     "answer; give a temperature above 0 for different samples")
    with open_pair(settings) as pair:  # tokenizers, vocabulary check, prompts; models load lazily
        lock = claim_output_dir(settings.output, f"evaluation output {settings.output}")
        try:
            previous = _check_out(settings, evaluation)
        except BaseException:
            lock.discard()
            raise
        with lock, environment_errors(f"the samples written so far are kept in {settings.output / SAMPLES}; "
                                      "run the same command again to resume", path=settings.output):
            result = _run(settings, evaluation, pair, previous, progress)
    result.notes[:0] = notes
    return result


def _check_out(settings: EvaluateOffloadSettings, evaluation: EvalSet) -> dict | None:
    """The manifest of the run OUT already holds (None: OUT is new); one line when it is another run's."""
    out = settings.output
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise OffloadRunError(f"{manifest_path} cannot be read ({error}); choose another -o") from None
        if manifest.get("command") != "evaluate offload":
            raise OffloadRunError(f"{out} holds the output of {manifest.get('command')!r}, not an evaluation; "
                                  "choose another -o")
        differences = settings.differences(manifest.get("settings", {}))
        if differences:
            raise SettingsError(f"{out} holds an evaluation made with other settings ({'; '.join(differences[:3])}"
                                f"{' …' if len(differences) > 3 else ''}); run it with the same settings to resume, "
                                "or choose another -o")
        recorded = (manifest.get("eval_set") or {}).get("sha256")
        if recorded is not None and recorded != eval_set_fingerprint(evaluation):
            raise OffloadRunError(f"{out} holds an evaluation of other contents of {settings.eval_set} (its problems, "
                                  "ids or answers changed since that run); use a new -o to evaluate the set as it "
                                  "is now")
        return manifest
    others = [path.name for path in out.iterdir() if not path.name.startswith(".")]
    if others:
        raise OffloadRunError(f"{out} is not empty and holds no evaluation ({', '.join(sorted(others)[:3])}); "
                              "choose another -o")
    return None


def _manifest(settings: EvaluateOffloadSettings, evaluation: EvalSet, pair) -> dict[str, Any]:
    import sys
    from importlib import metadata

    versions = {}
    for name in ("torch", "transformers", "vllm", "math-verify"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"command": "evaluate offload", "format_version": 1, "settings": settings.fingerprint(),
            "eval_set": {"name": evaluation.name, "source": evaluation.source, "problems": len(evaluation.problems),
                         "sha256": eval_set_fingerprint(evaluation)},
            "prompts": pair.describe(), "python": sys.version.split()[0], "versions": versions,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _run(settings: EvaluateOffloadSettings, evaluation: EvalSet, pair, previous: dict | None,
         progress: Callable[[int, int], Any] | None) -> OffloadRun:
    from splitreason.evaluate.grading import Grader
    from splitreason.evaluate.offload.summary import summarize_run
    from splitreason.io.jsonl import JsonlAppender, atomic_write_json, iter_jsonl

    out = settings.output
    if previous is None:
        atomic_write_json(out / MANIFEST, _manifest(settings, evaluation, pair))
    result = OffloadRun(out=out, summary={})
    with JsonlAppender(out / SAMPLES) as appender:
        rows = {(row["mode"], row["problem_id"], row["sample"]): row for row in iter_jsonl(out / SAMPLES)}
        result.resumed = len(rows)
        if appender.repaired_bytes:
            result.notes.append(f"a torn last line of {SAMPLES} ({appender.repaired_bytes} bytes) was removed")
        todo = [(mode, problem, sample) for problem in evaluation.problems for sample in range(settings.samples)
                for mode in MODE_ORDER if mode in settings.modes
                if (mode, problem.id, sample) not in rows]
        total = len(evaluation.problems) * settings.samples * len(settings.modes)
        if progress:
            progress(total - len(todo), total)
        log.info("%d of %d samples already in %s; %d to run", total - len(todo), total, out, len(todo))
        if todo:
            pair.load()  # before the first sample, so that its wall time is generation only
            log.info("models loaded (%s backend)", settings.backend)
            with Grader(timeout_s=settings.timeout_s) as grader:
                for mode, problem, sample in todo:
                    row = _one_sample(settings, pair, grader, mode, problem, sample, rows)
                    log.info("%s / %s / sample %d: %s (answer %s), offload share %.3f, %d handoff(s), %.1f s",
                             mode, problem.id, sample, "correct" if row["correct"] else "wrong", row["answer"],
                             row["offload_share"], row["handoffs"], row["wall_s"]["generate"])
                    appender.write(row)
                    appender.flush()
                    rows[(mode, problem.id, sample)] = row
                    result.written += 1
                    if progress:
                        progress(total - len(todo) + result.written, total)
    # only rows of the set as it is now (an OUT from before the manifest held the set's fingerprint
    # may hold rows of problems since removed)
    current = {problem.id for problem in evaluation.problems}
    ordered = [rows[key] for key in sorted(rows, key=_order_key(evaluation))
               if key[1] in current and key[2] < settings.samples and key[0] in settings.modes]
    result.summary = summarize_run(ordered, settings, evaluation)
    atomic_write_json(out / SUMMARY, result.summary)
    return result


def _order_key(evaluation: EvalSet):
    position = {problem.id: index for index, problem in enumerate(evaluation.problems)}
    return lambda key: (MODE_ORDER.index(key[0]), position.get(key[1], len(position)), key[2])


def _random_plan(settings: EvaluateOffloadSettings, learned: dict | None):
    from splitreason.evaluate.handoff.rule import RandomPlan

    if learned is not None:
        lengths = [len(segment["token_ids"]) for segment in learned["segments"] if segment["model"] == "large"]
        share = min(learned["offload_share"], 0.95)
        length = settings.random_segment_tokens or (round(sum(lengths) / len(lengths)) if lengths else settings.chunk_tokens)
        return RandomPlan(share=share, segment_tokens=max(1, length)), "learned's share on this sample"
    assert settings.offload_share is not None
    return (RandomPlan(share=settings.offload_share, segment_tokens=settings.random_segment_tokens or settings.chunk_tokens),
            "--offload-share")


def _one_sample(settings: EvaluateOffloadSettings, pair, grader, mode: str, problem: EvalProblem, sample: int,
                rows: dict) -> dict[str, Any]:
    seed = sample_seed(settings.seed, problem.id, sample)
    plan = plan_source = None
    if mode == "random":
        plan, plan_source = _random_plan(settings, rows.get(("learned", problem.id, sample)))
    small_ids = pair.small_prompt_ids(problem.problem) if mode != "large" else []
    large_ids = pair.large_prompt_ids(problem.problem) if mode != "small" else []
    began = time.perf_counter()
    trace = pair.run(mode, small_ids, large_ids, seed=seed, random_plan=plan)
    generated = time.perf_counter() - began
    verdict = grader.grade(trace.text.replace(OPEN_TAG, "").replace(CLOSE_TAG, ""), problem.answer or "")
    graded = time.perf_counter() - began - generated
    tokens = trace.tokens_by_model()
    row: dict[str, Any] = {
        "mode": mode, "problem_id": problem.id, "problem_index": problem.index, "sample": sample, "seed": seed,
        "small_prompt_ids": small_ids, "large_prompt_ids": large_ids,
        "text": trace.text,
        "segments": [segment.to_dict() for segment in trace.segments],
        "tokens": {**tokens, "total": tokens["small"] + tokens["large"]},
        "offload_share": trace.offload_share,
        "handoffs": trace.handoffs, "forced_closes": trace.forced_closes,
        "close_checks": trace.close_checks, "confirm_passes": trace.confirm_passes,
        "forward_passes": trace.forward_passes,
        "finish": trace.finish, "ended_in_segment": trace.ended_in_segment,
        "answer": verdict.answer, "gold": problem.answer, "correct": verdict.correct,
        "grading": {"status": verdict.status, "canonical": verdict.canonical, "detail": verdict.detail},
        "wall_s": {**{key: round(value, 6) for key, value in trace.wall_s.items()},
                   "generate": round(generated, 6), "grade": round(graded, 6)},
    }
    if plan is not None:
        row["random_plan"] = {"share": plan.share, "segment_tokens": plan.segment_tokens, "from": plan_source}
    return row


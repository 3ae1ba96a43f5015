"""The annotate job end to end: resolve the judge, check OUT, run, record the manifest.

Kept apart from the CLI so tests and other tools can call `run_annotate` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from splitreason.annotator.progress import print_summary, progress_bar
from splitreason.annotator.routing import RoutingPolicy
from splitreason.annotator.runner import AnnotateOptions, AnnotationRun, RunCounts
from splitreason.io.inputs import InputPlan, plan_input
from splitreason.io.environment import environment_errors
from splitreason.io.jsonl import atomic_write_json
from splitreason.io.lock import claim_output_dir
from splitreason.io.run_dir import RunDir, RunDirError, check_output_path
from splitreason.io.selection import Selection
from splitreason.judges.cache import RequestCache
from splitreason.judges.factory import JudgeSettings, create_judge
from splitreason.judges.grounded import GroundedSettings
from splitreason.judges.llm import SamplingParams
from splitreason.judges.registry import load_aliases, resolve
from splitreason.judges.transport import RetryPolicy
from splitreason.schemas.annotate import AnnotateSettings
from splitreason.schemas.run_manifest import (
    INPUT_SETTINGS,
    RunConfig,
    RunConfigError,
    RunManifest,
    check_compatible,
)
from splitreason.schemas.run_manifest import now as _now

log = logging.getLogger(__name__)


def _policy(settings: AnnotateSettings) -> RoutingPolicy:
    try:
        return RoutingPolicy(
            target_coverage=settings.target_coverage, min_coverage=settings.min_coverage,
            max_coverage=settings.max_coverage, accept_threshold=settings.accept_threshold,
            reject_threshold=settings.reject_threshold, min_agreement=settings.min_agreement,
        )
    except ValueError as error:
        raise RunConfigError(str(error)) from error


def judge_settings(settings: AnnotateSettings) -> JudgeSettings:
    """What the judges take from the annotate settings."""
    return JudgeSettings(
        sampling=SamplingParams(temperature=settings.temperature, top_p=settings.top_p,
                                max_tokens=settings.max_tokens, seed=settings.seed),
        retry=RetryPolicy(max_attempts=settings.max_attempts, backoff_initial=settings.retry_initial,
                          backoff_max=settings.retry_max),
        timeout=settings.timeout,
        requests_per_minute=settings.rpm,
        response_format=settings.response_format.value if settings.response_format is not None else None,
        max_spans=settings.max_spans,
        max_excerpt_chars=settings.max_excerpt_chars,
        vllm_engine_args=dict(settings.vllm_args),
        grounded=GroundedSettings(batch_size=settings.batch_size, divergence=settings.divergence.value,
                                  engine=settings.scoring_engine.value, engine_args=dict(settings.vllm_args),
                                  device=settings.device, dtype=settings.dtype, max_len=settings.max_length),
    )


def stored_settings(settings: AnnotateSettings) -> dict:
    """The settings as run.json keeps them: paths as given, URL credentials redacted."""
    from splitreason.io.redaction import redact

    data = settings.model_dump(mode="json")
    if data.get("base_url"):
        data["base_url"] = redact(data["base_url"])
    return data


@dataclass
class PreparedRun:
    """What an annotate request resolves to before anything runs: no judge started, nothing written."""

    policy: RoutingPolicy
    plan: InputPlan
    specs: list
    judges: list
    rescuer: object | None
    config: RunConfig
    items: Iterator  # the input, opened (so a missing or unreadable input stopped the run already)

    async def close(self) -> None:
        await _close_all(self.judges)


def prepare_run(settings: AnnotateSettings) -> PreparedRun:
    """Check the settings and build its run config: options, the input (opened: it exists, reads, and
    a hub id loads), the judges (resolved, not started), the output path. Nothing is written. Apart
    from `run_annotate`, the Ray driver uses it to refuse changed settings before it submits any task."""
    policy = _policy(settings)
    plan = plan_input(settings.input, num_shards=settings.num_shards, limit=settings.limit)
    if settings.shard_index is not None and settings.shard_index >= plan.num_shards:
        raise RunDirError(f"--shard-index {settings.shard_index} is out of range for {plan.num_shards} shards")
    _check_out_outside_input(plan.source, settings.out, plan.from_shard_dir)
    check_output_path(settings.out)
    selection = Selection(require_correct=settings.require_correct, require_stop=settings.require_stop,
                          require_complete=settings.require_complete, limit=settings.limit)
    items = plan.items(selection, hub_split=settings.hub_split, hub_config=settings.hub_config,
                       shard_indices=[settings.shard_index] if settings.shard_index is not None else None)
    aliases = load_aliases(settings.judges_file)
    specs = [resolve(name, aliases, base_url=settings.base_url) for name in settings.judge]
    if settings.divergence.value != "greedy" and not any(spec.backend == "divergence" for spec in specs):
        raise RunConfigError(f"--divergence {settings.divergence.value} applies to divergence:SMALL,LARGE judges only")
    judges = [create_judge(spec, judge_settings(settings), cache=None) for spec in specs]
    _check_samples(settings, judges)
    rescuer = _rescuer(settings)
    config = RunConfig.resolved(settings, source=plan.source, num_shards=plan.num_shards,
                                judges=[judge.info for judge in judges],
                                semantic_rescue=rescuer.info if rescuer is not None else None)
    log.info("input %s: %s shard(s), %s traces expected", plan.source, plan.num_shards,
             plan.expected if plan.expected is not None else "an unknown number of")
    log.info("judges: %s", ", ".join(f"{judge.info.name} ({judge.info.backend}, prompt {judge.info.prompt_hash})"
                                     for judge in judges))
    return PreparedRun(policy=policy, plan=plan, specs=specs, judges=judges, rescuer=rescuer, config=config,
                       items=items)


def settled_manifest(run_dir: RunDir, config: RunConfig, *, also: tuple[str, ...] = ()) -> RunManifest | None:
    """OUT's run.json when this run continues it, after refusing settings that differ from those of
    the annotations OUT holds; None when OUT is new or holds no annotated trace yet (a run that
    annotated nothing does not bind OUT to its settings: `clear_unannotated` then starts it afresh)."""
    stored = run_dir.read_manifest()
    if stored is None:
        return None
    previous = RunManifest.load(stored, where=str(run_dir.manifest_path))
    if run_dir.holds_annotations():
        check_compatible(previous.config, config, also=also)
        return previous
    try:
        check_compatible(previous.config, config, also=(*also, *INPUT_SETTINGS, "input"))
    except RunConfigError:
        return None
    return previous


async def run_annotate(settings: AnnotateSettings, console: Console, *, cost=None) -> RunCounts:
    """Validate everything, start the judges, then create and lock OUT, check it again under the
    lock, and run. A run that cannot start leaves OUT as it was (and no OUT where there was none).
    `cost(prompt_tokens, completion_tokens)` gives dollars so far (None: no price) for the progress bar."""
    prepared = prepare_run(settings)
    run_dir = RunDir(settings.out)
    settled_manifest(run_dir, prepared.config)  # a conflict stops here, before any judge starts
    try:
        for judge in prepared.judges:
            await judge.start()  # an unreachable judge stops here, before anything is written
            log.info("judge %s started", judge.info.name)
        lock = claim_output_dir(settings.out)
        log.info("claimed %s", settings.out)
    except BaseException:
        await _close_all(prepared.judges)
        raise
    run: AnnotationRun | None = None
    try:
        # Another run may have finished in OUT between the checks above and the lock: check again.
        previous = settled_manifest(run_dir, prepared.config)
        if previous is None and run_dir.manifest_path.exists():
            log.info("%s holds no annotated trace: starting it afresh", settings.out)
            run_dir.clear_unannotated()
        elif previous is not None:
            log.info("continuing the run in %s (%d earlier invocation(s))", settings.out, len(previous.invocations))
        run = AnnotationRun(run_dir, prepared.judges, _options(settings, prepared))
        with environment_errors(lambda: _saved(run, settings.out), path=settings.out):
            return await _run_locked(settings, prepared, run_dir, run, previous, console, cost)
    except BaseException:
        lock.discard()  # removes an OUT this run created only while it holds nothing but the lock
        raise
    finally:
        try:
            await _close_all(prepared.judges)  # closed already unless the run stopped before it began
        finally:
            lock.release()


def _options(settings: AnnotateSettings, prepared: PreparedRun) -> AnnotateOptions:
    return AnnotateOptions(policy=prepared.policy, concurrency=settings.concurrency,
                           num_shards=prepared.plan.num_shards, shard_index=settings.shard_index,
                           retry_rejected=settings.retry_rejected, fuzzy_threshold=settings.fuzzy_threshold,
                           samples=settings.samples, rescuer=prepared.rescuer)


def _saved(run: AnnotationRun | None, out: Path) -> str:
    """What a run that stopped on a full disk leaves (for its one-line error)."""
    if run is None or not run.started:
        return f"nothing of this run was written to {out}"
    counts = run.counts
    return (f"{counts.annotated} traces annotated by this run and {counts.already_done} from before are saved in "
            f"{out}, no line cut short")


async def _run_locked(settings: AnnotateSettings, prepared: PreparedRun, run_dir: RunDir, run: AnnotationRun,
                      previous: RunManifest | None, console: Console, cost=None) -> RunCounts:
    """The run itself, OUT locked and checked."""
    specs, judges, plan, config = prepared.specs, prepared.judges, prepared.plan, prepared.config
    run.started = True
    run_dir.prepare()
    cache = RequestCache(run_dir.cache_path) if any(spec.backend != "heuristic" for spec in specs) else None
    for spec, judge in zip(specs, judges):
        if cache is not None and spec.backend != "heuristic":
            judge.cache = cache  # type: ignore[attr-defined]  (LLM judges read answers through it)
    manifest = RunManifest.start(config, settings=stored_settings(settings), previous=previous)
    atomic_write_json(run_dir.manifest_path, manifest.to_json())

    try:
        with progress_bar(console, settings.progress, plan.expected, rows=plan.expected_rows,
                          rows_estimated=plan.rows_estimated,
                          rows_read=lambda: plan.selection_stats.rows_read,
                          tokens=any(spec.backend != "heuristic" for spec in specs), cost=cost) as tracker:
            run.on_progress = tracker.update
            counts = await run.run(prepared.items)
    except BaseException as error:
        # Say in run.json that this invocation stopped early; what it wrote stays and resumes. On a full
        # disk this write may fail too: the error that stopped the run is the one to report.
        stopped = manifest.model_copy(update={
            "state": "interrupted" if isinstance(error, KeyboardInterrupt | asyncio.CancelledError) else "failed",
            "stopped": _now(), "error": type(error).__name__})
        with contextlib.suppress(OSError, sqlite3.Error):
            atomic_write_json(run_dir.manifest_path, stopped.to_json())
        raise
    finally:
        await _close_all(judges)  # first: an in-process engine counts the requests it aborts as it stops
        transport_stats = [stats for judge in judges
                           if (stats := getattr(getattr(judge, "transport", None), "stats", None)) is not None]
        # In-process engines (vllm:<path>) say how they batched the requests, per judge.
        batching = {judge.name: stats.as_dict() for judge in judges
                    if (stats := getattr(judge, "batch_stats", None)) is not None}
        if cache is not None:
            cache.close()

    totals = run_dir.seal_shards(run.shard_status, plan.num_shards, run.rejects_recorded)
    log.info("sealed %d shard(s): %s; %s input reject(s)", plan.num_shards,
             ", ".join(f"{status} {count}" for status, count in totals.get("status", {}).items()) or "empty",
             totals.get("input_rejects", 0))
    # Each invocation's own settings: run.json's `settings` are the latest, and a resume may change the
    # operational ones (concurrency, rate, timeouts) that the fingerprint leaves free.
    invocation = {"finished": _now(), **counts.as_dict(), "selection": plan.selection_stats.to_dict(),
                  "settings": manifest.settings}
    if transport_stats:
        invocation["retries"] = sum(stats.retries for stats in transport_stats)
        invocation["errors"] = dict(sum((Counter(stats.errors) for stats in transport_stats), Counter()))
    if batching:
        invocation["batching"] = batching
    manifest = manifest.model_copy(update={"state": "complete", "finished": _now(), "totals": totals,
                                           "invocations": [*manifest.invocations, invocation]})
    atomic_write_json(run_dir.manifest_path, manifest.to_json())
    print_summary(console, settings.out, counts, totals, plan.selection_stats.to_dict(), batching, config=config)
    if any(judge.info.backend == "heuristic" for judge in judges):
        from splitreason.judges.kinds import HEURISTIC_NOTE

        console.print(f"note: {HEURISTIC_NOTE} (for real labels use an LLM judge: `splitreason judges`)",
                      highlight=False, soft_wrap=True)
    return counts


def _check_samples(settings: AnnotateSettings, judges: list) -> None:
    if settings.samples < 1:
        raise RunConfigError("--samples must be at least 1")
    if settings.samples == 1:
        return
    for judge in judges:
        if not judge.samples_differ:
            raise RunConfigError(f"judge {judge.name} gives the same answer every time, so --samples "
                                 f"{settings.samples} would measure nothing; use an LLM judge, or several --judge")
    if settings.temperature <= 0:
        raise RunConfigError(f"--samples {settings.samples} needs --temperature above 0 (e.g. 0.7): at temperature 0 "
                             "the samples would all be the same answer")


def _rescuer(settings: AnnotateSettings):
    if not settings.semantic_rescue:
        if settings.embedding_model or settings.semantic_threshold is not None:
            raise RunConfigError("--embedding-model and --semantic-threshold need --semantic-rescue")
        return None
    from splitreason.annotator.semantic import SemanticRescuer

    options = {} if settings.semantic_threshold is None else {"threshold": settings.semantic_threshold}
    rescuer = SemanticRescuer(settings.embedding_model, **options)
    rescuer.load()  # a missing extra or a bad model path stops the run here, before any judging
    return rescuer


async def _close_all(judges: list) -> None:
    for judge in judges:
        await judge.close()


def _check_out_outside_input(source: str, out: Path, from_shard_dir: bool) -> None:
    """OUT inside an input directory would be read back as input on resume (rejects.jsonl growing
    from its own lines without end), so it is refused; hidden folders are never read as input."""
    if from_shard_dir or not Path(source).is_dir():
        return
    try:
        inside = out.resolve().relative_to(Path(source).resolve())
    except ValueError:
        return
    if not any(part.startswith(".") for part in inside.parts):
        raise RunDirError(f"output directory {out} is inside the input directory {source}, so its files would be "
                          "read back as input; choose an output directory outside it (-o)")


def run_summary(out: Path, counts: RunCounts | None = None) -> dict:
    """What `annotate --json` prints: the input, the judges and OUT, what OUT holds, and this
    invocation's counts (the last one run.json records when `counts` is None, as after a Ray run)."""
    stored = RunDir(out).read_manifest()
    manifest = RunManifest.load(stored, where=str(RunDir(out).manifest_path)) if stored else None
    this_run = counts.as_dict() if counts is not None else \
        (manifest.invocations[-1] if manifest is not None and manifest.invocations else None)
    config = manifest.config if manifest is not None else None
    return {
        "out": str(out),
        "input": config.input if config else None,
        "judges": [judge.name for judge in [config.judge, *config.other_judges]] if config else [],
        "state": manifest.state if manifest else None,
        "in_out": manifest.totals if manifest else None,
        "this_run": this_run,
    }

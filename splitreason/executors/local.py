"""The annotate job end to end: resolve the judge, check OUT, run, record the manifest.

Kept apart from the CLI so tests and other tools can call `run_annotate` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from splitreason.annotator.progress import print_summary, progress_bar
from splitreason.annotator.routing import RoutingPolicy
from splitreason.annotator.run_config import (
    INPUT_SETTINGS,
    RunConfig,
    RunConfigError,
    check_compatible,
    environment_versions,
)
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


@dataclass
class AnnotateRequest:
    input: str | None
    out: Path
    judge: str = "heuristic"
    more_judges: tuple[str, ...] = ()  # --judge given again: each judges every trace too
    samples: int = 1
    min_agreement: float = 0.5
    semantic_rescue: bool = False
    embedding_model: str | None = None
    semantic_threshold: float | None = None
    base_url: str | None = None
    judges_file: Path | None = None
    target_coverage: float = 0.15
    min_coverage: float = 0.02
    max_coverage: float = 0.5
    accept_threshold: float = 0.75
    reject_threshold: float = 0.35
    fuzzy_threshold: float = 0.85
    concurrency: int = 16
    rpm: float | None = None
    timeout: float = 300.0
    max_attempts: int = 4
    retry_initial: float = 1.0
    retry_max: float = 30.0
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 4096
    seed: int | None = None
    response_format: str | None = None
    max_spans: int = 32
    max_excerpt_chars: int = 4000
    vllm_args: dict | None = None
    batch_size: int = 8  # model-grounded judges: traces per forward pass
    divergence: str = "greedy"  # divergence: judges: greedy or kl
    scoring_engine: str = "hf"  # model-grounded judges: hf or vllm (prompt logprobs)
    limit: int | None = None
    require_correct: bool = True
    require_stop: bool = True
    require_complete: bool = True
    hub_config: str | None = None
    hub_split: str = "train"
    num_shards: int | None = None
    shard_index: int | None = None
    retry_rejected: bool = False
    progress: bool = True


def _policy(request: AnnotateRequest) -> RoutingPolicy:
    try:
        return RoutingPolicy(
            target_coverage=request.target_coverage, min_coverage=request.min_coverage,
            max_coverage=request.max_coverage, accept_threshold=request.accept_threshold,
            reject_threshold=request.reject_threshold, min_agreement=request.min_agreement,
        )
    except ValueError as error:
        raise RunConfigError(str(error)) from error


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


def prepare_run(request: AnnotateRequest) -> PreparedRun:
    """Check the request and build its run config: options, the input (opened: it exists, reads, and
    a hub id loads), the judges (resolved, not started), the output path. Nothing is written. Apart
    from `run_annotate`, the Ray driver uses it to refuse changed settings before it submits any task."""
    policy = _policy(request)
    plan = plan_input(request.input, num_shards=request.num_shards, limit=request.limit)
    if request.shard_index is not None and request.shard_index >= plan.num_shards:
        raise RunDirError(f"--shard-index {request.shard_index} is out of range for {plan.num_shards} shards")
    _check_out_outside_input(plan.source, request.out, plan.from_shard_dir)
    check_output_path(request.out)
    selection = Selection(require_correct=request.require_correct, require_stop=request.require_stop,
                          require_complete=request.require_complete, limit=request.limit)
    items = plan.items(selection, hub_split=request.hub_split, hub_config=request.hub_config,
                       shard_indices=[request.shard_index] if request.shard_index is not None else None)
    aliases = load_aliases(request.judges_file)
    names = [request.judge, *request.more_judges]
    if len(set(names)) != len(names):
        raise RunConfigError(f"the same judge is given twice ({', '.join(names)}); use --samples to ask one judge "
                             "several times")
    specs = [resolve(name, aliases, base_url=request.base_url) for name in names]
    settings = JudgeSettings(
        sampling=SamplingParams(temperature=request.temperature, top_p=request.top_p,
                                max_tokens=request.max_tokens, seed=request.seed),
        retry=RetryPolicy(max_attempts=request.max_attempts, backoff_initial=request.retry_initial,
                          backoff_max=request.retry_max),
        timeout=request.timeout,
        requests_per_minute=request.rpm,
        response_format=request.response_format,
        max_spans=request.max_spans,
        max_excerpt_chars=request.max_excerpt_chars,
        vllm_engine_args=request.vllm_args or {},
        grounded=GroundedSettings(batch_size=request.batch_size, divergence=request.divergence,
                                  engine=request.scoring_engine, engine_args=request.vllm_args or {}),
    )
    if request.divergence != "greedy" and not any(spec.backend == "divergence" for spec in specs):
        raise RunConfigError(f"--divergence {request.divergence} applies to divergence:SMALL,LARGE judges only")
    judges = [create_judge(spec, settings, cache=None) for spec in specs]
    _check_samples(request, judges)
    rescuer = _rescuer(request)
    config = RunConfig(
        input=plan.source, judge=judges[0].info, other_judges=[judge.info for judge in judges[1:]],
        samples=request.samples, min_agreement=policy.min_agreement,
        semantic_rescue=rescuer.info if rescuer is not None else None, target_coverage=policy.target_coverage,
        min_coverage=policy.min_coverage, max_coverage=policy.max_coverage,
        accept_threshold=policy.accept_threshold, reject_threshold=policy.reject_threshold,
        fuzzy_threshold=request.fuzzy_threshold, require_correct=request.require_correct,
        require_stop=request.require_stop, require_complete=request.require_complete, limit=request.limit,
        num_shards=plan.num_shards, shard_index=request.shard_index, hub_config=request.hub_config,
        hub_split=request.hub_split, concurrency=request.concurrency, requests_per_minute=request.rpm,
        timeout=request.timeout, max_attempts=request.max_attempts,
    )
    return PreparedRun(policy=policy, plan=plan, specs=specs, judges=judges, rescuer=rescuer, config=config,
                       items=items)


def settled_manifest(run_dir: RunDir, config: RunConfig, *, also: tuple[str, ...] = ()) -> dict | None:
    """OUT's run.json when this run continues it, after refusing settings that differ from those of
    the annotations OUT holds; None when OUT is new or holds no annotated trace yet (a run that
    annotated nothing does not bind OUT to its settings: `clear_unannotated` then starts it afresh)."""
    previous = run_dir.read_manifest()
    if previous is None:
        return None
    if run_dir.holds_annotations():
        check_compatible(previous["config"], config, also=also)
        return previous
    try:
        check_compatible(previous["config"], config, also=(*also, *INPUT_SETTINGS, "input"))
    except RunConfigError:
        return None
    return previous


async def run_annotate(request: AnnotateRequest, console: Console) -> RunCounts:
    """Validate everything, start the judges, then create and lock OUT, check it again under the
    lock, and run. A run that cannot start leaves OUT as it was (and no OUT where there was none)."""
    prepared = prepare_run(request)
    run_dir = RunDir(request.out)
    settled_manifest(run_dir, prepared.config)  # a conflict stops here, before any judge starts
    try:
        for judge in prepared.judges:
            await judge.start()  # an unreachable judge stops here, before anything is written
        lock = claim_output_dir(request.out)
    except BaseException:
        await _close_all(prepared.judges)
        raise
    run: AnnotationRun | None = None
    try:
        # Another run may have finished in OUT between the checks above and the lock: check again.
        previous = settled_manifest(run_dir, prepared.config)
        if previous is None and run_dir.manifest_path.exists():
            run_dir.clear_unannotated()
        run = AnnotationRun(run_dir, prepared.judges, _options(request, prepared))
        with environment_errors(lambda: _saved(run, request.out), path=request.out):
            return await _run_locked(request, prepared, run_dir, run, previous, console)
    except BaseException:
        lock.discard()  # removes an OUT this run created only while it holds nothing but the lock
        raise
    finally:
        try:
            await _close_all(prepared.judges)  # closed already unless the run stopped before it began
        finally:
            lock.release()


def _options(request: AnnotateRequest, prepared: PreparedRun) -> AnnotateOptions:
    return AnnotateOptions(policy=prepared.policy, concurrency=request.concurrency,
                           num_shards=prepared.plan.num_shards, shard_index=request.shard_index,
                           retry_rejected=request.retry_rejected, fuzzy_threshold=request.fuzzy_threshold,
                           samples=request.samples, rescuer=prepared.rescuer)


def _saved(run: AnnotationRun | None, out: Path) -> str:
    """What a run that stopped on a full disk leaves (for its one-line error)."""
    if run is None or not run.started:
        return f"nothing of this run was written to {out}"
    counts = run.counts
    return (f"{counts.annotated} traces annotated by this run and {counts.already_done} from before are saved in "
            f"{out}, no line cut short")


async def _run_locked(request: AnnotateRequest, prepared: PreparedRun, run_dir: RunDir, run: AnnotationRun,
                      previous: dict | None, console: Console) -> RunCounts:
    """The run itself, OUT locked and checked."""
    specs, judges, plan, config = prepared.specs, prepared.judges, prepared.plan, prepared.config
    run.started = True
    run_dir.prepare()
    cache = RequestCache(run_dir.cache_path) if any(spec.backend != "heuristic" for spec in specs) else None
    for spec, judge in zip(specs, judges):
        if cache is not None and spec.backend != "heuristic":
            judge.cache = cache  # type: ignore[attr-defined]  (LLM judges read answers through it)
    manifest = {
        "format": "splitreason-run", "format_version": 1, "config": config.model_dump(mode="json"),
        "versions": environment_versions(), "started": _now(), "state": "running",
        "invocations": (previous or {}).get("invocations", []),
    }
    atomic_write_json(run_dir.manifest_path, manifest)

    try:
        with progress_bar(console, request.progress, plan.expected) as tracker:
            run.on_progress = tracker.update
            counts = await run.run(prepared.items)
    except BaseException as error:
        # Say in run.json that this invocation stopped early; what it wrote stays and resumes. On a full
        # disk this write may fail too: the error that stopped the run is the one to report.
        manifest.update(state="interrupted" if isinstance(error, KeyboardInterrupt | asyncio.CancelledError)
                        else "failed", stopped=_now(), error=type(error).__name__)
        with contextlib.suppress(OSError, sqlite3.Error):
            atomic_write_json(run_dir.manifest_path, manifest)
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
    invocation = {"finished": _now(), **counts.as_dict(), "selection": plan.selection_stats.to_dict()}
    if transport_stats:
        invocation["retries"] = sum(stats.retries for stats in transport_stats)
        invocation["errors"] = dict(sum((Counter(stats.errors) for stats in transport_stats), Counter()))
    if batching:
        invocation["batching"] = batching
    manifest.update(state="complete", finished=_now(), totals=totals,
                    invocations=[*manifest["invocations"], invocation])
    atomic_write_json(run_dir.manifest_path, manifest)
    print_summary(console, request.out, counts, totals, plan.selection_stats.to_dict(), batching)
    if any(judge.info.backend == "heuristic" for judge in judges):
        from splitreason.judges.kinds import HEURISTIC_NOTE

        console.print(f"note: {HEURISTIC_NOTE} (for real labels use an LLM judge: `splitreason judges`)",
                      highlight=False, soft_wrap=True)
    return counts


def _check_samples(request: AnnotateRequest, judges: list) -> None:
    if request.samples < 1:
        raise RunConfigError("--samples must be at least 1")
    if request.samples == 1:
        return
    for judge in judges:
        if not judge.samples_differ:
            raise RunConfigError(f"judge {judge.name} gives the same answer every time, so --samples "
                                 f"{request.samples} would measure nothing; use an LLM judge, or several --judge")
    if request.temperature <= 0:
        raise RunConfigError(f"--samples {request.samples} needs --temperature above 0 (e.g. 0.7): at temperature 0 "
                             "the samples would all be the same answer")


def _rescuer(request: AnnotateRequest):
    if not request.semantic_rescue:
        if request.embedding_model or request.semantic_threshold is not None:
            raise RunConfigError("--embedding-model and --semantic-threshold need --semantic-rescue")
        return None
    from splitreason.annotator.semantic import SemanticRescuer

    options = {} if request.semantic_threshold is None else {"threshold": request.semantic_threshold}
    rescuer = SemanticRescuer(request.embedding_model, **options)
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


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

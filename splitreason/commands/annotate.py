"""`splitreason annotate`: options -> AnnotateSettings -> the local run or the Ray driver."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import (
    INPUT,
    JUDGE,
    MODEL,
    OUTPUT,
    PERFORMANCE,
    ROUTING,
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
)
from splitreason.schemas.annotate import AnnotateSettings as S
from splitreason.schemas.annotate import Divergence, Engine, ResponseFormat, ScoringEngine
from splitreason.schemas.settings import ModelDtype

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


_opt = settings_options(S)  # options whose help is the settings field's description


def annotate(
    ctx: typer.Context,
    input: Annotated[str | None, typer.Argument(help=S.help("input"), show_default=False)] = S.default("input"),
    out: Annotated[Path | None, _opt("out", "--output", "-o", panel=OUTPUT, show_default=str(S.default("out")))] = None,
    legacy_out: LegacyOut = None,
    config: ConfigFile = None,
    limit: Annotated[int | None, _opt("limit", panel=INPUT)] = S.default("limit"),
    include_incorrect: IncludeIncorrect = S.default("include_incorrect"),
    include_unfinished: IncludeUnfinished = S.default("include_unfinished"),
    include_incomplete: IncludeIncomplete = S.default("include_incomplete"),
    hub_config: HubConfig = S.default("hub_config"),
    hub_split: HubSplit = S.default("hub_split"),
    num_shards: Annotated[int | None, _opt("num_shards", panel=INPUT)] = S.default("num_shards"),
    shard_index: Annotated[int | None, _opt("shard_index", panel=INPUT)] = S.default("shard_index"),
    judge: Annotated[list[str] | None, _opt("judge", "--judge", "-j", panel=JUDGE,
                                            show_default="heuristic")] = None,
    samples: Annotated[int, _opt("samples", panel=JUDGE)] = S.default("samples"),
    base_url: Annotated[str | None, _opt("base_url", panel=JUDGE)] = S.default("base_url"),
    judges_file: Annotated[Path | None, _opt("judges_file", panel=JUDGE, dir_okay=False)] = S.default("judges_file"),
    temperature: Annotated[float, _opt("temperature", panel=JUDGE)] = S.default("temperature"),
    top_p: Annotated[float, _opt("top_p", panel=JUDGE)] = S.default("top_p"),
    max_tokens: Annotated[int, _opt("max_tokens", panel=JUDGE)] = S.default("max_tokens"),
    seed: Annotated[int | None, _opt("seed", panel=JUDGE)] = S.default("seed"),
    response_format: Annotated[ResponseFormat | None, _opt("response_format", panel=JUDGE)] = None,
    max_spans: Annotated[int, _opt("max_spans", panel=JUDGE)] = S.default("max_spans"),
    max_excerpt_chars: Annotated[int, _opt("max_excerpt_chars", panel=JUDGE)] = S.default("max_excerpt_chars"),
    vllm_args: Annotated[list[str] | None, _opt("vllm_args", "--vllm-arg", panel=MODEL)] = None,
    batch_size: Annotated[int, _opt("batch_size", panel=MODEL)] = S.default("batch_size"),
    divergence: Annotated[Divergence, _opt("divergence", panel=MODEL)] = S.default("divergence"),
    scoring_engine: Annotated[ScoringEngine, _opt("scoring_engine", panel=MODEL)] = S.default("scoring_engine"),
    device: Annotated[str, _opt("device", panel=MODEL)] = S.default("device"),
    dtype: Annotated[ModelDtype, _opt("dtype", panel=MODEL)] = S.default("dtype"),
    max_length: Annotated[int | None, _opt("max_length", panel=MODEL)] = S.default("max_length"),
    target_coverage: Annotated[float, _opt("target_coverage", panel=ROUTING)] = S.default("target_coverage"),
    min_coverage: Annotated[float, _opt("min_coverage", panel=ROUTING)] = S.default("min_coverage"),
    max_coverage: Annotated[float, _opt("max_coverage", panel=ROUTING)] = S.default("max_coverage"),
    accept_threshold: Annotated[float, _opt("accept_threshold", panel=ROUTING)] = S.default("accept_threshold"),
    reject_threshold: Annotated[float, _opt("reject_threshold", panel=ROUTING)] = S.default("reject_threshold"),
    min_agreement: Annotated[float, _opt("min_agreement", panel=ROUTING)] = S.default("min_agreement"),
    fuzzy_threshold: Annotated[float, _opt("fuzzy_threshold", panel=ROUTING)] = S.default("fuzzy_threshold"),
    semantic_rescue: Annotated[bool, _opt("semantic_rescue", panel=ROUTING)] = S.default("semantic_rescue"),
    embedding_model: Annotated[str | None, _opt("embedding_model", panel=ROUTING)] = S.default("embedding_model"),
    semantic_threshold: Annotated[float | None, _opt("semantic_threshold", panel=ROUTING)] = S.default("semantic_threshold"),
    retry_rejected: Annotated[bool, _opt("retry_rejected", panel=OUTPUT)] = S.default("retry_rejected"),
    as_json: AsJson = False,
    concurrency: Annotated[int, _opt("concurrency", panel=PERFORMANCE)] = S.default("concurrency"),
    rpm: Annotated[float | None, _opt("rpm", "--rpm", panel=PERFORMANCE)] = S.default("rpm"),
    timeout: Annotated[float, _opt("timeout", panel=PERFORMANCE)] = S.default("timeout"),
    max_attempts: Annotated[int, _opt("max_attempts", panel=PERFORMANCE)] = S.default("max_attempts"),
    retry_initial: Annotated[float, _opt("retry_initial", panel=PERFORMANCE)] = S.default("retry_initial"),
    retry_max: Annotated[float, _opt("retry_max", panel=PERFORMANCE)] = S.default("retry_max"),
    progress: Annotated[bool, _opt("progress", panel=PERFORMANCE)] = S.default("progress"),
    engine: Annotated[Engine, _opt("engine", panel=PERFORMANCE)] = S.default("engine"),
    ray_address: Annotated[str | None, _opt("ray_address", panel=PERFORMANCE)] = S.default("ray_address"),
    ray_num_cpus: Annotated[float, _opt("ray_num_cpus", panel=PERFORMANCE)] = S.default("ray_num_cpus"),
) -> None:
    """Annotate difficult spans of reasoning traces and write them to OUT.

    The summary (on stderr; with --json on stdout) names the input, the judge and OUT.
    """
    ctx.params["out"] = pick_output(out, legacy_out)
    settings = build_settings(ctx, S, required=("out", "judge", "vllm_args", "response_format"))
    try:
        if settings.engine is Engine.ray:
            from splitreason.executors.ray_engine import default_address, run_on_ray

            run_on_ray(settings, console, address=settings.ray_address or default_address(),
                       num_cpus=settings.ray_num_cpus)
            summary = None
        else:
            from splitreason.executors.local import run_annotate

            summary = asyncio.run(run_annotate(settings, console, cost=_cost_so_far(settings)))
    except KeyboardInterrupt:  # typer would turn it into a silent exit 130; say how to go on
        console.print("interrupted: outputs so far are saved; run the same command again to resume")
        raise typer.Exit(130) from None
    if as_json:
        from splitreason.executors.local import run_summary

        print(json.dumps(run_summary(settings.out, summary), indent=2, ensure_ascii=False))


def _cost_so_far(settings: S):  # type: ignore[no-untyped-def]
    """Dollars for tokens at the shipped list prices (report/prices.toml), for the progress bar of
    judges paid by the token; None for the offline heuristic judge."""
    if all(name == "heuristic" for name in settings.judge):
        return None
    from splitreason.report.prices import PriceTable
    from splitreason.report.stats import JudgeUsage

    table, judges = PriceTable.load(), tuple(name for name in settings.judge if name != "heuristic")

    def cost(prompt_tokens: int, completion_tokens: int) -> float | None:
        usage = JudgeUsage(judges=judges, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        return table.cost(", ".join(judges), usage).dollars

    return cost

"""`splitreason evaluate simulate`: projected latency of a small/large pair against the large model alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from splitreason.commands.options import INPUT, LATENCY, OUTPUT, ConfigFile, result_console, typed_on_command_line
from splitreason.schemas.evaluate_simulate import EvaluateSimulateSettings as Settings

Gpu = Settings.model_fields["gpu"].annotation  # a closed set: the CLI shows its choices


def _option(name: str, *flags: str, panel: str = INPUT, **extra):  # type: ignore[no-untyped-def]
    return typer.Option(*flags, help=Settings.help(name), rich_help_panel=panel, **extra)


def simulate(
    ctx: typer.Context,
    offload_share: Annotated[float | None, _option("offload_share")] = None,
    prompt_tokens: Annotated[int, _option("prompt_tokens")] = Settings.default("prompt_tokens"),
    decode_tokens: Annotated[int, _option("decode_tokens")] = Settings.default("decode_tokens"),
    segment_tokens: Annotated[int | None, _option("segment_tokens")] = None,
    chunk_tokens: Annotated[int | None, _option("chunk_tokens")] = None,
    paper_rounding: Annotated[bool, _option("paper_rounding")] = False,
    evaluation: Annotated[Path | None, _option("evaluation", file_okay=False)] = None,
    mode: Annotated[str, _option("mode")] = Settings.default("mode"),
    pipelined: Annotated[bool, typer.Option("--pipelined/--sequential", help=Settings.help("schedule"), rich_help_panel=LATENCY)] = True,
    profile: Annotated[str | None, _option("profile", panel=LATENCY)] = None,
    small_prefill: Annotated[float | None, _option("small_prefill", panel=LATENCY)] = None,
    small_decode: Annotated[float | None, _option("small_decode", panel=LATENCY)] = None,
    large_prefill: Annotated[float | None, _option("large_prefill", panel=LATENCY)] = None,
    large_decode: Annotated[float | None, _option("large_decode", panel=LATENCY)] = None,
    gpu: Annotated[Gpu, _option("gpu", panel=LATENCY, case_sensitive=False)] = None,
    small_params: Annotated[float | None, _option("small_params", panel=LATENCY)] = None,
    large_params: Annotated[float | None, _option("large_params", panel=LATENCY)] = None,
    bytes_per_param: Annotated[float, _option("bytes_per_param", panel=LATENCY)] = Settings.default("bytes_per_param"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.", rich_help_panel=OUTPUT)] = False,
    config: ConfigFile = None,
) -> None:
    """Project the time a small/large pair takes to write an answer, and its speed-up over the large model alone.

    Input: a synthetic answer (--offload-share) or an evaluation's real segments (--evaluation OUT).
    Rates: --profile (a6000-paper ships), each rate on its own, or a roofline (--gpu with parameter counts).
    """
    given = dict(offload_share=offload_share, prompt_tokens=prompt_tokens, decode_tokens=decode_tokens,
                 segment_tokens=segment_tokens, chunk_tokens=chunk_tokens, paper_rounding=paper_rounding,
                 evaluation=evaluation, mode=mode, schedule="pipelined" if pipelined else "sequential",
                 profile=profile, small_prefill=small_prefill, small_decode=small_decode,
                 large_prefill=large_prefill, large_decode=large_decode, gpu=gpu, small_params=small_params,
                 large_params=large_params, bytes_per_param=bytes_per_param)
    explicit = {"schedule" if name == "pipelined" else name for name in typed_on_command_line(ctx)}
    settings = Settings.build({k: v for k, v in given.items() if v is not None}, explicit=explicit,
                              config_file=config)
    from splitreason.evaluate.simulate import simulate as project

    report = project(settings)
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print(report)


def _print(report: dict) -> None:
    from rich.table import Table

    console = result_console()
    if report["input"] == "synthetic":
        what = (f"synthetic answer: {report['decode_tokens']:,} tokens after a {report['prompt_tokens']:,}-token prompt"
                + (", paper's rounding" if report["paper_rounding"] else ""))
    else:
        what = f"{report['evaluation']}: {report['samples']} samples of mode {report['mode']} (means per sample)"
    table = Table(title=what, show_header=True)
    for column in ("schedule", "pair", "large alone", "speed-up", "prefill", "decode", "handoff costs"):
        table.add_column(column, justify="left" if column == "schedule" else "right")
    for schedule in ("pipelined", "sequential"):
        figures = report[schedule]
        marker = " (chosen)" if schedule == report["schedule"] else ""
        table.add_row(schedule + marker, f"{figures['pair_s']:,.1f} s", f"{report['large_alone_s']:,.1f} s",
                      f"{figures['speedup']:.2f}x", f"{figures['prefill_s']:,.2f} s", f"{figures['decode_s']:,.1f} s",
                      f"{figures['handoff_s']:,.1f} s")
    console.print(table)
    console.print(f"offload share {report['offload_share']:.2%} ({report['large_tokens']:,.0f} of "
                  f"{report['small_tokens'] + report['large_tokens']:,.0f} tokens by the large model, "
                  f"{report['handoffs']:.1f} handoffs), chunks of {report['chunk_tokens']}; "
                  f"small model alone {report['small_alone_s']:,.1f} s")
    if "speedup_vs_large_runs" in report:
        console.print(f"against the large model's own answers (mode large, {report['large_runs_s']:,.1f} s): "
                      f"{report['speedup_vs_large_runs']:.2f}x")
    console.print(f"rates: {report['rates']['source']}")

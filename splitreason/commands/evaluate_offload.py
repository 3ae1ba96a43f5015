"""`splitreason evaluate offload`: the small model hands its hard steps to the large one on an
evaluation set; accuracy, offload share and latency per mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import (HANDOFF, INPUT, LATENCY, OUTPUT, PERFORMANCE, SAMPLING, ConfigFile,
                                          build_settings, settings_options)
from splitreason.schemas.evaluate_offload import EvaluateOffloadSettings as S

Dtype = S.model_fields["dtype"].annotation  # a closed set: the CLI shows its choices

console = Console(stderr=True, emoji=False, highlight=False)
opt = settings_options(S)

# Closed sets as the settings declare them: the CLI shows their choices.
Backend = S.model_fields["backend"].annotation


def offload(
    ctx: typer.Context,
    small: Annotated[str | None, opt("small", "--small", panel=INPUT, show_default=False)] = None,
    large: Annotated[str | None, opt("large", "--large", panel=INPUT, show_default=False)] = None,
    eval_set: Annotated[str | None, opt("eval_set", "--eval-set", panel=INPUT, show_default=False)] = None,
    modes: Annotated[list[str] | None, opt("modes", "--mode", panel=INPUT, show_default=False)] = None,
    small_url: Annotated[str | None, opt("small_url", panel=INPUT)] = None,
    large_url: Annotated[str | None, opt("large_url", panel=INPUT)] = None,
    instruction: Annotated[str | None, opt("instruction", panel=INPUT)] = None,
    problem_field: Annotated[str | None, opt("problem_field", panel=INPUT)] = None,
    answer_field: Annotated[str | None, opt("answer_field", panel=INPUT)] = None,
    id_field: Annotated[str | None, opt("id_field", panel=INPUT)] = None,
    limit: Annotated[int | None, opt("limit", panel=INPUT)] = None,
    chunk_tokens: Annotated[int, opt("chunk_tokens", panel=HANDOFF)] = S.default("chunk_tokens"),
    max_segment_tokens: Annotated[int, opt("max_segment_tokens", panel=HANDOFF)] = S.default("max_segment_tokens"),
    max_tokens: Annotated[int, opt("max_tokens", panel=HANDOFF)] = S.default("max_tokens"),
    close_threshold: Annotated[float | None, opt("close_threshold", panel=HANDOFF)] = None,
    temperature: Annotated[float, opt("temperature", panel=SAMPLING)] = S.default("temperature"),
    top_p: Annotated[float, opt("top_p", panel=SAMPLING)] = S.default("top_p"),
    seed: Annotated[int, opt("seed", panel=SAMPLING)] = S.default("seed"),
    samples: Annotated[int, opt("samples", panel=SAMPLING)] = S.default("samples"),
    offload_share: Annotated[float | None, opt("offload_share", panel=HANDOFF)] = None,
    random_segment_tokens: Annotated[int | None, opt("random_segment_tokens", panel=HANDOFF)] = None,
    backend: Annotated[Backend, opt("backend", panel=PERFORMANCE)] = S.default("backend"),
    device: Annotated[str, opt("device", panel=PERFORMANCE)] = S.default("device"),
    dtype: Annotated[Dtype, opt("dtype", panel=PERFORMANCE)] = S.default("dtype"),
    vllm_max_model_len: Annotated[int | None, opt("vllm_max_model_len", panel=PERFORMANCE)] = None,
    small_gpu_share: Annotated[float, opt("small_gpu_share", panel=PERFORMANCE)] = S.default("small_gpu_share"),
    large_gpu_share: Annotated[float, opt("large_gpu_share", panel=PERFORMANCE)] = S.default("large_gpu_share"),
    large_tensor_parallel: Annotated[int, opt("large_tensor_parallel", panel=PERFORMANCE)] = S.default(
        "large_tensor_parallel"),
    profile: Annotated[str, opt("profile", panel=LATENCY)] = S.default("profile"),
    timeout_s: Annotated[float, opt("timeout_s", "--timeout-s", panel=PERFORMANCE)] = S.default("timeout_s"),
    output: Annotated[Path | None, opt("output", "--output", "-o", panel=OUTPUT, show_default=False)] = None,
    progress: Annotated[bool, opt("progress", panel=OUTPUT)] = S.default("progress"),
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json on stdout instead of the table.",
                                          rich_help_panel=OUTPUT)] = False,
    config: ConfigFile = None,
) -> None:
    """Run the small model, handing its <bigmodel> segments to the large model, on an evaluation set.

    Modes (--mode, several at once, on the same problems and seeds): learned, small, large, random.
    OUT/samples.jsonl holds every sample (prompts as ids, segments, tokens by model, forward passes,
    answer, gold, verdict, wall time); OUT/summary.json the figures per mode. Rerun to resume.
    """
    from splitreason.evaluate.offload.run import run_offload

    ctx.params.pop("as_json", None)
    if not ctx.params.get("modes"):  # typer gives () for a list option not given: the field's default applies
        ctx.params["modes"] = None
    if output is not None:  # OUT is a directory: `-o -` would make a folder named `-`
        from splitreason.io.lock import refuse_dash_for_directory

        refuse_dash_for_directory(output)
    settings = build_settings(ctx, S, required=("eval_set", "output", "modes"))
    with _progress(settings.progress and console.is_terminal) as advance:
        result = run_offload(settings, progress=advance)
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    if as_json:
        print(json.dumps(result.summary, indent=2, ensure_ascii=False))
    else:
        print_summary(result.summary)
        console.print(f"{result.written} samples written, {result.resumed} kept from before; "
                      f"{settings.output}/samples.jsonl, summary.json", soft_wrap=True)


class _progress:
    """A rich bar over the run's samples (nothing when not on a terminal)."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.task = enabled, None, None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("samples"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)
        self.bar.start()
        return self.advance

    def advance(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("samples", total=total)
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


def print_summary(summary: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{summary['eval_set']}: {summary['problems']} problems x {summary['samples_per_problem']} "
                  f"samples", show_header=True)
    for column in ("mode", "acc (95% CI)", "maj", "tokens", "offload", "handoffs", "forced", "wall s", "speed-up"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, figures in summary["modes"].items():
        low, high = figures["accuracy_ci95"]
        projected = figures.get("projected")
        speedup = "-"
        if projected and projected["pipelined"]["speedup"]:
            speedup = f"{projected['pipelined']['speedup']:.2f}x/{projected['sequential']['speedup']:.2f}x"
        table.add_row(mode, f"{figures['accuracy']:.1%} ({low:.0%}-{high:.0%})",
                      f"{figures['majority_accuracy']:.0%}" if summary["samples_per_problem"] > 1 else "-",
                      f"{figures['tokens_mean']:.0f}", f"{figures['offload_share']:.1%}",
                      f"{figures['handoffs_per_sample']:.2f}", f"{figures['forced_closes_per_sample']:.2f}",
                      f"{figures['wall_s_mean']:.2f}", speedup)
    from splitreason.commands.options import result_console

    result_console().print(table)  # plain columns in a pipe: headers are not cut to "offlo…"
    print("acc: mean over samples; maj: majority vote over a problem's samples; offload: the large model's share "
          "of all tokens; handoffs, forced (closes cut at --max-segment-tokens or by the answer's end): per sample; wall s: measured generation per sample; speed-up: projected, "
          f"large alone over the pair on the same answers, pipelined/sequential, rates: {summary['rates']}")

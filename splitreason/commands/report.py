"""`splitreason report`: one self-contained HTML page about a run, and a terminal summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import RunDirArg
from splitreason.errors import ServiceUnavailable

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


class ReportUnavailable(ServiceUnavailable, RuntimeError):
    """The report cannot be built in this environment (a missing optional dependency)."""


def report(
    run: RunDirArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.", dir_okay=False)],
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer (path or hub id) of the model to be trained: "
                                                  "offload share and span lengths in its tokens.")] = None,
    curation: Annotated[Path | None, typer.Option(
        help="Output directory of `splitreason curate` (default: the run's input, when it holds a curate.json).",
        file_okay=False)] = None,
    prices: Annotated[Path | None, typer.Option(help="TOML price table (dollars per million tokens per judge) "
                                                "replacing the shipped list prices judge by judge.",
                                                exists=True, dir_okay=False)] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Coverage, spans, confidence, review, offload share, curation and judge cost of a run, as one HTML file."""
    try:
        from splitreason.report.html import render_html
    except ImportError as error:
        if not (error.name or "").startswith("matplotlib"):
            raise
        raise ReportUnavailable("the report needs matplotlib: pip install 'splitreason[report]'") from error
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from splitreason.exports.sft import TokenCounter
    from splitreason.io.environment import environment_errors
    from splitreason.io.jsonl import atomic_write_text
    from splitreason.io.lock import claim_output_file
    from splitreason.io.run_dir import RunDir
    from splitreason.report.collect import collect_report, count_annotations
    from splitreason.report.terminal import print_summary

    try:
        counter = TokenCounter(tokenizer) if tokenizer else None
    except Exception as error:  # a wrong path or hub id is a user error, not an internal one
        detail = " ".join(str(error).split())[:300]
        raise typer.BadParameter(f"cannot load tokenizer {tokenizer}: {detail}", param_hint="--tokenizer") from error
    with Progress(TextColumn("reading annotations"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("annotations", total=count_annotations(RunDir(run)))
        data = collect_report(run, tokens=counter, tokenizer=tokenizer, curation=curation, prices_file=prices,
                              on_progress=lambda n: bar.advance(task, n))
    for warning in data.review_warnings:
        console.print(warning, highlight=False)
    with claim_output_file(output, f"report {output}"), \
            environment_errors(f"{output} was left as it was (it is replaced only when complete)", path=output):
        atomic_write_text(output, render_html(data))
    print_summary(Console(markup=False, emoji=False), data, output)

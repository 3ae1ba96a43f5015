"""`splitreason report`: one self-contained HTML page about a run, and a terminal summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import OUTPUT, AsJson, RunDirArg, result_console
from splitreason.errors import ServiceUnavailable, one_line

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


class ReportUnavailable(ServiceUnavailable, RuntimeError):
    """The report cannot be built in this environment (a missing optional dependency)."""


def report(
    run: RunDirArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write; - writes the page to stdout "
                                         "(the summary goes to stderr).", dir_okay=False, allow_dash=True,
                                         rich_help_panel=OUTPUT)],
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer (path or hub id) of the model to be trained: "
                                                  "offload share and span lengths in its tokens.")] = None,
    curation: Annotated[Path | None, typer.Option(
        help="Output directory of `splitreason curate` (default: the run's input, when it holds a curate.json).",
        file_okay=False)] = None,
    prices: Annotated[Path | None, typer.Option(help="TOML price table (dollars per million tokens per judge) "
                                                "replacing the shipped list prices judge by judge.",
                                                exists=True, dir_okay=False)] = None,
    evaluation: Annotated[list[Path] | None, typer.Option(
        "--evaluation", help="An `evaluate offload` output directory to show (several: give it again; default: "
        "those the run directory holds).", file_okay=False)] = None,
    labels: Annotated[Path | None, typer.Option(help="JSON written by `splitreason evaluate labels --json`: adds how "
                                                "well each labelling picks out the small model's trouble.",
                                                exists=True, dir_okay=False)] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on stderr).")] = True,
    as_json: AsJson = False,
) -> None:
    """Coverage, spans, confidence, review, offload share, curation, judge cost and evaluations of a run, as one HTML file."""
    try:
        from splitreason.report.html import render_html
    except ImportError as error:
        if not (error.name or "").startswith("matplotlib"):
            raise
        raise ReportUnavailable("the report needs matplotlib: pip install 'splitreason[report]'") from error
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from splitreason.io.environment import environment_errors
    from splitreason.models.tokens import TokenCounter
    from splitreason.io.jsonl import atomic_write_text
    from splitreason.io.lock import claim_output_file
    from splitreason.io.run_dir import RunDir
    from splitreason.report.collect import collect_report, count_annotations
    from splitreason.report.terminal import print_summary

    labels_report = _read_labels(labels) if labels is not None else None
    counter = TokenCounter(tokenizer) if tokenizer else None  # a wrong path or hub id: ModelError, one line
    with Progress(TextColumn("reading annotations"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("annotations", total=count_annotations(RunDir(run)))
        data = collect_report(run, tokens=counter, tokenizer=tokenizer, curation=curation, prices_file=prices,
                              on_progress=lambda n: bar.advance(task, n),
                              evaluations=list(evaluation or []) or None)
    data.labels = labels_report
    for warning in data.review_warnings:
        console.print(warning, highlight=False)
    if str(output) == "-":
        if as_json:
            from splitreason.errors import UsageError

            raise UsageError("-o - writes the page to stdout; --json would mix the summary into it: give one")
        sys.stdout.write(render_html(data))
        sys.stdout.flush()
        print_summary(console, data, "stdout")
        return
    with claim_output_file(output, f"report {output}"), \
            environment_errors(f"{output} was left as it was (it is replaced only when complete)", path=output):
        atomic_write_text(output, render_html(data))
    if as_json:
        from splitreason.report.terminal import summary_numbers

        print(json.dumps(summary_numbers(data, str(output)), indent=2, ensure_ascii=False, default=str))
        return
    print_summary(result_console(), data, output)


def _read_labels(path: Path):
    """`evaluate labels --json` output, or one line saying why it cannot be used."""
    from pydantic import ValidationError

    from splitreason.errors import UsageError
    from splitreason.schemas.label_eval import LabelsReport

    try:
        return LabelsReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValidationError) as error:
        if isinstance(error, ValidationError):
            first = error.errors()[0]
            detail = f"{'.'.join(map(str, first['loc'])) or 'the file'}: {first['msg']}"
        else:
            detail = one_line(error, 200)
        raise UsageError(f"--labels {path} is not the JSON of `splitreason evaluate labels --json` ({detail})") from None

"""`splitreason evaluate grade PREDICTIONS --eval-set SET`: grade answers made anywhere."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import result_console, typed_on_command_line
from splitreason.schemas.evaluate_grade import EvaluateGradeSettings as Settings

console = Console(stderr=True, markup=False, emoji=False, highlight=False)
MAX_REJECT_LINES = 20


def grade(
    ctx: typer.Context,
    predictions: Annotated[Path, typer.Argument(help=Settings.help("predictions"), dir_okay=False)],
    eval_set: Annotated[str | None, typer.Option("--eval-set", help=Settings.help("eval_set"))] = None,
    id_field: Annotated[str | None, typer.Option(help=Settings.help("id_field"))] = Settings.default("id_field"),
    problem_field: Annotated[str | None, typer.Option(help=Settings.help("problem_field"))] = Settings.default("problem_field"),
    answer_field: Annotated[str | None, typer.Option(help=Settings.help("answer_field"))] = Settings.default("answer_field"),
    output: Annotated[Path | None, typer.Option("--output", "-o", help=Settings.help("output") + " - writes them to "
                                                "stdout (the figures go to stderr).", dir_okay=False,
                                                allow_dash=True)] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help=Settings.help("timeout_s"))] = Settings.default("timeout_s"),
    workers: Annotated[int, typer.Option(help=Settings.help("workers"))] = Settings.default("workers"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="TOML or YAML file of settings.", dir_okay=False)] = None,
) -> None:
    """Grade PREDICTIONS (JSONL rows with `text` and the problem's `id` or `index`) against an evaluation set.

    Prints accuracy with its 95 % interval, answers not found, and the majority vote where a problem has
    several samples; -o writes every row with its extracted answer, gold and verdict.
    """
    given = dict(predictions=predictions, eval_set=eval_set, id_field=id_field, problem_field=problem_field,
                 answer_field=answer_field, output=output, timeout_s=timeout_s, workers=workers)
    settings = Settings.build({k: v for k, v in given.items() if v is not None},
                              explicit=typed_on_command_line(ctx), config_file=config)
    from splitreason.evaluate.grading import Grader
    from splitreason.evaluate.predictions import check_predictions_file, grade_predictions, read_predictions
    from splitreason.io.eval_sets import load_eval_set
    from splitreason.io.environment import environment_errors
    from splitreason.io.jsonl import atomic_writer, record_to_line
    from splitreason.io.lock import claim_output_file

    to_stdout = settings.output is not None and str(settings.output) == "-"
    if to_stdout and as_json:
        from splitreason.errors import UsageError

        raise UsageError("-o - writes the graded rows to stdout; --json would mix the figures into them: give one")
    check_predictions_file(settings.predictions)  # local files first: the evaluation set may need the hub
    evaluation = load_eval_set(settings.eval_set, problem_field=settings.problem_field,
                               answer_field=settings.answer_field, id_field=settings.id_field, need_answers=True)
    rows = read_predictions(settings.predictions, evaluation, id_field=settings.id_field)
    for row in [row for row in rows if row.reject is not None][:MAX_REJECT_LINES]:
        console.print(f"{settings.predictions} line {row.line}: rejected: {row.reject}", soft_wrap=True)
    rejected = sum(row.reject is not None for row in rows)
    if rejected > MAX_REJECT_LINES:
        console.print(f"… and {rejected - MAX_REJECT_LINES} more rejected rows"
                      + (f" (all in {settings.output})" if settings.output else " (-o FILE lists them all)"))
    with Grader(timeout_s=settings.timeout_s, workers=settings.workers or None) as grader:
        graded = _with_progress(lambda tick: grade_predictions(rows, evaluation, grader, on_done=tick),
                                total=len(rows) - rejected, enabled=not as_json and console.is_terminal)
    if to_stdout:
        for row in graded.rows:
            sys.stdout.buffer.write(record_to_line(row.output()))
        sys.stdout.flush()
    elif settings.output is not None:
        with claim_output_file(settings.output, f"output file {settings.output}"), \
                environment_errors(f"{settings.output} was left as it was (it is replaced only when complete)",
                                   path=settings.output), atomic_writer(settings.output) as handle:
            for row in graded.rows:
                handle.write(record_to_line(row.output()))
    report = {"eval_set": evaluation.name, "source": evaluation.source, "predictions": str(settings.predictions),
              "rows": len(rows), "graded": graded.summary.samples, "rejected": rejected,
              "problems_in_set": graded.problems_in_set, **graded.summary.to_dict()}
    report.pop("samples")
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_table(report, console if to_stdout else result_console())
    if settings.output is not None:
        console.print(f"wrote {len(rows)} graded rows to {'stdout' if to_stdout else settings.output}")


def _with_progress(work, *, total: int, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return work(lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("grading", total=total)
        return work(lambda: progress.advance(task))


def _print_table(report: dict, target) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    low, high = report["accuracy_ci95"]
    table = Table(title=f"{report['predictions']} against {report['eval_set']}", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("accuracy", f"{report['accuracy']:.1%}  (95 % CI {low:.1%} – {high:.1%}, "
                  f"{report['correct']} of {report['graded']})")
    table.add_row("no answer found", str(report["no_answer"]))
    if report["timeouts"] or report["errors"]:
        table.add_row("grading timeouts / errors", f"{report['timeouts']} / {report['errors']}")
    table.add_row("rejected rows", str(report["rejected"]))
    fewest, most = report["samples_per_problem"]
    table.add_row("problems", f"{report['problems']} of {report['problems_in_set']}, "
                  f"{fewest if fewest == most else f'{fewest}–{most}'} samples each")
    if most > 1:
        low, high = report["majority_ci95"]
        table.add_row("majority vote", f"{report['majority_accuracy']:.1%}  (95 % CI {low:.1%} – {high:.1%})")
        table.add_row("coverage (any sample correct)", f"{report['coverage']:.1%}")
    target.print(table)

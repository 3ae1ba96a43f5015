"""`splitreason evaluate tags --model M --data FILE... [--json]`: options -> TagsEvalSettings -> evaluate/tags.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import build_settings, counting_progress, result_console
from splitreason.schemas.tag_eval import TagsEvalSettings as S

console = Console(stderr=True, emoji=False)
Dtype = S.model_fields["dtype"].annotation  # a closed set: the CLI shows its choices


def tags(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", "-m", help=S.help("model"), show_default=False)] = None,
    data: Annotated[list[Path] | None, typer.Option("--data", "-d", help=S.help("data"), show_default=False)] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML or YAML file of settings (the same names; "
                                                "the command line wins).", dir_okay=False)] = None,
    chat_template: Annotated[Path | None, typer.Option(help=S.help("chat_template"), dir_okay=False)] = S.default("chat_template"),
    window: Annotated[int, typer.Option(help=S.help("window"))] = S.default("window"),
    skip_bad_rows: Annotated[bool, typer.Option(help=S.help("skip_bad_rows"))] = S.default("skip_bad_rows"),
    max_length: Annotated[int | None, typer.Option(help=S.help("max_length"))] = S.default("max_length"),
    device: Annotated[str, typer.Option(help=S.help("device"))] = S.default("device"),
    dtype: Annotated[Dtype, typer.Option(help=S.help("dtype"))] = S.default("dtype"),
    batch_size: Annotated[int, typer.Option(help=S.help("batch_size"))] = S.default("batch_size"),
    json_output: Annotated[bool, typer.Option("--json", help=S.help("json_output"))] = S.default("json_output"),
    progress: Annotated[bool, typer.Option(help=S.help("progress"))] = S.default("progress"),
) -> None:
    """How well MODEL places the offload tags on held-out annotated rows (teacher-forced, no generation).

    At every reply position: would the model's greedy next token open a span where the data
    opens one, close where it closes? Open/close precision, recall and F1, a span figure
    within --window tokens, the predicted offload share against the data's, and the mean
    probability of each tag at the data's positions. Numbers from a tiny model say that the
    mechanism works, not how good a real model is.
    """
    from splitreason.evaluate.tags import evaluate_tags

    settings = build_settings(ctx, S, required=("model", "data"))
    show = settings.progress and not settings.json_output
    metrics = evaluate_tags(settings, progress_factory=counting_progress("[bold]evaluate tags", "rows", console)
                            if show else None)
    if settings.json_output:
        print(json.dumps(metrics.model_dump(mode="json"), ensure_ascii=False))
        return
    _table(settings.model, metrics)



def _table(model: str, metrics) -> None:
    from rich.table import Table

    def num(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    table = Table(title=f"evaluate tags: {model} ({metrics.rows} rows, {metrics.positions} positions, {metrics.tags} tags)")
    for column in ("", "precision", "recall", "F1", "gold", "predicted"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("open tag", num(metrics.open_precision), num(metrics.open_recall), num(metrics.open_f1),
                  str(metrics.open_gold), str(metrics.open_predicted))
    table.add_row("close tag (inside spans)", num(metrics.close_precision), num(metrics.close_recall),
                  num(metrics.close_f1), str(metrics.close_gold), str(metrics.close_predicted))
    table.add_row(f"span (open within ±{metrics.span_window})", num(metrics.span_precision), num(metrics.span_recall),
                  num(metrics.span_f1), str(metrics.open_gold), str(metrics.open_predicted))
    result_console().print(table)
    print(f"offload share: predicted {num(metrics.offload_share_predicted)} (teacher-forced estimate), "
          f"data {num(metrics.offload_share_data)}")
    print(f"mean tag probability at the data's positions: open {num(metrics.open_prob_mean)}, "
          f"close {num(metrics.close_prob_mean)}")
    if metrics.skipped_bad_tags:
        print(f"{metrics.skipped_bad_tags} rows left out for broken tags")

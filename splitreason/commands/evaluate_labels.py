"""`splitreason evaluate labels RUN... --small SMALL [--large LARGE] [--json]`: options ->
LabelsEvalSettings -> evaluate/labels.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import build_settings, counting_progress, result_console
from splitreason.schemas.label_eval import LabelsEvalSettings as S

Dtype = S.model_fields["dtype"].annotation  # a closed set: the CLI shows its choices

console = Console(stderr=True, emoji=False, markup=False)


def labels(
    ctx: typer.Context,
    runs: Annotated[list[Path] | None, typer.Argument(help=S.help("runs"), show_default=False)] = None,
    small: Annotated[str | None, typer.Option("--small", help=S.help("small"), show_default=False)] = None,
    large: Annotated[str | None, typer.Option("--large", help=S.help("large"))] = S.default("large"),
    config: Annotated[Path | None, typer.Option("--config", help="TOML or YAML file of settings (the same names; "
                                                "the command line wins).", dir_okay=False)] = None,
    max_length: Annotated[int | None, typer.Option(help=S.help("max_length"))] = S.default("max_length"),
    device: Annotated[str, typer.Option(help=S.help("device"))] = S.default("device"),
    dtype: Annotated[Dtype, typer.Option(help=S.help("dtype"))] = S.default("dtype"),
    batch_size: Annotated[int, typer.Option(help=S.help("batch_size"))] = S.default("batch_size"),
    json_output: Annotated[bool, typer.Option("--json", help=S.help("json_output"))] = S.default("json_output"),
    progress: Annotated[bool, typer.Option(help=S.help("progress"))] = S.default("progress"),
) -> None:
    """How well each run's spans pick out where SMALL struggles (its loss, or its excess loss over LARGE).

    Lift = share of the loss inside the spans / share of the tokens inside (1.0 is chance), over
    the traces every run annotated, and the character F1 between runs. The lift is not neutral: a
    surprisal judge maximises it by construction. Save --json to a file for `report --labels`.
    """
    from splitreason.evaluate.labels import evaluate_labels, print_labels

    settings = build_settings(ctx, S, required=("runs", "small"))
    show = settings.progress and not settings.json_output
    result = evaluate_labels(settings, progress_factory=counting_progress("evaluate labels", "traces", console)
                             if show else None)
    if settings.json_output:
        print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
        return
    print_labels(result, result_console())  # plain columns in a pipe, nothing cut


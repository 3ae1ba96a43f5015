"""`splitreason evaluate …`: measure what an offload dataset bought.

    evaluate tags       tag placement on held-out annotated rows, teacher-forced (commands/evaluate_tags.py)
    evaluate grade      grade predictions made anywhere against an evaluation set (commands/evaluate_grade.py)
    evaluate simulate   projected latency of a small/large pair (commands/evaluate_simulate.py)
    evaluate offload    the pair on an evaluation set: accuracy, offload share, latency (commands/evaluate_offload.py)
    evaluate labels     how well labellings pick out where a small model struggles (commands/evaluate_labels.py)
"""

from __future__ import annotations

import typer

evaluate_app = typer.Typer(
    name="evaluate",
    help="Evaluate offload models: run small→large handoffs (offload), place tags, grade answers, project latency, compare labellings.",
    no_args_is_help=True,
)


def register() -> typer.Typer:
    from splitreason.commands import evaluate_grade, evaluate_labels, evaluate_offload, evaluate_simulate, evaluate_tags

    evaluate_app.command("tags")(evaluate_tags.tags)
    evaluate_app.command("grade")(evaluate_grade.grade)
    evaluate_app.command("simulate")(evaluate_simulate.simulate)
    evaluate_app.command("offload")(evaluate_offload.offload)
    evaluate_app.command("labels")(evaluate_labels.labels)
    return evaluate_app

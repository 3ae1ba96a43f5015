"""`splitreason evaluate …`: how well models offload.

    evaluate tags    tag placement on held-out annotated rows, teacher-forced; see commands/evaluate_tags.py
"""

from __future__ import annotations

import typer

evaluate_app = typer.Typer(
    name="evaluate",
    help="Evaluate offload models: tags (tag placement on annotated rows, teacher-forced).",
    no_args_is_help=True,
)


def register() -> typer.Typer:
    from splitreason.commands import evaluate_tags

    evaluate_app.command("tags")(evaluate_tags.tags)
    return evaluate_app

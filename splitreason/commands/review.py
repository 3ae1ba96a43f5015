"""`splitreason review …`: send low-confidence traces to people and bring their decisions back.

    review push / pull   the Argilla round trip (extra [argilla]); see commands/review_argilla.py
    review serve         the built-in review UI; see commands/review_serve.py
"""

from __future__ import annotations

import typer

review_app = typer.Typer(
    name="review",
    help="Human review of low-confidence traces: Argilla (push/pull) or the built-in UI (serve).",
    no_args_is_help=True,
)


def register() -> typer.Typer:
    from splitreason.commands import review_argilla, review_serve

    review_app.command("push")(review_argilla.push)
    review_app.command("pull")(review_argilla.pull)
    review_app.command("serve")(review_serve.serve)
    return review_app

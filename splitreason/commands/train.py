"""`splitreason train …`: train small models to offload.

    train sft    supervised fine-tuning on an export (TRL's SFTTrainer); see commands/train_sft.py
"""

from __future__ import annotations

import typer

train_app = typer.Typer(
    name="train",
    help="Train a small model to offload its hardest steps: sft (supervised fine-tuning on an export).",
    no_args_is_help=True,
)


def register() -> typer.Typer:
    from splitreason.commands import train_sft

    train_app.command("sft")(train_sft.sft)
    return train_app

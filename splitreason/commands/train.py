"""`splitreason train …`: train small models to offload.

    train sft    supervised fine-tuning on an export (TRL's SFTTrainer); see commands/train_sft.py
    train grpo   GRPO on problems with answers (TRL's GRPOTrainer); see commands/train_grpo.py
"""

from __future__ import annotations

import typer

train_app = typer.Typer(
    name="train",
    help="Train a small model to offload its hardest steps: sft (supervised fine-tuning on an export), "
         "grpo (reinforcement on problems with answers).",
    no_args_is_help=True,
)


def register() -> typer.Typer:
    from splitreason.commands import train_grpo, train_sft

    train_app.command("sft")(train_sft.sft)
    train_app.command("grpo")(train_grpo.grpo)
    return train_app

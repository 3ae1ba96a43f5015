"""Step 5 of `train sft`: provenance for train.json (library versions, splitreason's git
revision) and the losses read back from the trainer's log history."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from splitreason.schemas.provenance import package_versions

__all__ = ["git_revision", "losses", "versions"]

_LIBRARIES = ("splitreason", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "deepspeed")


def versions() -> dict[str, str | None]:
    return package_versions(_LIBRARIES, missing_as_none=True)


def git_revision() -> str | None:
    """HEAD of the checkout splitreason runs from, `+dirty` with uncommitted changes; None when
    it is installed from a wheel (or git is missing)."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def losses(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """Final train and eval loss, the trainer's own mean over the run, and the loss per logged step."""
    train = [{"step": e["step"], "epoch": e.get("epoch"), "loss": e["loss"]} for e in log_history if "loss" in e]
    evals = [{"step": e["step"], "epoch": e.get("epoch"), "loss": e["eval_loss"]} for e in log_history if "eval_loss" in e]
    summary = next((e for e in reversed(log_history) if "train_loss" in e), {})
    return {"train_final": train[-1]["loss"] if train else None,
            "eval_final": evals[-1]["loss"] if evals else None,
            "train_mean": summary.get("train_loss"),
            "train": train, "eval": evals}

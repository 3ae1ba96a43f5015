"""Training small models to offload: `train sft` (TRL's SFTTrainer on an export) and `train grpo`
(TRL's GRPOTrainer on problems with answers).

The package reads like the pipeline, one module per step:

    data.py        the rows: read, checked (tags), split by problem      (no torch)
    out_dir.py     OUT: fresh, resumed or replaced; its lock               (no torch)
    encode.py      tokenizer with tags + chat template -> ids and labels (prompt ignored)
    model.py       the base model with rows for the tags, LoRA if asked
    trainer.py     TRL's SFTTrainer with our progress bar and OUT/log.jsonl
    record.py      train.json: data, settings, versions, losses, tag metrics
    sft.py         the run, in that order
    fit.py         shared by both: train, save (LoRA merged), record; who owns OUT under accelerate

    problems.py    grpo: problems with answers, decontaminated                 (no torch)
    rewards.py     grpo: correctness, format, offload, latency as TRL reward functions
    grpo_trainer.py grpo: GRPOTrainer from the settings, OUT/rollouts.jsonl
    true_offload.py grpo --true-offload: rollouts through evaluate/handoff, large tokens out of the loss
    grpo.py        the grpo run

Everything a user can get wrong (DATA, settings, OUT) is checked before torch or TRL is imported.
"""

from __future__ import annotations

from splitreason.errors import RunFailed, UsageError

__all__ = ["OutDirConflict", "TrainDataError", "TrainingFailed"]


class TrainDataError(UsageError, ValueError):
    """The training data cannot be used as given (nothing left to train on, rows that do not fit)."""


class OutDirConflict(UsageError):
    """OUT holds something else: another run (without --resume or --overwrite), or files that are not a run."""


class TrainingFailed(RunFailed):
    """Training started and stopped: out of memory, disk full, a crashed worker. Checkpoints so far are kept."""

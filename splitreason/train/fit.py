"""What `train sft` and `train grpo` do alike once their trainer is built: train (from a checkpoint
when resuming), turn out-of-memory and a full disk into one line, save OUT so that
`AutoModelForCausalLM.from_pretrained(OUT)` loads it as is (a LoRA adapter merged in first), and
note in train.json what was trained, how long, on what."""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from splitreason.schemas.training import TrainRecord, TrainSettings
from splitreason.train import TrainDataError, TrainingFailed

log = logging.getLogger(__name__)

__all__ = ["check_model", "fit_and_save", "is_main_process", "note_training", "wait_for_main"]


def is_main_process() -> bool:
    """Under `accelerate launch` the main process (rank 0) alone checks, locks and writes OUT."""
    return int(os.environ.get("RANK", "0")) == 0


def wait_for_main() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def check_model(spec: str, local_kind: str) -> None:
    """--model names a local model directory (one with config.json) or looks like a hub id."""
    from splitreason.models.tokenizer import looks_local

    model = Path(spec).expanduser()
    if looks_local(spec) and not model.exists():
        raise TrainDataError(f"--model {spec}: no such directory (give {local_kind} or a hub id)")
    if model.is_dir() and not (model / "config.json").is_file():
        raise TrainDataError(f"--model {spec} is not a model directory (no config.json)")


def fit_and_save(trainer, settings: TrainSettings, tokenizer, checkpoint: str | None) -> float:
    """Train, save OUT; the seconds spent training."""
    import torch

    from splitreason.train.model import merged_for_saving

    started = time.monotonic()
    try:
        if checkpoint is not None and _at_last_step(checkpoint, trainer.args.max_steps):
            log.info("%s is at the last step: loading it, nothing left to train", checkpoint)
            _restore_finished(trainer, checkpoint)
        else:
            log.info("training %s", f"from {checkpoint}" if checkpoint else "from the start")
            trainer.train(resume_from_checkpoint=checkpoint)
    except torch.OutOfMemoryError:
        raise TrainingFailed("out of memory: lower --batch-size or --max-length, or add --gradient-checkpointing "
                             "or --lora-r; checkpoints so far are kept (rerun with --resume)") from None
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise TrainingFailed(f"disk full while training into {settings.out}; free space and rerun with --resume") from None
        raise
    seconds = time.monotonic() - started
    log.info("trained for %.1f s; saving the model into %s", seconds, settings.out)
    if settings.lora_r > 0:
        trainer.accelerator.wait_for_everyone()
        if trainer.is_world_process_zero():
            model_to_save = merged_for_saving(trainer.accelerator.unwrap_model(trainer.model))
            model_to_save.save_pretrained(str(settings.out))
            tokenizer.save_pretrained(str(settings.out))
    else:
        trainer.save_model(str(settings.out))  # every process: DeepSpeed gathers; the main one writes
    return seconds


def _at_last_step(checkpoint: str, max_steps: int) -> bool:
    """The checkpoint was saved at the run's last step (a kill between it and OUT's final save)."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    return max_steps > 0 and state.get("global_step", 0) >= max_steps


def _restore_finished(trainer, checkpoint: str) -> None:
    """Load the last checkpoint's weights and state without training: Trainer.train resumed from the
    last step runs one step more than --steps before it checks whether to stop."""
    from transformers.trainer_callback import TrainerState

    trainer._load_from_checkpoint(checkpoint)  # the weights (a LoRA adapter included) as train() would load them
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))


def note_training(record: TrainRecord, trainer, settings: TrainSettings, model_info: dict[str, Any], seconds: float,
                  bf16: bool) -> None:
    from splitreason.train.record import losses

    state = trainer.state
    record.model = model_info
    record.losses = losses(state.log_history)
    record.steps = state.global_step
    record.tokens_seen = int(state.num_input_tokens_seen or 0)
    record.seconds = round(seconds, 2)
    record.hardware = {"device": str(trainer.args.device), "processes": trainer.args.world_size,
                       "precision": "bf16" if bf16 else "fp32",
                       "deepspeed": str(settings.deepspeed) if settings.deepspeed else None}

"""Step 4 of `train sft`: TRL's SFTTrainer, configured from the settings.

The rows reach TRL already tokenized (`input_ids`, `labels` with the prompt at -100), so TRL
neither re-renders nor re-masks them; packing, batching, the optimizer, the schedule,
checkpoints, DDP/DeepSpeed under `accelerate launch` and the --report-to integrations are TRL's
and transformers'. TRL's default tqdm bar and log printer are replaced by ours (progress.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from splitreason.schemas.training import SFTSettings, TrainSettings

__all__ = ["build_trainer", "common_args", "quiet_libraries", "sft_config"]


def quiet_libraries() -> None:
    """No tqdm bars of theirs, and none of the warnings the libraries give each other (TRL and
    peft use names transformers 5 deprecated; peft saves the resized embeddings in each
    checkpoint, as it should): nothing in them for the user to act on."""
    import warnings

    from splitreason.models.loading import quiet_library_progress

    quiet_library_progress()
    warnings.filterwarnings("ignore", message=r".*(gradient|is_gradient)_checkpointing.* is deprecated",
                            category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"Setting `save_embedding_layers` to `True`", category=UserWarning)


def common_args(settings: TrainSettings, *, checkpoints: Path, bf16: bool) -> dict:
    """The TrainingArguments every trainer here sets alike (SFTConfig and GRPOConfig take them)."""
    import torch

    scheduler_kwargs = {"min_lr_rate": settings.min_lr_rate} if "min_lr" in settings.lr_scheduler else {}
    return dict(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        lr_scheduler_kwargs=scheduler_kwargs,
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        gradient_checkpointing=settings.gradient_checkpointing,
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        deepspeed=str(settings.deepspeed) if settings.deepspeed else None,
        report_to=[name for name in settings.report_to.split(",") if name != "none"] or "none",
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def sft_config(settings: SFTSettings, *, checkpoints: Path, bf16: bool, has_eval: bool):
    from trl import SFTConfig

    return SFTConfig(
        **common_args(settings, checkpoints=checkpoints, bf16=bf16),
        per_device_eval_batch_size=settings.eval_batch_size,
        max_length=settings.max_length,
        packing=settings.packing,
        eval_strategy="epoch" if has_eval else "no",
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,  # every weight takes part in every step
        completion_only_loss=False,
        assistant_only_loss=False,
        dataset_num_proc=None,
    )


def build_trainer(settings: SFTSettings, model, tokenizer, train_dataset, eval_dataset, *, checkpoints: Path,
                  bf16: bool, callbacks, no_decay: Sequence[str] = ()):
    """SFTTrainer; `no_decay`: parameters kept out of weight decay (matrices trained in a few rows only)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    quiet_libraries()
    config = sft_config(settings, checkpoints=checkpoints, bf16=bf16, has_eval=eval_dataset is not None)

    class Trainer(SFTTrainer):
        def get_decay_parameter_names(self, model) -> list[str]:
            return [name for name in super().get_decay_parameter_names(model) if name not in no_decay]

    trainer = Trainer(model=model, args=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                      processing_class=tokenizer, callbacks=list(callbacks))
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer

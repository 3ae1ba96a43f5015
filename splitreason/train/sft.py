"""`splitreason train sft DATA... --model MODEL -o OUT`: an export in, a model that offloads out.

    rows (checked, split by problem)  ->  OUT planned  ->  tokenizer with tags + chat template
    ->  ids and labels  ->  model skeleton checked (attention, LoRA targets)  ->  OUT created and locked
    ->  base model (+ tag rows, LoRA)  ->  SFTTrainer  ->  OUT: model, tokenizer, train.json  ->  evaluate tags on the eval split

Under `accelerate launch` every process runs this; the main one (rank 0) alone checks, creates,
locks and writes OUT, and the others wait for it before training.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from splitreason.io.jsonl import atomic_write_json, atomic_write_text, atomic_writer
from splitreason.schemas.reject import Reject
from splitreason.schemas.training import TRAIN_RECORD, RowCounts, SFTSettings, TrainedPrompt, TrainRecord
from splitreason.train import TrainDataError
from splitreason.train.data import TrainingData, prepare_data
from splitreason.train.fit import check_model, is_main_process, wait_for_main
from splitreason.train.out_dir import CONFIG, LOG, REJECTS, OutPlan, checkpoints_dir, claim, plan, trim_log, wipe

__all__ = ["SFTResult", "check_settings", "run_sft"]

_REPORT_PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",),
                    "trackio": ("trackio",)}


@dataclass
class SFTResult:
    record: TrainRecord | None  # None in the processes other than the main one
    already_finished: bool = False
    notes: list[str] = field(default_factory=list)


def check_settings(settings: SFTSettings) -> None:
    """What can be checked about the settings without torch: files named, packages asked for."""
    check_model(settings.model, "a local model directory")
    for name in ("chat_template", "deepspeed"):
        path = getattr(settings, name)
        if path is not None and not Path(path).is_file():
            raise TrainDataError(f"--{name.replace('_', '-')} {path}: no such file")
    for target in settings.report_to.split(","):
        modules = _REPORT_PACKAGES.get(target)
        if modules and not any(find_spec(module) for module in modules):
            raise TrainDataError(f"--report-to {target} needs the {modules[0]} package: pip install {modules[0]}")
    if settings.deepspeed is not None and not find_spec("deepspeed"):
        raise TrainDataError("--deepspeed needs the deepspeed package (pip install deepspeed, on a machine with "
                             "CUDA GPUs) and a run under `accelerate launch`")
    if settings.packing and settings.truncate:
        raise TrainDataError("--packing and --truncate: packing already splits rows into --max-length blocks; pick one")


def run_sft(settings: SFTSettings, *, console=None) -> SFTResult:
    main = is_main_process()
    console = console if main else None  # one process talks
    check_settings(settings)
    data = prepare_data(settings)
    data_files = [f.record() for f in data.files]
    out_plan = plan(settings, data_files) if main else None
    if out_plan is not None and out_plan.note:
        data.notes.append(out_plan.note)
    if out_plan is not None and out_plan.action == "finished":
        return SFTResult(out_plan.previous, already_finished=True, notes=data.notes)

    # The tokenized splits live in this process's temporary directory until the run ends.
    with tempfile.TemporaryDirectory(prefix="splitreason-sft-") as scratch:
        return _run(settings, data, data_files, out_plan, Path(scratch), console)


def _run(settings: SFTSettings, data: TrainingData, data_files: list[dict], out_plan: OutPlan | None,
         scratch: Path, console) -> SFTResult:
    main = out_plan is not None
    # Everything below needs torch and transformers.
    from splitreason.train.encode import encode_split, prepare_tokenizer, to_dataset

    _say(console, "tokenizing")
    tokenizer, template, tags = prepare_tokenizer(settings)
    train = encode_split(tokenizer, template, data.train, max_length=settings.max_length, truncate=settings.truncate,
                         path=scratch / "train.arrow")
    held_out = encode_split(tokenizer, template, data.eval, max_length=settings.max_length,
                            truncate=settings.truncate, path=scratch / "eval.arrow")
    if not train.rows:
        lengths = [n for _, n in train.too_long]
        raise TrainDataError(f"all {len(lengths)} training rows are longer than --max-length {settings.max_length} "
                             f"tokens (they have {min(lengths)} to {max(lengths)}); raise it or pass --truncate")
    rows = RowCounts(read=data.read, refused=len(data.refused), too_long=len(train.too_long) + len(held_out.too_long),
                     truncated=train.truncated + held_out.truncated, train=len(train.rows), eval=len(held_out.rows))
    prompt = TrainedPrompt(chat_template=template.text, chat_template_source=template.source,
                           chat_template_reason=template.reason, chat_template_sha256=template.sha256,
                           instruction=data.instruction, tags=tags.mode, open_ids=list(tags.open_ids),
                           close_ids=list(tags.close_ids))

    lock = claim(settings, main=main)
    record = None
    try:
        if main:
            out_plan = plan(settings, data_files)  # again, under the lock
            record = _start(settings, out_plan, data, data_files, rows, prompt, train.tag_token_share,
                            lock.command, train, held_out)
        wait_for_main()
        record_now = record or TrainRecord.read(settings.out)
        checkpoint = record_now.resumed_from if record_now else None
        _train(settings, tokenizer, tags, to_dataset(train), to_dataset(held_out), checkpoint, record, console)
        if not main:
            return SFTResult(None, notes=data.notes)
        _say(console, "evaluating tag placement on the eval split")
        record.tag_metrics = _evaluate_saved(settings, held_out.rows, template)
        record.status = "done"
        record.finished_at = _now()
        atomic_write_json(settings.out / TRAIN_RECORD, record)
        if not settings.keep_checkpoints:
            shutil.rmtree(checkpoints_dir(settings.out), ignore_errors=True)
        return SFTResult(record, notes=data.notes)
    finally:
        if lock is not None:
            lock.release()


def _start(settings: SFTSettings, out_plan: OutPlan, data: TrainingData, data_files: list[dict], rows: RowCounts,
           prompt: TrainedPrompt, share: float | None, command: str, train, held_out) -> TrainRecord:
    """Prepare OUT for the run and write train.json (status running)."""
    from splitreason.train.record import git_revision, versions

    out = settings.out
    if out_plan.action == "overwrite":
        wipe(out)
    checkpoint = out_plan.checkpoint if out_plan.action == "resume" else None
    if checkpoint is not None:
        trim_log(out, int(checkpoint.name.split("-")[-1]))
    elif (out / LOG).exists():
        (out / LOG).unlink()  # a resume with no checkpoint yet starts over
    record = TrainRecord(
        status="running", command=command, settings=settings.model_dump(mode="json"), data=data_files, rows=rows,
        tag_token_share=share, prompt=prompt, base_model=settings.model, versions=versions(),
        git_revision=git_revision(), resumed_from=str(checkpoint) if checkpoint else None,
        started_at=out_plan.previous.started_at if out_plan.action == "resume" and out_plan.previous else _now())
    rejects = [Reject(origin=f.row.origin, row=f.row.line, trace_id=f.row.row.id, reason="bad_tags", detail=f.problem)
               for f in data.refused]
    rejects += [Reject(origin=located.origin, row=located.line, trace_id=located.row.id, reason="too_long",
                       detail=f"{n} tokens > --max-length {settings.max_length}")
                for located, n in train.too_long + held_out.too_long]
    import yaml

    # The effective config, reusable as it is: `train sft --config OUT/train_config.yaml`.
    config = settings.model_dump(mode="json", exclude={"resume", "overwrite"})
    atomic_write_text(out / CONFIG, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    with atomic_writer(out / REJECTS, "w") as handle:
        for reject in rejects:
            handle.write(reject.model_dump_json() + "\n")
    atomic_write_json(out / TRAIN_RECORD, record)
    return record


def _train(settings: SFTSettings, tokenizer, tags, train_dataset, eval_dataset, checkpoint: str | None,
           record: TrainRecord | None, console) -> None:
    import torch

    from splitreason.train.fit import fit_and_save, note_training
    from splitreason.train.model import load_base_model, precision
    from splitreason.train.progress import JsonlLog, ProgressBar
    from splitreason.train.trainer import build_trainer, quiet_libraries

    quiet_libraries()
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(settings.out / "tensorboard"))
    _say(console, "loading the base model")
    model, model_info = load_base_model(settings, tokenizer, tags)
    callbacks = [JsonlLog(settings.out / LOG)] + ([ProgressBar(console)] if settings.progress else [])
    bf16 = precision(settings) == "bf16"
    trainer = build_trainer(settings, model, tokenizer, train_dataset, eval_dataset,
                            checkpoints=checkpoints_dir(settings.out), bf16=bf16, callbacks=callbacks,
                            no_decay=model_info.get("rows_only_parameters", []))
    seconds = fit_and_save(trainer, settings, tokenizer, checkpoint)
    if record is not None:
        note_training(record, trainer, settings, model_info, seconds, bf16)
    del trainer, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _evaluate_saved(settings: SFTSettings, rows, template):
    """Tag placement of the model as saved in OUT (so the figures are those of what OUT holds)."""
    if not rows:
        return None
    from splitreason.evaluate.tags import encode_rows, score_rows
    from splitreason.models.loading import load_causal_lm
    from splitreason.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(settings.out, need_offsets=True)
    model = load_causal_lm(settings.out, what="trained model")
    return score_rows(model, tokenizer, encode_rows(tokenizer, template, rows), batch_size=settings.eval_batch_size)


def _say(console, message: str) -> None:
    if console is not None:
        console.print(f"[dim]{message}…[/]", highlight=False, soft_wrap=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

"""OUT of `train sft` and `train grpo`: a model directory that also holds the run.

    OUT/config.json, model.safetensors, tokenizer.json, chat_template.jinja, …   the trained model
    OUT/train.json           the record (status "running" from the start, "done" at the end)
    OUT/train_config.yaml    the effective settings (reusable with --config)
    OUT/log.jsonl            metrics per logging step
    OUT/rejects.jsonl        rows left out, each with its reason
    OUT/rollouts.jsonl       train grpo: a sample of rollouts per step
    OUT/checkpoints/         checkpoint-N while training (removed at the end unless --keep-checkpoints)
    OUT/.lock                held for the whole run

What a run may do with OUT is decided before anything is created (`plan`): a new or empty OUT
starts fresh; OUT holding a run is refused unless --resume (the settings and data must match) or
--overwrite, except an unfinished run that stopped before its first checkpoint (nothing trained
is kept), which a plain rerun replaces; OUT holding anything else is always refused.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from splitreason.io.jsonl import atomic_write_text
from splitreason.io.lock import LOCK_NAME, OutputLock
from splitreason.schemas.training import TRAIN_RECORD, TrainRecord, TrainSettings
from splitreason.train import OutDirConflict

__all__ = ["OutPlan", "checkpoints_dir", "last_checkpoint", "plan", "trim_log", "wipe"]

LOG = "log.jsonl"
CONFIG = "train_config.yaml"
REJECTS = "rejects.jsonl"
CHECKPOINTS = "checkpoints"
_NOT_COMPARED = {"data", "problems", "out"}  # paths may move; the data is compared by content


@dataclass(frozen=True)
class OutPlan:
    action: Literal["fresh", "resume", "overwrite", "finished"]
    previous: TrainRecord | None = None
    checkpoint: Path | None = None
    note: str | None = None  # said to the user (a run replaced without --overwrite)


def claim(settings: TrainSettings, *, main: bool) -> OutputLock | None:
    """After the last checks that need no OUT (the model skeleton: --attn-implementation and
    --lora-targets), the main process creates and locks OUT; the others get None."""
    from splitreason.train.model import check_model_build

    check_model_build(settings)  # one line before OUT exists
    if not main:
        return None
    settings.out.mkdir(parents=True, exist_ok=True)
    return OutputLock(settings.out / LOCK_NAME, f"output directory {settings.out}").acquire()


def checkpoints_dir(out: Path) -> Path:
    return Path(out) / CHECKPOINTS


def last_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint (one with its trainer state) in OUT/checkpoints."""
    found = []
    for child in checkpoints_dir(out).glob("checkpoint-*"):
        match = re.fullmatch(r"checkpoint-(\d+)", child.name)
        if match and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def plan(settings: TrainSettings, data_files: list[dict]) -> OutPlan:
    out = settings.out
    if out.exists() and not out.is_dir():
        raise OutDirConflict(f"{out} is a file; the output must be a directory")
    contents = [child for child in out.iterdir() if child.name != LOCK_NAME] if out.is_dir() else []
    if not contents:
        return OutPlan("fresh")
    previous = TrainRecord.read(out)
    if previous is None:
        raise OutDirConflict(f"{out} is not empty and holds no training run (no {TRAIN_RECORD}); "
                             "name a new or empty directory")
    state = "a finished" if previous.status == "done" else "an unfinished"
    if settings.overwrite:
        return OutPlan("overwrite", previous)
    if previous.status != "done" and not settings.resume and last_checkpoint(out) is None:
        # It stopped before its first checkpoint: there is nothing to continue (--resume would start
        # over too), so a plain rerun replaces it rather than asking for --resume.
        return OutPlan("overwrite", previous, note=f"{out} held an unfinished run that stopped before its first "
                                                   "checkpoint; starting over")
    if not settings.resume:
        raise OutDirConflict(f"{out} holds {state} training run ({TRAIN_RECORD}); pass --resume to continue it "
                             "or --overwrite to replace it")
    _check_same_run(settings, data_files, previous)
    if previous.status == "done":
        return OutPlan("finished", previous)
    return OutPlan("resume", previous, last_checkpoint(out))


def _check_same_run(settings: TrainSettings, data_files: list[dict], previous: TrainRecord) -> None:
    stored = {key: value for key, value in previous.settings.items() if key not in _NOT_COMPARED}
    changed = [line for line in settings.differences(stored) if line.split(":")[0] not in _NOT_COMPARED]
    if [f["sha256"] for f in data_files] != [f["sha256"] for f in previous.data]:
        changed.append("data: the files' contents differ from the run's")
    if changed:
        raise OutDirConflict(f"{settings.out} holds a run with other settings, --resume refused: "
                             + "; ".join(changed) + " (use the run's settings, or --overwrite)")


def wipe(out: Path) -> None:
    """Remove everything in OUT but its lock (held by this run)."""
    for child in Path(out).iterdir():
        if child.name == LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def trim_log(out: Path, step: int, name: str = LOG) -> None:
    """Drop the lines of OUT/`name` past `step` (written after the checkpoint a resumed run starts from)."""
    path = Path(out) / name
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by the kill
        if isinstance(entry, dict) and entry.get("step", 0) <= step:
            kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))

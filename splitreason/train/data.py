"""Step 1 of `train sft`: the rows, checked and split, before anything heavy is imported.

Every DATA row ends in exactly one place: the training split, the eval split (held out by
problem: rows sharing a prompt never sit on both sides), or left out with a reason (broken tags
with --skip-bad-rows here; too long later, once tokenized).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from splitreason.io.export_reader import ExportFile, LocatedRow, TagFault, read_exports, without_bad_tags
from splitreason.schemas.training import SFTSettings
from splitreason.train import TrainDataError

__all__ = ["TrainingData", "find_instruction", "prepare_data", "split_by_problem"]


@dataclass
class TrainingData:
    files: list[ExportFile]
    read: int
    train: list[LocatedRow]
    eval: list[LocatedRow]
    refused: list[TagFault]
    instruction: str | None
    notes: list[str] = field(default_factory=list)


def prepare_data(settings: SFTSettings) -> TrainingData:
    rows, files = read_exports(settings.data)
    good, refused = without_bad_tags(rows, skip=settings.skip_bad_rows)
    if not good:
        raise TrainDataError(f"no rows left to train on: all {len(rows)} have broken tags")
    instruction = _checked_instruction(good, settings.instruction)
    train, held_out = split_by_problem(good, settings.eval_fraction, settings.seed)
    notes = []
    if settings.eval_fraction > 0 and not held_out:
        notes.append("the data holds a single problem, so nothing is held out for evaluation")
    if instruction is None:
        notes.append("the user turns share no offload instruction; train.json records none "
                     "(pass --instruction TEXT if they all end with one)")
    return TrainingData(files, len(rows), train, held_out, refused, instruction, notes)


def split_by_problem(rows: Sequence[LocatedRow], fraction: float, seed: int) -> tuple[list[LocatedRow], list[LocatedRow]]:
    """(train, eval): whole problems go to eval, in an order fixed by `seed`, until `fraction` of
    the rows are there; at least one problem is held out when `fraction` > 0 and there are two."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, located in enumerate(rows):
        groups[located.row.problem_key].append(index)
    if fraction <= 0 or len(groups) < 2:
        return list(rows), []
    order = sorted(groups, key=lambda key: hashlib.sha256(f"{seed}\x00{key}".encode("utf-8")).hexdigest())
    wanted = fraction * len(rows)
    held: set[int] = set()
    for key in order[:-1]:  # never everything
        if held and len(held) + len(groups[key]) / 2 > wanted:
            break
        held.update(groups[key])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def find_instruction(user_turns: Sequence[str]) -> str | None:
    """The offload instruction every user turn ends with (the export writes problem, a blank line,
    instruction): the longest common ending that starts right after a blank line in every turn."""
    if not user_turns:
        return None
    common = user_turns[0]
    for text in user_turns[1:]:
        common = _common_suffix(common, text)
        if not common:
            return None
    for at in range(len(common)):
        if at >= 2 and common[at - 2:at] != "\n\n" or at == 1 and common[0] != "\n":
            continue  # the blank line would lie inside the common ending, and it is not there
        if all(text.endswith("\n\n", 0, len(text) - len(common) + at) for text in user_turns):
            return common[at:].strip() or None
    return None


def _checked_instruction(rows: Sequence[LocatedRow], given: str | None) -> str | None:
    turns = [located.row.user_text for located in rows]
    if given is None:
        return find_instruction(turns)
    missing = [located for located, text in zip(rows, turns) if not text.rstrip().endswith(given.strip())]
    if missing:
        raise TrainDataError(f"--instruction: {len(missing)} of {len(rows)} user turns do not end with it "
                             f"(first: id {missing[0].row.id} at {missing[0].where})")
    return given.strip()


def _common_suffix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(reversed(a), reversed(b)):
        if x != y:
            break
        n += 1
    return a[len(a) - n:] if n else ""

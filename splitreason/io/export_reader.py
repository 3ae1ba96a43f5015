"""Read exports back for training and evaluation: JSONL files in either export shape, or a
saved Hugging Face dataset directory (`export --hf-dataset`), each row an `ExportRow` that
remembers where it came from.

Nothing here needs torch: the trainer validates every input with it before importing anything
heavy. A file that is not an export is one line naming the file, the line and what is wrong.
A row whose tags are broken is not an error of the file; `tag_faults` lists those rows and the
caller decides (the trainer refuses them unless told to leave them out).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from splitreason.errors import UsageError
from splitreason.schemas.export import ExportRow, RowProblem

__all__ = ["BadTags", "ExportFile", "LocatedRow", "NotAnExport", "TagFault", "read_exports", "tag_faults",
           "without_bad_tags"]


class NotAnExport(UsageError, ValueError):
    """A DATA path that is missing, unreadable, or not an export (the message names file and line)."""


class BadTags(UsageError, ValueError):
    """Rows whose tags are unbalanced, nested or empty, refused (the message counts them and names the first)."""


@dataclass(frozen=True)
class LocatedRow:
    """A row and where it was read: `origin` is the file or dataset directory, `line` 1-based
    for JSONL and 0-based for a dataset's rows; `where` says it in messages ("f.jsonl:3")."""

    row: ExportRow
    origin: str
    line: int
    where: str


@dataclass
class ExportFile:
    """One DATA input: its path, content hash and what it held."""

    path: str
    sha256: str
    rows: int = 0
    shapes: set[str] = field(default_factory=set)

    def record(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "rows": self.rows, "format": "+".join(sorted(self.shapes))}


@dataclass(frozen=True)
class TagFault:
    row: LocatedRow
    problem: str


def read_exports(paths: Sequence[Path | str]) -> tuple[list[LocatedRow], list[ExportFile]]:
    """Every row of every DATA path, in order, and one `ExportFile` per path."""
    rows: list[LocatedRow] = []
    files: list[ExportFile] = []
    if not paths:
        raise NotAnExport("no DATA given: name one or more export files (jsonl) or saved dataset directories")
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise NotAnExport(f"{path}: no such file or directory")
        if path.is_dir():
            info, found = _read_dataset_dir(path)
        else:
            info, found = _read_jsonl(path)
        if not found:
            raise NotAnExport(f"{path}: holds no rows")
        rows += found
        files.append(info)
    return rows, files


def tag_faults(rows: Sequence[LocatedRow]) -> list[TagFault]:
    """The rows whose reply has unbalanced, nested or empty tags, each with what is wrong."""
    faults = []
    for located in rows:
        try:
            located.row.spans()
        except RowProblem as problem:
            faults.append(TagFault(located, str(problem)))
    return faults


def without_bad_tags(rows: Sequence[LocatedRow], *, skip: bool) -> tuple[list[LocatedRow], list[TagFault]]:
    """The rows with sound tags, and the faults; unless `skip`, any fault refuses the data."""
    faults = tag_faults(rows)
    if faults and not skip:
        first = faults[0]
        raise BadTags(f"{len(faults)} of {len(rows)} rows have broken tags (first: id {first.row.row.id} at "
                      f"{first.row.where}: {first.problem}); fix the export, or pass --skip-bad-rows to leave them out")
    bad = {id(fault.row) for fault in faults}
    return [row for row in rows if id(row) not in bad], faults


def _read_jsonl(path: Path) -> tuple[ExportFile, list[LocatedRow]]:
    hasher = hashlib.sha256()
    info = ExportFile(path=str(path), sha256="")
    rows = []
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise NotAnExport(f"{path}: cannot read it: {error.strerror or error}") from None
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            hasher.update(raw)
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except UnicodeDecodeError:
                raise NotAnExport(f"{path}:{line_no}: not UTF-8 text; is this an export (JSONL)?") from None
            except json.JSONDecodeError as error:
                raise NotAnExport(f"{path}:{line_no}: not JSON ({error.msg} at column {error.colno}); "
                                  "an export has one JSON object per line") from None
            rows.append(_located(value, str(path), line_no, f"{path}:{line_no}"))
    info.sha256 = hasher.hexdigest()
    info.rows = len(rows)
    info.shapes = {located.row.shape for located in rows}
    return info, rows


def _read_dataset_dir(path: Path) -> tuple[ExportFile, list[LocatedRow]]:
    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        splits = sorted(child.name for child in path.iterdir() if (child / "state.json").is_file())
        hint = f" (a dataset dictionary: name one split, e.g. {path / splits[0]})" if splits else ""
        raise NotAnExport(f"{path}: a directory that is not a saved dataset{hint}")
    from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except (OSError, ValueError, FileNotFoundError) as error:
        raise NotAnExport(f"{path}: cannot load the saved dataset: {' '.join(str(error).split())[:200]}") from None
    if not hasattr(dataset, "column_names") or isinstance(dataset.column_names, dict):
        raise NotAnExport(f"{path}: a dataset dictionary; name one split's directory instead")
    hasher = hashlib.sha256()
    for data_file in sorted(path.rglob("*")):
        if data_file.is_file():
            hasher.update(str(data_file.relative_to(path)).encode("utf-8") + b"\0")
            hasher.update(data_file.read_bytes())
    rows = [_located(value, str(path), index, f"{path} row {index}") for index, value in enumerate(dataset)]
    info = ExportFile(path=str(path), sha256=hasher.hexdigest(), rows=len(rows),
                      shapes={located.row.shape for located in rows})
    return info, rows


def _located(value, origin: str, line: int, where: str) -> LocatedRow:
    try:
        row = ExportRow.from_json(value)
    except RowProblem as problem:
        raise NotAnExport(f"{where}: {problem}") from None
    return LocatedRow(row, origin, line, where)

"""Read raw OpenR1-Math records from local files, directories or the Hugging Face hub.

`iter_rows(source)` yields one `RawRow` per record, or a `Reject` for a row that cannot be
a record, whatever its content does: ``invalid_utf8``, ``invalid_json``, ``not_an_object``,
``number_too_large`` (more digits than Python converts), ``nested_too_deeply`` (more than
`MAX_ROW_DEPTH` levels, the same limit for every source), ``row_too_large`` (a line over `MAX_ROW_BYTES`, read past without being held),
``unreadable_row`` (a parquet value Python cannot hold, such as a date past year 9999); reading
continues after a reject. Only what the content causes is caught: our own code runs outside
those handlers, so a bug is never taken for a bad row. Problems that make the whole source
unusable raise `InputError` with a one-line message meant for the user.

Sources:

* ``*.jsonl`` / ``*.jsonl.gz``: one JSON object per line; rows are numbered from 1
  (the line number). Blank lines are skipped; a UTF-8 BOM on the first line is ignored.
* ``*.parquet``: read one record batch at a time with pyarrow (bounded memory);
  rows are numbered from 0 across the whole file.
* a directory: every supported file below it (recursively, sorted by relative path;
  hidden files and folders and other extensions are skipped); error if none.
* a hub id ``owner/name`` that does not exist as a local path: read with
  ``datasets.load_dataset(id, name=hub_config, split=hub_split, streaming=streaming)``;
  rows are numbered from 0 and ``origin`` is the hub id. Whether the hub can be used is decided
  first, in seconds (`io/hub.py`): when it cannot, a dataset in the local cache is still read
  and any other is refused at once with `HubUnavailable` (exit 1); an id the hub does not know
  is an `InputError` (exit 2).
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitreason.io.untrusted_json import MAX_ROW_DEPTH, BadJson, json_depth, parse_untrusted_json, too_deep
from splitreason.schemas.reject import Reject
from splitreason.errors import UsageError, one_line

__all__ = [
    "InputError",
    "RawRow",
    "SUPPORTED_SUFFIXES",
    "is_hub_id",
    "iter_rows",
    "list_input_files",
]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".parquet")

# Rows per pyarrow record batch. OpenR1 rows carry several long generations each
# (tens of KB), so small batches keep memory bounded.
PARQUET_BATCH_ROWS = 64

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
#: The longest input line read (an OpenR1 row is at most a few MB); a longer one is a reject, read
#: past without being held in memory.
MAX_ROW_BYTES = 256 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


class InputError(UsageError):
    """The input cannot be read at all; the message is one line meant for the user."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One raw record as read, before any validation."""

    origin: str  # file path or hub id
    row: int  # 1-based line (jsonl / jsonl.gz), 0-based row (parquet / hub)
    data: dict[str, Any]


def _suffix_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".jsonl.gz"):
        return "jsonl.gz"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return None


def is_hub_id(source: str) -> bool:
    """True when `source` has the shape of a hub dataset id (``owner/name``) and is not a local path."""
    if os.path.exists(source):
        return False
    if not _HUB_ID_RE.match(source) or ".." in source:
        return False
    # "data/train.jsonl" that does not exist is a missing file, not a hub id.
    return _suffix_kind(Path(source)) is None and not source.lower().endswith((".json", ".gz", ".csv"))


def list_input_files(directory: Path) -> list[Path]:
    """Supported files below `directory`, sorted by relative path; hidden entries skipped."""
    found: list[tuple[str, Path]] = []
    for path in directory.rglob("*"):
        rel = path.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and _suffix_kind(path) is not None:
            found.append((rel.as_posix(), path))
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def iter_rows(
    source: str | os.PathLike[str],
    *,
    hub_split: str = "train",
    hub_config: str | None = None,
    streaming: bool = True,
) -> Iterator[RawRow | Reject]:
    """Yield every record of `source` as a `RawRow`, or a `Reject` for an unreadable line.

    The source is checked when `iter_rows` is called (missing path, unsupported file,
    empty directory and, for a hub id, loading the dataset raise right away); corrupt
    content found while reading raises during iteration.

    Raises `InputError` when the source as a whole cannot be read (missing path,
    unsupported extension, corrupt parquet or gzip, directory without input files,
    hub dataset that cannot be loaded).
    """
    source_str = os.fspath(source)
    path = Path(source_str)
    if path.is_dir():
        files = list_input_files(path)
        if not files:
            raise InputError(
                f"no input files in directory {source_str} (looked for {', '.join(SUPPORTED_SUFFIXES)})"
            )
        for file in files:
            _check_file(file)
        return _chain_files(files)
    if path.exists():
        _check_file(path)
        return _iter_file(path)
    if is_hub_id(source_str):
        return _iter_hub(source_str, split=hub_split, config=hub_config, streaming=streaming)
    raise InputError(f"input not found: {source_str} (not a local file or directory, nor a hub id like owner/name)")


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"input {path} is not a regular file")
    if _suffix_kind(path) is None:
        raise InputError(f"unsupported input file {path} (expected one of {', '.join(SUPPORTED_SUFFIXES)})")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read input file {path} (permission denied)")
    if _suffix_kind(path) == "jsonl.gz":
        # Read the first block through the same gzip reader the rows use, so a file that is not gzip
        # at all is refused before any output directory is made (not after, leaving a failed run).
        try:
            with gzip.open(path, "rb") as handle:
                handle.read(1)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt or truncated gzip file {path}: {one_line(str(exc))}") from exc
    if _suffix_kind(path) == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"unreadable or corrupt parquet file {path}: {one_line(str(exc))}") from exc


def _chain_files(files: list[Path]) -> Iterator[RawRow | Reject]:
    for file in files:
        yield from _iter_file(file)


def _iter_file(path: Path) -> Iterator[RawRow | Reject]:
    kind = _suffix_kind(path)
    if kind == "jsonl":
        yield from _iter_jsonl(path, gzipped=False)
    elif kind == "jsonl.gz":
        yield from _iter_jsonl(path, gzipped=True)
    elif kind == "parquet":
        yield from _iter_parquet(path)
    else:
        raise InputError(
            f"unsupported input file {path} (expected one of {', '.join(SUPPORTED_SUFFIXES)})"
        )


def _iter_jsonl(path: Path, *, gzipped: bool) -> Iterator[RawRow | Reject]:
    origin = str(path)
    try:
        handle = gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot open {origin}: {one_line(exc.strerror or str(exc))}") from exc
    with handle:
        line_no = 0
        while True:
            try:
                raw = handle.readline(MAX_ROW_BYTES + 1)
                oversized = len(raw) > MAX_ROW_BYTES and not raw.endswith(b"\n")
                skipped = _skip_rest_of_line(handle) if oversized else 0
            except (OSError, EOFError, zlib.error) as exc:
                # gzip.BadGzipFile is an OSError; a truncated gzip raises EOFError.
                what = "corrupt or truncated gzip file" if gzipped else "read error"
                raise InputError(f"{what} {origin} after line {line_no}: {one_line(str(exc))}") from exc
            if not raw:
                break
            line_no += 1
            if oversized:
                yield Reject(origin=origin, row=line_no, reason="row_too_large",
                             detail=f"the line has {len(raw) + skipped:,} bytes; at most {MAX_ROW_BYTES:,} are read")
                continue
            if line_no == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            item = _row_or_reject(origin, line_no, raw)
            if item is not None:
                yield item


def _skip_rest_of_line(handle) -> int:
    """Read past the rest of an oversized line without holding it; the bytes skipped."""
    skipped = 0
    while chunk := handle.readline(1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def _row_or_reject(origin: str, line_no: int, raw: bytes) -> RawRow | Reject | None:
    """One line as a row, or the reject its content earns (invalid UTF-8 or JSON, a number too
    large to convert, nesting too deep, not an object)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject(origin=origin, row=line_no, reason="invalid_utf8",
                      detail=f"invalid UTF-8 byte at offset {exc.start} of the line")
    if not text.strip():
        return None
    try:
        value = parse_untrusted_json(text, max_depth=MAX_ROW_DEPTH)
    except BadJson as exc:
        return Reject(origin=origin, row=line_no, reason=exc.reason, detail=one_line(exc.detail))
    if not isinstance(value, dict):
        return Reject(origin=origin, row=line_no, reason="not_an_object",
                      detail=f"the line is a JSON {_json_type(value)}, not an object")
    return RawRow(origin=origin, row=line_no, data=value)


def _row_unless_too_deep(origin: str, row: int, data: dict[str, Any]) -> RawRow | Reject:
    """A parquet or hub record as a row, or the same `nested_too_deeply` reject a JSON line gets."""
    if json_depth(data, MAX_ROW_DEPTH) > MAX_ROW_DEPTH:
        return Reject(origin=origin, row=row, reason="nested_too_deeply", detail=too_deep(MAX_ROW_DEPTH).detail)
    return RawRow(origin=origin, row=row, data=data)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _iter_parquet(path: Path) -> Iterator[RawRow | Reject]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    origin = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"unreadable or corrupt parquet file {origin}: {one_line(str(exc))}") from exc
    row = 0
    with parquet:
        batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise InputError(
                    f"unreadable or corrupt parquet file {origin} at row {row}: {one_line(str(exc))}"
                ) from exc
            for record in _batch_records(batch, origin, row):
                yield record
                row += 1


def _batch_records(batch, origin: str, first_row: int) -> list[RawRow | Reject]:
    """The rows of one record batch; a row whose values Python cannot hold (a timestamp past year
    9999, say) is a reject of its own, not the end of the file. Only pyarrow's conversion to Python
    is inside the handlers: what our code does with a row runs outside, so its bug stays a bug."""
    import pyarrow as pa

    try:
        converted: list[Any] = batch.to_pylist()
    except (ValueError, OverflowError, pa.ArrowException):
        converted = []
        for i in range(batch.num_rows):
            try:
                converted.append(batch.slice(i, 1).to_pylist()[0])
            except (ValueError, OverflowError, pa.ArrowException) as exc:
                converted.append(Reject(origin=origin, row=first_row + i, reason="unreadable_row",
                                        detail=one_line(f"{type(exc).__name__}: {exc}")))
    return [record if isinstance(record, Reject) else _row_unless_too_deep(origin, first_row + i, record)
            for i, record in enumerate(converted)]


def _hub_error(hub_id: str, config: str | None, split: str, exc: BaseException, when: str) -> InputError:
    """The loader's failure as one line: the network's fault is `HubUnavailable` (exit 1), anything
    else (an unknown id, config or split, with the hub answering) an input error (exit 2)."""
    from splitreason.io.hub import HubUnavailable, is_network_failure, local_copy_hint

    where = f"config={config!r}, " if config else ""
    what = f"{type(exc).__name__}: {one_line(str(exc), 200)}"
    if is_network_failure(exc):
        return HubUnavailable(f"cannot {when} hub dataset {hub_id} ({where}split={split!r}): the hub failed or "
                              f"cannot be reached ({what}); {local_copy_hint(hub_id)}")
    return InputError(f"cannot {when} hub dataset {hub_id} ({where}split={split!r}): {what} "
                      "(check the id, the config and the split; a private or gated dataset needs HF_TOKEN)")


def _iter_hub(hub_id: str, *, split: str, config: str | None, streaming: bool) -> Iterator[RawRow | Reject]:
    from splitreason.io.hub import HubUnavailable, go_offline, in_local_cache, local_copy_hint, why_hub_unusable

    unusable = why_hub_unusable()
    if unusable is not None:
        # Decided before datasets is imported: no retries, one line at once, unless a cached copy can serve.
        go_offline()
        if not in_local_cache(hub_id):
            raise HubUnavailable(f"hub dataset {hub_id} cannot be read: {unusable}, and it is not in the local "
                                 f"cache; {local_copy_hint(hub_id)}")
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise InputError(f"reading hub dataset {hub_id} needs the 'datasets' package") from exc
    try:
        dataset = datasets.load_dataset(hub_id, name=config, split=split, streaming=streaming)
    except Exception as exc:  # datasets raises many unrelated types (ConnectionError, ValueError, ...)
        if unusable is not None:
            raise HubUnavailable(f"hub dataset {hub_id} cannot be read: {unusable}, and the local cache cannot "
                                 f"serve it ({type(exc).__name__}); {local_copy_hint(hub_id)}") from exc
        raise _hub_error(hub_id, config, split, exc, "load") from exc
    return _iter_hub_rows(hub_id, dataset, split=split, config=config)


# After this many rows in a row that fail to convert, the trouble is the source, not its rows
# (a corrupt shard fails again at every restart): stop with one line instead of rejecting forever.
MAX_CONSECUTIVE_BAD_HUB_ROWS = 100


def _iter_hub_rows(hub_id: str, dataset: Any, *, split: str, config: str | None) -> Iterator[RawRow | Reject]:
    """The dataset's rows. A row that fails to convert (a value Python cannot hold) is an
    `unreadable_row` reject, as in a local parquet file. A `datasets` iterator is finished once a
    row has raised in it, so reading goes on from a fresh one that starts after that row
    (`Dataset.select`, or `IterableDataset.skip`, which streams past the rows already read)."""
    from splitreason.io.hub import is_network_failure

    rows = dataset
    row = 0
    consecutive_bad = 0
    while True:
        try:
            iterator = iter(rows)
        except Exception as exc:
            raise _hub_error(hub_id, config, split, exc, "read") from exc
        while True:
            try:
                record = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                if is_network_failure(exc):
                    raise _hub_error(hub_id, config, split, exc, f"read row {row} of") from exc
                failure = exc
                break
            consecutive_bad = 0
            yield _row_unless_too_deep(hub_id, row, dict(record))
            row += 1
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        consecutive_bad += 1
        what = one_line(f"{type(failure).__name__}: {failure}", 200)
        rows = _hub_rows_after(dataset, row + 1)
        if rows is None or consecutive_bad >= MAX_CONSECUTIVE_BAD_HUB_ROWS:
            why = ("this reader cannot go on past a row that fails" if rows is None else
                   f"{consecutive_bad} rows in a row failed, so the source itself is broken")
            raise InputError(f"hub dataset {hub_id} (split={split!r}): row {row} cannot be read ({what}) and {why}; "
                             f"rows 0 to {row - 1} were read") from failure
        yield Reject(origin=hub_id, row=row, reason="unreadable_row", detail=what)
        row += 1


def _hub_rows_after(dataset: Any, start: int) -> Any | None:
    """The dataset's rows from `start` on, or None where this kind of dataset cannot give them."""
    import datasets

    if isinstance(dataset, datasets.Dataset):
        return dataset.select(range(start, len(dataset)))
    if isinstance(dataset, datasets.IterableDataset):
        return dataset.skip(start)
    return None

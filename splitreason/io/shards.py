"""Deterministic shards of selected traces, with a manifest that detects later edits.

Layout of a shard directory::

    shard-00000-of-00004.jsonl   one Trace per line (model_dump_json), in input order
    ...
    shard-00003-of-00004.jsonl
    rejects.jsonl                one Reject per line, in input order
    manifest.json                ShardManifest: counts, trace ids and sha256 of every file

A trace goes to shard `shard_of(trace_id, num_shards)`: the first 8 bytes of
``sha256(trace_id.encode("utf-8"))`` read as a big-endian unsigned integer, modulo
``num_shards``. This is stable across machines, Python versions and runs (unlike
``hash()``). The same input always gives byte-identical files and manifest: nothing
time- or machine-dependent is recorded.

Files are written into a hidden staging directory next to ``out_dir`` and moved into
place when complete, the manifest last, so a crash never leaves a directory that looks
like a finished shard output.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

import splitreason
from splitreason.errors import one_line
from splitreason.io.jsonl import JsonlAppender, atomic_write_bytes, file_sha256, fsync_dir, record_to_line
from splitreason.io.lock import is_lock_file
from splitreason.io.readers import InputError
from splitreason.schemas.reject import Reject
from splitreason.schemas.trace import Trace

__all__ = [
    "MANIFEST_NAME",
    "REJECTS_NAME",
    "ShardInfo",
    "ShardManifest",
    "is_shard_dir",
    "iter_rejects",
    "iter_shard",
    "iter_shard_dir",
    "read_manifest",
    "shard_file_name",
    "shard_of",
    "write_shards",
]

FORMAT_NAME = "splitreason-shards"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
REJECTS_NAME = "rejects.jsonl"
SHARD_FUNCTION = "int.from_bytes(sha256(trace_id.encode('utf-8')).digest()[:8], 'big') % num_shards"

_MAX_OPEN_FILES = 128


def shard_of(key: str, num_shards: int) -> int:
    """Shard index of `key`: first 8 bytes of its sha256, big-endian, modulo `num_shards`."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def shard_file_name(index: int, num_shards: int) -> str:
    return f"shard-{index:05d}-of-{num_shards:05d}.jsonl"


class ShardInfo(BaseModel):
    """One shard file as recorded in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0)
    file: str = Field(description="File name inside the shard directory.")
    count: int = Field(ge=0, description="Number of traces (lines) in the file.")
    sha256: str = Field(description="Hex sha256 of the file's bytes.")
    trace_ids: list[str] = Field(description="Trace ids in file order.")


class ShardManifest(BaseModel):
    """manifest.json of a shard directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["splitreason-shards"] = FORMAT_NAME
    format_version: Literal[1] = FORMAT_VERSION
    splitreason_version: str = Field(description="splitreason version that wrote the shards.")
    source: str = Field(description="Description of the input (path or hub id, selection flags).")
    num_shards: int = Field(ge=1)
    shard_function: str = SHARD_FUNCTION
    total_count: int = Field(ge=0, description="Number of traces in all shards.")
    shards: list[ShardInfo]
    rejects_file: Literal["rejects.jsonl"] = REJECTS_NAME
    rejects_count: int = Field(ge=0)
    rejects_sha256: str
    rejects_by_reason: dict[str, int] = Field(default_factory=dict, description="Reject counts, sorted by reason.")

    @model_validator(mode="after")
    def _consistent(self) -> ShardManifest:
        if len(self.shards) != self.num_shards:
            raise ValueError(f"{len(self.shards)} shard entries for num_shards={self.num_shards}")
        for i, info in enumerate(self.shards):
            if info.index != i or info.file != shard_file_name(i, self.num_shards):
                raise ValueError(f"shard entry {i} is {info.index} / {info.file}")
            if info.count != len(info.trace_ids):
                raise ValueError(f"shard {i}: count {info.count} but {len(info.trace_ids)} trace ids")
        if sum(info.count for info in self.shards) != self.total_count:
            raise ValueError("total_count is not the sum of the shard counts")
        if sum(self.rejects_by_reason.values()) != self.rejects_count:
            raise ValueError("rejects_count is not the sum of rejects_by_reason")
        return self


# -- writing ---------------------------------------------------------------------


class _ShardFiles:
    """Append to many files (io.jsonl's JsonlAppender each) with at most `_MAX_OPEN_FILES`
    descriptors open at once, hashing as we go; fsynced once, at the end."""

    def __init__(self, directory: Path, names: Sequence[str]) -> None:
        self.paths = [directory / name for name in names]
        self.hashers = [hashlib.sha256() for _ in names]
        self.counts = [0] * len(names)
        self._appenders = [JsonlAppender(path, repair=False) for path in self.paths]
        self._open: OrderedDict[int, None] = OrderedDict()
        for appender in self._appenders:
            appender.suspend()  # opened again, a few at a time, when written

    def write(self, index: int, line: bytes) -> None:
        if index in self._open:
            self._open.move_to_end(index)
        else:
            if len(self._open) >= _MAX_OPEN_FILES:
                oldest, _ = self._open.popitem(last=False)
                self._appenders[oldest].suspend()
            self._open[index] = None
        self._appenders[index].write_line(line)
        self.hashers[index].update(line)
        self.counts[index] += 1

    def close(self) -> None:
        while self._open:
            index, _ = self._open.popitem(last=False)
            self._appenders[index].suspend()

    def sync(self) -> None:
        self._open.clear()
        for appender in self._appenders:
            appender.close()  # fsyncs what was written to it, then closes


def _write_into(
    directory: Path, items: Iterable[Trace | Reject], num_shards: int, source_description: str
) -> ShardManifest:
    names = [shard_file_name(i, num_shards) for i in range(num_shards)]
    files = _ShardFiles(directory, [*names, REJECTS_NAME])
    reject_slot = num_shards
    trace_ids: list[list[str]] = [[] for _ in range(num_shards)]
    seen: set[str] = set()
    reasons: Counter[str] = Counter()
    try:
        for item in items:
            if isinstance(item, Trace):
                if item.trace_id in seen:
                    raise ValueError(f"duplicate trace id {item.trace_id!r} given to write_shards")
                seen.add(item.trace_id)
                index = shard_of(item.trace_id, num_shards)
                files.write(index, record_to_line(item))
                trace_ids[index].append(item.trace_id)
            elif isinstance(item, Reject):
                files.write(reject_slot, record_to_line(item))
                reasons[item.reason] += 1
            else:
                raise TypeError(f"write_shards expects Trace or Reject items, got {type(item).__name__}")
        files.sync()
    finally:
        files.close()
    shards = [
        ShardInfo(
            index=i,
            file=names[i],
            count=files.counts[i],
            sha256=files.hashers[i].hexdigest(),
            trace_ids=trace_ids[i],
        )
        for i in range(num_shards)
    ]
    manifest = ShardManifest(
        splitreason_version=splitreason.__version__,
        source=source_description,
        num_shards=num_shards,
        total_count=sum(files.counts[:num_shards]),
        shards=shards,
        rejects_count=files.counts[reject_slot],
        rejects_sha256=files.hashers[reject_slot].hexdigest(),
        rejects_by_reason=dict(sorted(reasons.items())),
    )
    atomic_write_bytes(directory / MANIFEST_NAME, _manifest_bytes(manifest))
    return manifest


def _manifest_bytes(manifest: ShardManifest) -> bytes:
    return (manifest.model_dump_json(indent=2) + "\n").encode("utf-8")


def _our_files(directory: Path) -> list[Path]:
    """Files in `directory` that a shard output owns (shard files, rejects, manifest)."""
    owned = [p for p in directory.glob("shard-*-of-*.jsonl") if p.is_file()]
    for name in (REJECTS_NAME, MANIFEST_NAME):
        if (directory / name).is_file():
            owned.append(directory / name)
    return sorted(owned)


def _files_match(directory: Path, manifest: ShardManifest) -> bool:
    try:
        for info in manifest.shards:
            if file_sha256(directory / info.file) != info.sha256:
                return False
        return file_sha256(directory / manifest.rejects_file) == manifest.rejects_sha256
    except OSError:
        return False


def write_shards(
    items: Iterable[Trace | Reject],
    out_dir: str | os.PathLike[str],
    num_shards: int,
    source_description: str,
    *,
    overwrite: bool = False,
) -> ShardManifest:
    """Write traces to `num_shards` shard files and rejects to rejects.jsonl, then manifest.json.

    `out_dir` may be missing or empty. If it already holds a shard output that is
    byte-identical to the new one, nothing is touched and the manifest is returned.
    Any other non-empty `out_dir` raises `InputError` unless ``overwrite=True``; then
    the previous shard files, rejects.jsonl and manifest.json are removed (other files
    in the directory are left alone).
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"shard output {out} exists and is not a directory")
    non_empty = out.is_dir() and any(not is_lock_file(path) for path in out.iterdir())
    holds_shards = non_empty and is_shard_dir(out)
    if non_empty and not holds_shards and not overwrite:
        raise InputError(
            f"shard output directory {out} is not empty and holds no shard output; "
            "choose another directory or pass overwrite"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        manifest = _write_into(staging, items, num_shards, source_description)
        if holds_shards:
            previous = read_manifest(out)
            if previous == manifest and _files_match(out, previous):
                return manifest
            if not overwrite:
                raise InputError(
                    f"shard output directory {out} already holds different shards "
                    f"({previous.total_count} traces in {previous.num_shards} shards from {one_line(previous.source, 120)}); "
                    "choose another directory or pass overwrite"
                )
        out.mkdir(parents=True, exist_ok=True)
        if non_empty:
            manifest_path = out / MANIFEST_NAME
            if manifest_path.exists():  # first, so a crash below never leaves a stale manifest
                manifest_path.unlink()
            for path in _our_files(out):
                path.unlink()
        for name in [info.file for info in manifest.shards] + [REJECTS_NAME, MANIFEST_NAME]:
            os.replace(staging / name, out / name)  # manifest last
        fsync_dir(out)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- reading ---------------------------------------------------------------------


def is_shard_dir(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a directory with a valid manifest.json."""
    if not Path(path).is_dir():
        return False  # never read a (possibly huge) data file as if it were a manifest
    try:
        read_manifest(path)
    except InputError:
        return False
    return True


def read_manifest(path: str | os.PathLike[str]) -> ShardManifest:
    """Read and validate the manifest of shard directory `path` (or of manifest file `path`)."""
    path = Path(path)
    manifest_path = path / MANIFEST_NAME if path.is_dir() else path
    if not path.exists():
        raise InputError(f"shard directory not found: {path}")
    if not manifest_path.is_file():
        raise InputError(f"not a shard directory: {path} (no {MANIFEST_NAME})")
    try:
        return ShardManifest.model_validate_json(manifest_path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc), "loc": ()}
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise InputError(
            f"invalid shard manifest {manifest_path}: {one_line(str(first.get('msg')), 200)}"
            + (f" at {where}" if where else "")
        ) from exc
    except OSError as exc:
        raise InputError(f"cannot read shard manifest {manifest_path}: {one_line(str(exc))}") from exc


def _verified_path(directory: Path, file: str, expected: str, what: str) -> Path:
    path = directory / file
    try:
        actual = file_sha256(path)
    except FileNotFoundError as exc:
        raise InputError(f"{what} of {directory} is missing: {file}") from exc
    if actual != expected:
        raise InputError(
            f"{what} of {directory} was modified after sharding: sha256 {actual} of {file} "
            f"does not match {expected} in the manifest"
        )
    return path


def iter_shard(
    directory: str | os.PathLike[str], index: int, *, manifest: ShardManifest | None = None
) -> Iterator[Trace]:
    """Yield the traces of shard `index`, after checking the file against the manifest's sha256."""
    directory = Path(directory)
    manifest = manifest if manifest is not None else read_manifest(directory)
    if not 0 <= index < manifest.num_shards:
        raise InputError(f"shard index {index} out of range for {directory} ({manifest.num_shards} shards)")
    info = manifest.shards[index]
    path = _verified_path(directory, info.file, info.sha256, f"shard {index}")
    return _iter_models(path, Trace)


def _iter_models(path: Path, model: type[Trace] | type[Reject]) -> Iterator:
    """Our own records, hash-checked already: a line that does not validate means the directory was
    made by something else (or a manifest rewritten by hand), which is one line, not a crash."""
    with open(path, "rb") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
                raise InputError(f"{path}:{line_no} is not a {model.__name__} record of a shard directory "
                                 f"({one_line(str(first.get('msg')), 200)}); make the shards again with "
                                 "`splitreason shard`") from None


def iter_shard_dir(
    directory: str | os.PathLike[str], indices: Iterable[int] | None = None, *, manifest: ShardManifest | None = None
) -> Iterator[tuple[int, Trace]]:
    """Yield ``(shard index, trace)`` for the given shards (all, in order, by default)."""
    directory = Path(directory)
    manifest = manifest if manifest is not None else read_manifest(directory)
    chosen = range(manifest.num_shards) if indices is None else list(indices)
    for index in chosen:
        for trace in iter_shard(directory, index, manifest=manifest):
            yield index, trace


def iter_rejects(directory: str | os.PathLike[str], *, manifest: ShardManifest | None = None) -> Iterator[Reject]:
    """Yield the rejects recorded by `write_shards`, after checking rejects.jsonl's sha256."""
    directory = Path(directory)
    manifest = manifest if manifest is not None else read_manifest(directory)
    path = _verified_path(directory, manifest.rejects_file, manifest.rejects_sha256, "rejects file")
    return _iter_models(path, Reject)

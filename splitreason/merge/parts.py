"""Read one annotation run directory as a merge part, and check a shard file against its done.json.

A shard is *finished* in a run when its done.json exists: `annotate` writes it only after the
shard's last trace, with the file's count, status counts and sha256. A shard file without one
is unfinished (the run was stopped) and is never merged as if it were whole.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from splitreason.schemas.run_manifest import RunConfig, RunConfigError, RunManifest
from splitreason.io.lock import is_lock_file
from splitreason.io.run_dir import RunDir, shard_name
from splitreason.io.shards import shard_of
from splitreason.review.store import REVIEW_DB_NAME
from splitreason.errors import UsageError

_DONE_FILE = re.compile(r"^shard-(\d{5})-of-(\d{5})\.done\.json$")


class MergeError(UsageError, ValueError):
    """The parts cannot be merged as asked; the message names the shard, trace id or part."""


@dataclass
class ShardCopy:
    """One shard as one run directory holds it."""

    root: Path  # the run directory
    index: int
    num_shards: int
    done: dict | None  # done.json, or None while the shard is unfinished

    @property
    def name(self) -> str:
        return shard_name(self.index, self.num_shards)

    @property
    def path(self) -> Path:
        return RunDir(self.root).shard_path(self.index, self.num_shards)

    @property
    def finished(self) -> bool:
        return self.done is not None


@dataclass
class ShardContent:
    """What a shard file holds, read once: its trace ids (file order), status counts and hash."""

    trace_ids: list[str] = field(default_factory=list)
    status: Counter = field(default_factory=Counter)
    sha256: str | None = None


@dataclass
class Part:
    root: Path
    manifest: dict  # run.json
    config: RunConfig
    shards: dict[int, ShardCopy]

    @property
    def finished(self) -> list[int]:
        return sorted(index for index, copy in self.shards.items() if copy.finished)


def read_part(root: Path) -> Part:
    if not root.is_dir():
        raise MergeError(f"part {root} is not a directory")
    manifest = RunDir(root).read_manifest()
    if manifest is None:
        raise MergeError(f"part {root} is not an annotation run directory (no run.json)")
    # Reviews are keyed to one run directory and would not come along; OUT's own stay where they are.
    if (root / REVIEW_DB_NAME).exists() and not _is_empty_review_db(root / REVIEW_DB_NAME):
        raise MergeError(f"part {root} holds human reviews ({REVIEW_DB_NAME}); merge the annotations first and "
                         "review the merged directory")
    return _part(root, manifest)


def read_base(out: Path) -> Part | None:
    """What OUT already holds (None when it is new or empty): merged into, never silently replaced."""
    if out.exists() and not out.is_dir():
        raise MergeError(f"output {out} exists and is not a directory")
    if not out.exists() or not any(not is_lock_file(path) for path in out.iterdir()):
        return None
    manifest = RunDir(out).read_manifest()
    if manifest is None:
        raise MergeError(f"output {out} is not empty and holds no run.json; merge into a new or empty directory")
    return _part(out, manifest)


def _part(root: Path, manifest: dict) -> Part:
    try:
        config = RunManifest.load(manifest, where=str(root / "run.json")).config
    except RunConfigError as error:
        raise MergeError(str(error)) from None
    run_dir = RunDir(root)
    shards: dict[int, ShardCopy] = {}
    found = [(index, total) for index, total, _ in run_dir.shard_files()]
    if run_dir.annotations_dir.is_dir():
        for path in run_dir.annotations_dir.glob("shard-*.done.json"):
            if match := _DONE_FILE.match(path.name):
                found.append((int(match.group(1)), int(match.group(2))))
    for index, total in found:
        if total != config.num_shards:
            raise MergeError(f"part {root} holds {shard_name(index, total)} but its run.json says "
                             f"{config.num_shards} shards")
        if index >= total:
            raise MergeError(f"part {root}: {shard_name(index, total)} is not a shard of {total}")
        shards[index] = ShardCopy(root, index, total, _read_done(run_dir, index, total))
    return Part(root=root, manifest=manifest, config=config, shards=shards)


def _is_empty_review_db(path: Path) -> bool:
    from splitreason.review.store import ReviewStore

    with ReviewStore(path) as store:
        return not store.reviewed_ids()


def _read_done(run_dir: RunDir, index: int, total: int) -> dict | None:
    path = run_dir.shard_done_path(index, total)
    if not path.exists():
        return None
    try:
        done = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MergeError(f"cannot read {path} ({error})") from error
    if not isinstance(done, dict) or not isinstance(done.get("count"), int) or not isinstance(done.get("status"), dict):
        raise MergeError(f"{path} is not a shard's done.json (no count/status)")
    return done


def read_shard(copy: ShardCopy) -> ShardContent:
    """Read a finished shard file once and check it against its done.json: the same bytes (sha256),
    count and status counts, every trace once, and every trace in the shard its id hashes to."""
    assert copy.done is not None
    where = f"{copy.root}: {copy.name}"
    content = ShardContent()
    seen: set[str] = set()
    if copy.path.exists():
        hasher = hashlib.sha256()
        with open(copy.path, "rb") as handle:
            for line_no, raw in enumerate(handle, 1):
                hasher.update(raw)
                try:
                    record = json.loads(raw)
                    trace_id, status = record["trace_id"], record["status"]
                except (ValueError, KeyError, TypeError) as error:
                    raise MergeError(f"{where}.jsonl line {line_no} is not an annotation record ({error})") from error
                if trace_id in seen:
                    raise MergeError(f"trace {trace_id} appears twice in {where}.jsonl")
                if shard_of(trace_id, copy.num_shards) != copy.index:
                    raise MergeError(f"trace {trace_id} in {where}.jsonl belongs to shard "
                                     f"{shard_of(trace_id, copy.num_shards)}, not {copy.index}")
                seen.add(trace_id)
                content.trace_ids.append(trace_id)
                content.status[status] += 1
        content.sha256 = hasher.hexdigest()
    done = copy.done
    if content.sha256 != done.get("sha256") or len(content.trace_ids) != done["count"]:
        state = "is missing" if content.sha256 is None else "was changed or cut short"
        raise MergeError(f"{where}.jsonl does not match its done.json: the file {state} after the shard finished "
                         f"({len(content.trace_ids)} records, done.json says {done['count']}); re-annotate that "
                         "shard")
    if dict(content.status) != {key: value for key, value in done["status"].items() if value}:
        raise MergeError(f"{where}.jsonl does not match its done.json (status counts {dict(content.status)} vs "
                         f"{done['status']})")
    return content

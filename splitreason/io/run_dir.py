"""The layout of an annotation output directory, and safe resume over it.

    OUT/run.json                                   run manifest: config, versions, counts
    OUT/annotations/shard-00002-of-00004.jsonl     one annotation per line, append-only
    OUT/annotations/shard-00002-of-00004.done.json written when a shard is complete
    OUT/rejects.jsonl                              input rows that could not become traces
    OUT/cache.sqlite                               judge answers keyed by request payload

Files are append-only and flushed per record; a line cut short by a crash is removed on the
next start (repair_tail), so a half-written line never corrupts a file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from splitreason.io.environment import OutputNotWritable, first_file_on_path
from splitreason.io.jsonl import atomic_write_json, atomic_write_text, file_sha256, iter_jsonl, repair_tail
from splitreason.schemas import Annotation, Reject
from splitreason.errors import UsageError

_SHARD_FILE = re.compile(r"^shard-(\d{5})-of-(\d{5})\.jsonl$")


class RunDirError(UsageError, ValueError):
    """The output directory cannot be used as asked; the message says why."""


def check_output_path(out: Path) -> None:
    """Refuse an output path that cannot be a run directory, before anything is created: a file, or
    a path through a file."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output {out} exists and is not a directory; choose another output (-o)")
    if (blocker := first_file_on_path(out)) is not None:
        raise OutputNotWritable(f"cannot create {out}: {blocker} is a file, not a directory; choose another "
                                "output (-o)")


def shard_name(index: int, num_shards: int) -> str:
    return f"shard-{index:05d}-of-{num_shards:05d}"


class RunDir:
    def __init__(self, root: Path):
        self.root = root
        self.annotations_dir = root / "annotations"
        self.rejects_path = root / "rejects.jsonl"
        self.manifest_path = root / "run.json"
        self.cache_path = root / "cache.sqlite"

    def shard_path(self, index: int, num_shards: int) -> Path:
        return self.annotations_dir / f"{shard_name(index, num_shards)}.jsonl"

    def shard_done_path(self, index: int, num_shards: int) -> Path:
        return self.annotations_dir / f"{shard_name(index, num_shards)}.done.json"

    def holds_annotations(self) -> bool:
        """True once any trace was annotated here: from then on OUT is bound to the settings it was
        made with."""
        return self.annotations_dir.is_dir() and any(path.stat().st_size > 0 for _, _, path in self.shard_files())

    def clear_unannotated(self) -> None:
        """Forget what a run that annotated nothing left (its rejects, empty shard files and their
        done.json, run.json), so a run with other settings starts clean. Judge answers stay: they are
        keyed by their request."""
        assert not self.holds_annotations(), "clear_unannotated on a directory that holds annotations"
        for _, _, path in self.shard_files():
            path.unlink()
        if self.annotations_dir.is_dir():
            for path in self.annotations_dir.glob("shard-*.done.json"):
                path.unlink()
        self.rejects_path.unlink(missing_ok=True)
        self.manifest_path.unlink(missing_ok=True)

    def prepare(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"output {self.root} exists and is not a directory")
        self.annotations_dir.mkdir(parents=True, exist_ok=True)
        for path in [*self.annotations_dir.glob("shard-*.jsonl"), self.rejects_path]:
            if path.exists():
                repair_tail(path)

    def shard_files(self) -> list[tuple[int, int, Path]]:
        found = []
        for path in sorted(self.annotations_dir.glob("shard-*.jsonl")):
            match = _SHARD_FILE.match(path.name)
            if match:
                found.append((int(match.group(1)), int(match.group(2)), path))
        return found

    def check_shard_layout(self, num_shards: int) -> None:
        other = {total for _, total, _ in self.shard_files() if total != num_shards}
        if other:
            raise RunDirError(
                f"{self.root} already holds annotations split into {sorted(other)[0]} shards, "
                f"not {num_shards}; use a new output directory"
            )

    def shard_state(self, index: int, num_shards: int) -> tuple[set[str], Counter]:
        """Trace ids already annotated in a shard, and their count per status (one read)."""
        done: set[str] = set()
        status: Counter = Counter()
        path = self.shard_path(index, num_shards)
        if path.exists():
            for record in iter_jsonl(path):
                done.add(record["trace_id"])
                status[record["status"]] += 1
        return done, status

    def read_manifest(self) -> dict | None:
        """run.json, or None where there is none yet."""
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunDirError(f"{self.manifest_path} is not valid JSON ({error}); was it edited by hand?") from error

    def seal_shards(self, shard_status: dict[int, Counter], num_shards: int, rejects: int) -> dict:
        """Write each shard's done.json (its counts and hash); the run's totals, for run.json."""
        totals: dict = {"status": Counter(), "shards": {}}
        for shard, status in shard_status.items():
            path = self.shard_path(shard, num_shards)
            info = {"file": path.name, "count": sum(status.values()), "status": dict(status),
                    "sha256": file_sha256(path) if path.exists() else None}
            atomic_write_json(self.shard_done_path(shard, num_shards), info)
            totals["shards"][path.name] = info
            totals["status"].update(status)
        totals["status"] = dict(totals["status"])
        totals["input_rejects"] = rejects
        return totals

    def iter_rejects(self) -> Iterator[Reject]:
        if self.rejects_path.exists():
            for record in iter_jsonl(self.rejects_path):
                yield Reject.model_validate(record)

    def reject_keys(self) -> set[tuple]:
        return {reject.key() for reject in self.iter_rejects()}

    def drop_annotations(self, index: int, num_shards: int, should_drop) -> set[str]:
        """Rewrite a shard file without the records `should_drop` selects (atomically); their ids."""
        path = self.shard_path(index, num_shards)
        if not path.exists():
            return set()
        kept: list[str] = []
        dropped: set[str] = set()
        for record in iter_jsonl(path):
            annotation = Annotation.model_validate(record)
            if should_drop(annotation):
                dropped.add(annotation.trace_id)
            else:
                kept.append(annotation.model_dump_json())
        if dropped:
            atomic_write_text(path, "".join(line + "\n" for line in kept))
            self.shard_done_path(index, num_shards).unlink(missing_ok=True)
        return dropped

    def iter_annotations(self) -> Iterator[Annotation]:
        if not self.annotations_dir.is_dir():
            raise RunDirError(f"{self.root} holds no annotations (no {self.annotations_dir.name}/ directory)")
        for _, _, path in self.shard_files():
            for record in iter_jsonl(path):
                yield Annotation.model_validate(record)

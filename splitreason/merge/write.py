"""Carry out a checked merge plan: OUT ends with the files one local run of every shard writes.

Order, so that a merge stopped halfway can simply be run again: run.json first (state
"merging"), then shard files (each copied atomically), their done.json, rejects.jsonl, the
cache, and run.json last. Shards OUT already holds with the same bytes are left alone, which is
what makes merging the same parts twice a no-op.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from splitreason.io.environment import environment_errors
from splitreason.io.jsonl import atomic_write_bytes, atomic_write_json, atomic_writer
from splitreason.io.lock import claim_output_dir
from splitreason.io.run_dir import RunDir
from splitreason.merge.checks import MergePlan, plan_merge
from splitreason.merge.parts import MergeError, Part, ShardCopy, read_base, read_part
from splitreason.schemas.run_manifest import RunManifest
from splitreason.schemas.run_manifest import now as _now

log = logging.getLogger(__name__)


@dataclass
class MergeResult:
    out: Path
    num_shards: int
    shards: list[int]  # shards OUT holds finished now
    added: list[int]  # of those, copied in by this merge
    missing: list[int]
    traces: int
    rejects: int
    cache_rows: int  # answers in OUT/cache.sqlite afterwards (0 when there is none)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def merge_runs(paths: list[Path], out: Path, *, manifest_path: Path | None = None,
               allow_incomplete: bool = False) -> MergeResult:
    """`splitreason merge PART... -o OUT`: read, check, write."""
    resolved_out = out.resolve()
    parts: list[Part] = []
    seen: set[Path] = set()
    for path in paths:
        # A part given twice, or OUT given as a part, is still one source.
        if path.resolve() in seen or path.resolve() == resolved_out:
            continue
        seen.add(path.resolve())
        parts.append(read_part(path))
    plan_merge(parts, base=read_base(out), manifest_path=manifest_path, allow_incomplete=allow_incomplete)
    # Checked, so OUT may be created now; planned again under its lock, in case another merge or run
    # wrote to it in the meantime.
    lock = claim_output_dir(out)
    try:
        plan = plan_merge(parts, base=read_base(out), manifest_path=manifest_path, allow_incomplete=allow_incomplete)
        with environment_errors(f"the shards already copied into {out} are kept (each whole, or not at all)",
                                path=out):
            return write_merge(plan, out)
    except BaseException:
        lock.discard()  # removes an OUT this merge created only while it holds nothing but the lock
        raise
    finally:
        lock.release()


def write_merge(plan: MergePlan, out: Path) -> MergeResult:
    run_dir = RunDir(out)
    new = {index: (copy, content) for index, (copy, content) in plan.chosen.items()
           if plan.base is None or copy.root != plan.base.root}
    contributing = [part for part in plan.parts if any(copy.root == part.root for copy, _ in new.values())]
    result = MergeResult(out=out, num_shards=plan.config.num_shards, shards=sorted(plan.chosen), added=sorted(new),
                         missing=plan.missing, traces=sum(len(c.trace_ids) for _, c in plan.chosen.values()),
                         rejects=len(plan.rejects), cache_rows=0, notes=list(plan.notes))
    # Only a sealed OUT (a finished run or merge: state and totals written last) can be left as it
    # is. Any other state may be a merge stopped halfway (its rejects or cache not written yet,
    # and `annotate --engine ray` marks OUT "running" before it merges again): write it all again.
    sealed = plan.base is not None and plan.base.manifest.get("state") in ("complete", "incomplete") \
        and "totals" in plan.base.manifest
    if sealed and not new:
        result.notes.append(f"nothing new: {out} already holds every finished shard of the parts; left as it was")
        result.cache_rows = _count_rows(run_dir.cache_path)
        return result

    manifest = _manifest(plan, contributing)
    run_dir.annotations_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir.manifest_path, manifest.to_json())
    for index, (copy, content) in sorted(new.items()):
        if copy.path.exists():
            log.info("shard %d: %d trace(s) from %s", index, len(content.trace_ids), copy.root)
            _copy_checked(copy, content.sha256, run_dir.shard_path(index, plan.config.num_shards))

    # The same function a local run seals its shards with, so done.json and the totals are its own.
    status = {index: Counter(copy.done["status"])  # type: ignore[index]
              for index, (copy, _) in sorted(plan.chosen.items())}
    totals = run_dir.seal_shards(status, plan.config.num_shards, len(plan.rejects))
    if plan.rejects or run_dir.rejects_path.exists():
        atomic_write_bytes(run_dir.rejects_path, b"".join(plan.rejects))
    result.cache_rows = _merge_caches([part.root for part in plan.parts], run_dir.cache_path)
    log.info("merged %d cached answer(s) into %s", result.cache_rows, run_dir.cache_path)
    manifest = manifest.model_copy(update={"state": "complete" if plan.complete else "incomplete",
                                           "finished": _now(), "totals": totals})
    atomic_write_json(run_dir.manifest_path, manifest.to_json())
    return result


def _manifest(plan: MergePlan, contributing: list[Part]) -> RunManifest:
    """run.json of the merged run: the same config, every contributing part's invocations."""
    first = plan.base or plan.parts[0]
    invocations = list((plan.base.manifest if plan.base else {}).get("invocations", []))
    for part in contributing:
        shards = sorted(index for index, (copy, _) in plan.chosen.items() if copy.root == part.root)
        for invocation in part.manifest.get("invocations", []):
            entry = {**invocation, "part": str(part.root.resolve()), "shards": shards}
            if entry not in invocations:  # already there when a stopped merge is run again
                invocations.append(entry)
    starts = [source.manifest["started"] for source in [plan.base, *contributing]
              if source is not None and source.manifest.get("started")]
    merge = {"finished": _now(), "parts": [{"path": str(part.root.resolve()), "shards": part.finished}
                                            for part in contributing], "missing": plan.missing}
    return RunManifest(
        config=plan.config, settings=first.manifest.get("settings"), versions=first.manifest.get("versions", {}),
        started=min(starts) if starts else _now(), state="merging", invocations=invocations,
        merges=[*(plan.base.manifest.get("merges") or [] if plan.base else []), merge],
    )


def _copy_checked(copy: ShardCopy, sha256: str | None, target: Path) -> None:
    """Stream the shard file into OUT (it may be larger than memory should hold), hashing as it
    goes: a copy that differs from what the plan checked never replaces the target, so no
    done.json is ever written for it and running the merge again can succeed."""
    hasher = hashlib.sha256()
    with atomic_writer(target) as handle, open(copy.path, "rb") as original:
        while chunk := original.read(1 << 20):
            hasher.update(chunk)
            handle.write(chunk)
        if hasher.hexdigest() != sha256:  # inside the writer: the temp file is removed
            raise MergeError(f"{copy.root} {copy.name} changed while it was merged (or could not be read back); "
                             "run the merge again")


def _merge_caches(roots: list[Path], target: Path) -> int:
    """Every part's judge answers into OUT/cache.sqlite (answers are keyed by request: a key two parts
    share is the same answer). No part with a cache, no cache, as in a local heuristic run."""
    caches = [root / target.name for root in roots if (root / target.name).is_file()]
    if not caches and not target.exists():
        return 0
    from splitreason.judges.cache import RequestCache

    RequestCache(target).close()  # creates the table the way the annotator does
    db = sqlite3.connect(target, timeout=30, isolation_level=None)
    try:
        for path in caches:
            db.execute("ATTACH DATABASE ? AS part", (str(path),))
            try:
                db.execute("INSERT OR IGNORE INTO main.answers (key, trace_id, created, ok, body) "
                           "SELECT key, trace_id, created, ok, body FROM part.answers")
            except sqlite3.DatabaseError as error:
                raise MergeError(f"cannot read the judge cache {path} ({error})") from error
            finally:
                db.execute("DETACH DATABASE part")
        return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    finally:
        db.close()


def _count_rows(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    finally:
        db.close()

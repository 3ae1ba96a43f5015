"""Every check of a merge, before anything is written: same settings, every shard exactly once,
files as their done.json says, no trace twice (each file holds its ids once and only ids of its
own shard, so no two shards share one), and (for a shard-directory input) exactly the manifest's
traces. The result is a plan `write_merge` carries out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from splitreason.schemas.run_manifest import INPUT_SETTINGS, RunConfig
from splitreason.io.inputs import shard_key
from splitreason.io.jsonl import file_sha256
from splitreason.io.readers import InputError
from splitreason.io.shards import MANIFEST_NAME, ShardManifest, read_manifest, shard_of
from splitreason.merge.parts import MergeError, Part, ShardContent, ShardCopy, read_shard
from splitreason.schemas import Reject



@dataclass
class MergePlan:
    config: RunConfig  # the merged run's: shard_index None, as for a local run of every shard
    base: Part | None  # what OUT held before
    parts: list[Part]
    chosen: dict[int, tuple[ShardCopy, ShardContent]]  # shard -> the finished copy that goes to OUT
    missing: list[int]
    rejects: list[bytes]  # rejects.jsonl lines, each once, in input order
    notes: list[str] = field(default_factory=list)  # what was checked, or could not be, in words

    @property
    def complete(self) -> bool:
        return not self.missing


def plan_merge(parts: list[Part], *, base: Part | None = None, manifest_path: Path | None = None,
               allow_incomplete: bool = False) -> MergePlan:
    sources = ([base] if base is not None else []) + parts
    if not sources:
        raise MergeError("nothing to merge: give at least one part")
    config = _merged_config(sources)
    num_shards = config.num_shards
    notes: list[str] = []
    chosen: dict[int, tuple[ShardCopy, ShardContent]] = {}
    missing: list[int] = []
    for index in range(num_shards):
        copy = _choose(index, num_shards, base, parts, notes)
        if copy is None:
            missing.append(index)
        else:
            chosen[index] = (copy, read_shard(copy))
    if missing and not allow_incomplete:
        held = ", ".join(str(index) for index in sorted(chosen)) or "none"
        raise MergeError(f"shard {missing[0]} of {num_shards} is missing: no part holds it finished"
                         f"{f' (and {len(missing) - 1} more shards)' if len(missing) > 1 else ''}; finished shards: "
                         f"{held} (--allow-incomplete merges what is there)")
    if missing:
        notes.append(f"incomplete: {len(missing)} of {num_shards} shards missing ({_ranges(missing)}); merge again "
                     "or resume to add them")
    rejects = _rejects(base, parts, num_shards, strict=not allow_incomplete, notes=notes)
    _check_manifest(config, chosen, len(rejects), missing, manifest_path, notes)
    return MergePlan(config=config, base=base, parts=parts, chosen=chosen, missing=missing, rejects=rejects,
                     notes=notes)


def _merged_config(sources: list[Part]) -> RunConfig:
    first = sources[0]
    for other in sources[1:]:
        old, new = first.config.fingerprint(), other.config.fingerprint()
        for key in INPUT_SETTINGS:
            old[key], new[key] = getattr(first.config, key), getattr(other.config, key)
        changed = [key for key in old if old[key] != new[key]]
        if changed:
            detail = ", ".join(f"{key}: {old[key]!r} vs {new[key]!r}" for key in changed[:3])
            raise MergeError(f"{first.root} and {other.root} were annotated with different settings ({detail}); only "
                             "runs of the same command can be merged")
        if first.config.input != other.config.input and not _same_shard_dir(first.config.input, other.config.input):
            raise MergeError(f"{first.root} and {other.root} were annotated from different inputs "
                             f"({first.config.input} vs {other.config.input})")
    return first.config.model_copy(update={"shard_index": None})


def _same_shard_dir(a: str, b: str) -> bool:
    """Two paths to the same shard directory (say, mounted elsewhere on another machine)."""
    try:
        return read_manifest(a) == read_manifest(b)
    except InputError:
        return False


def _choose(index: int, num_shards: int, base: Part | None, parts: list[Part], notes: list[str]) -> ShardCopy | None:
    finished = [part.shards[index] for part in parts if index in part.shards and part.shards[index].finished]
    if len(finished) > 1:
        raise MergeError(f"shard {index} of {num_shards} is in two parts, {finished[0].root} and {finished[1].root}: "
                         "each shard may be merged once; leave one of them out")
    for part in parts:
        if index in part.shards and not part.shards[index].finished and not finished:
            notes.append(f"{part.root}: shard {index} is unfinished (no done.json) and was left out; resume that "
                         "run with the same annotate command")
    held = base.shards.get(index) if base is not None else None
    if held is None:
        return finished[0] if finished else None
    if not finished:
        if held.finished:
            return held
        return None  # an unfinished shard OUT already holds stays as it is (resume completes it)
    sha = finished[0].done["sha256"]  # type: ignore[index]
    same = (held.done or {}).get("sha256") == sha if held.finished else \
        (held.path.exists() and file_sha256(held.path) == sha) or (not held.path.exists() and sha is None)
    if not same:
        state = "" if held.finished else "an unfinished copy of "
        raise MergeError(f"{held.root} already holds {state}shard {index}, and it differs from {finished[0].root}'s; "
                         "merge into a new directory (nothing is overwritten)")
    return finished[0] if not held.finished else held


def _rejects(base: Part | None, parts: list[Part], num_shards: int, *, strict: bool, notes: list[str]) -> list[bytes]:
    """Every source's rejects, each once. A part only owns the rejects of its own shards: one holding
    another shard's reject was made differently (and its traces may be missing too)."""
    lines: dict[tuple, tuple[tuple, bytes]] = {}
    repeated = 0
    for source in ([base] if base is not None else []) + parts:
        path = source.root / "rejects.jsonl"
        if not path.exists():
            continue
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    reject = Reject.model_validate_json(raw)
                except ValueError as error:
                    if not raw.endswith(b"\n"):
                        break  # the torn last line of a run that was killed: never a whole record
                    raise MergeError(f"{path} line {line_no} is not a reject record "
                                     f"({str(error).splitlines()[0]})") from error
                shard = shard_of(shard_key(reject), num_shards)
                if strict and source is not base and shard not in source.shards:
                    raise MergeError(f"{source.root} holds a reject of shard {shard} ({reject.origin}:{reject.row} "
                                     f"{reject.reason}) but not shard {shard} itself; was it annotated with other "
                                     "settings?")
                if reject.key() in lines:
                    repeated += 1
                    continue
                lines[reject.key()] = (_input_order(reject), raw if raw.endswith(b"\n") else raw + b"\n")
    if repeated and parts and base is None:
        notes.append(f"{repeated} rejects were in more than one part; each is written once")
    return [raw for _, raw in sorted(lines.values(), key=lambda item: item[0])]


def _input_order(reject: Reject) -> tuple:
    """Where a reject was read: (file, row, generation), the order one local run writes them in."""
    generation = -1
    if reject.trace_id and reject.trace_id.rpartition(":")[2].isdigit():
        generation = int(reject.trace_id.rpartition(":")[2])
    return reject.origin, -1 if reject.row is None else reject.row, generation


def _check_manifest(config: RunConfig, chosen: dict[int, tuple[ShardCopy, ShardContent]], rejects: int,
                    missing: list[int], manifest_path: Path | None, notes: list[str]) -> None:
    """Nothing missing, nothing twice: the merged traces against the shard manifest, when there is one."""
    manifest = _manifest(config, manifest_path, notes)
    if manifest is None:
        return
    if manifest.num_shards != config.num_shards:
        raise MergeError(f"the shard manifest has {manifest.num_shards} shards, the runs {config.num_shards}")
    for index, (copy, content) in sorted(chosen.items()):
        expected = set(manifest.shards[index].trace_ids)
        extra = [trace_id for trace_id in content.trace_ids if trace_id not in expected]
        if extra:
            raise MergeError(f"trace {extra[0]} in {copy.root} {copy.name} is not in the shard manifest"
                             f"{f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''}")
        absent = expected.difference(content.trace_ids)
        if absent and config.limit is None:
            first = next(t for t in manifest.shards[index].trace_ids if t in absent)
            raise MergeError(f"shard {index}: {len(absent)} traces of the manifest are not annotated in {copy.root} "
                             f"(first: {first}); re-annotate that shard")
    if config.limit is not None:
        notes.append(f"checked against the shard manifest: every trace is in it once (with --limit {config.limit} "
                     "not all of them are annotated)")
        return
    if not missing and rejects != manifest.rejects_count:
        raise MergeError(f"the runs hold {rejects} input rejects, the shard manifest {manifest.rejects_count}")
    notes.append(f"checked against the shard manifest: {'every' if not missing else 'in the merged shards, every'} "
                 "trace annotated exactly once, nothing outside it")


def _manifest(config: RunConfig, manifest_path: Path | None, notes: list[str]) -> ShardManifest | None:
    if manifest_path is not None:
        return read_manifest(manifest_path)
    source = Path(config.input)
    if (source / MANIFEST_NAME).is_file():
        return read_manifest(source)
    notes.append(f"input {config.input} is not a shard directory (or not readable here): checked shards, done.json "
                 "hashes and trace ids, not that every input trace is there (--manifest checks a shard manifest)")
    return None


def _ranges(indices: list[int]) -> str:
    return json.dumps(indices[:20])[1:-1] + (" …" if len(indices) > 20 else "")

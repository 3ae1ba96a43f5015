"""The per-shard side of `annotate --engine ray`: part directories and the task every shard runs.

Each shard is annotated by the ordinary local code path (`run_annotate` with --shard-index)
into its own run directory, OUT/parts/shard-0000I/, so resume, the cache and every check work
there exactly as on one machine; the driver merges finished parts into OUT.

Tasks on other machines write into OUT, so OUT must be on a filesystem every node sees at the
same path. The driver leaves a file with a random token in OUT/parts; a task that cannot read
that token (no such path, or another directory under the same name) stops with that message.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import sqlite3
import uuid
from pathlib import Path

from splitreason.io.jsonl import atomic_write_json
from splitreason.io.lock import claim_output_dir
from splitreason.io.redaction import redact
from splitreason.io.run_dir import RunDir, RunDirError
from splitreason.io.shards import shard_of
from splitreason.errors import RunFailed, ServiceUnavailable, SplitReasonError, UsageError

PARTS_DIR = "parts"
_CHECK_FILE = ".ray-driver.json"


class RayEngineError(UsageError, ValueError):
    """`--engine ray` cannot run as asked; the message says why and what to do."""


class RayUnavailable(ServiceUnavailable):
    """No Ray: the package is missing or no cluster answers at the address."""


class RayShardsFailed(RunFailed):
    """Some shards' tasks failed; the others are merged, and the same command finishes the rest."""


def part_dir(out: Path, shard: int) -> Path:
    return out / PARTS_DIR / f"shard-{shard:05d}"


def write_check_file(out: Path) -> tuple[Path, str]:
    """The token tasks look for to prove they see the driver's OUT (see the module docstring)."""
    token = uuid.uuid4().hex
    path = out.resolve() / PARTS_DIR / _CHECK_FILE
    atomic_write_json(path, {"token": token, "driver": socket.gethostname(), "out": str(out.resolve())})
    return path, token


def remove_check_file(out: Path) -> None:
    (out / PARTS_DIR / _CHECK_FILE).unlink(missing_ok=True)
    try:
        (out / PARTS_DIR).rmdir()  # only when no part is left in it
    except OSError:
        pass


def prepare_parts(out: Path, shards: list[int], num_shards: int) -> list[Path]:
    """Give each shard's part what OUT already holds of it, so its task resumes instead of starting
    over: OUT's (unfinished, or with --retry-rejected finished) shard file moves into the part, and
    OUT's cached judge answers for the shard's traces are copied into the part's cache."""
    out_dir = RunDir(out)
    parts = []
    for shard in shards:
        part = RunDir(part_dir(out, shard))
        # The part's own lock while it is prepared: a task an earlier driver left running refuses us here.
        with claim_output_dir(part.root, f"part {part.root} of shard {shard}"):
            part.annotations_dir.mkdir(parents=True, exist_ok=True)
            held = out_dir.shard_path(shard, num_shards)
            if held.exists():
                target = part.shard_path(shard, num_shards)
                if target.exists():
                    raise RunDirError(f"both {held} and {target} hold annotations of shard {shard}; keep one of them")
                os.replace(held, target)  # same filesystem: a rename, never a half copy
            out_dir.shard_done_path(shard, num_shards).unlink(missing_ok=True)  # the part seals it again
        parts.append(part.root)
    if out_dir.cache_path.exists():
        _seed_caches(out_dir.cache_path, {shard: RunDir(part_dir(out, shard)).cache_path for shard in shards},
                     num_shards)
    return parts


def _seed_caches(source: Path, targets: dict[int, Path], num_shards: int) -> None:
    """One pass over OUT's cache (it may hold a whole dataset's answers), each answer into the part
    of the shard its trace belongs to."""
    from splitreason.judges.cache import RequestCache

    connections = {}
    try:
        for shard, target in targets.items():
            RequestCache(target).close()  # the table, as the annotator makes it
            connections[shard] = sqlite3.connect(target, timeout=30)
        reader = sqlite3.connect(source, timeout=30)
        try:
            rows = reader.execute("SELECT key, trace_id, created, ok, body FROM answers")
            for row in rows:
                db = connections.get(shard_of(row[1], num_shards))
                if db is not None:
                    db.execute("INSERT OR IGNORE INTO answers (key, trace_id, created, ok, body) VALUES (?, ?, ?, ?, ?)",
                               row)
        finally:
            reader.close()
        for db in connections.values():
            db.commit()
    finally:
        for db in connections.values():
            db.close()


def annotate_part(request, shard: int, check_file: str, token: str, input_path: str | None) -> dict:
    """Body of one Ray task: check what the node sees, then annotate the shard as a local run would.

    Errors come back as data (shard, host, one line), so the driver can report them per shard and
    still merge the others; nothing is raised through Ray but an interrupt.
    """
    from splitreason.executors.local import run_annotate

    host = socket.gethostname()
    try:
        _check_node_sees(check_file, token, input_path, host)
        from rich.console import Console

        counts = asyncio.run(run_annotate(request, Console(file=io.StringIO())))  # the driver reports
        return {"shard": shard, "ok": True, "host": host, "counts": counts.as_dict()}
    except Exception as error:  # noqa: BLE001 - every failure is reported, with its shard
        message = str(error) if isinstance(error, SplitReasonError) else f"{type(error).__name__}: {error}"
        return {"shard": shard, "ok": False, "host": host, "error": redact(" ".join(message.split()))}


def _check_node_sees(check_file: str, token: str, input_path: str | None, host: str) -> None:
    try:
        seen = json.loads(Path(check_file).read_text(encoding="utf-8")).get("token")
    except (OSError, ValueError, AttributeError):
        seen = None
    out = Path(check_file).parent.parent
    if seen != token:
        raise RayEngineError(f"node {host} cannot see the driver's output directory {out}: --engine ray needs OUT on "
                             "a filesystem shared by all nodes, at the same path")
    if input_path is not None and not Path(input_path).exists():
        raise RayEngineError(f"node {host} cannot read the input {input_path}: --engine ray needs INPUT at the same "
                             "path on every node (a shared filesystem), or a hub id")

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
from splitreason.io.run_dir import RunDir, RunDirError
from splitreason.io.shards import shard_of

PARTS_DIR = "parts"
_CHECK_FILE = ".ray-driver.json"


class RayEngineError(ValueError):
    """`--engine ray` cannot run as asked; the message says why and what to do."""


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


def prepare_part(out: Path, shard: int, num_shards: int) -> Path:
    """Give a shard's part what OUT already holds of it, so the task resumes instead of starting
    over: OUT's (unfinished, or with --retry-rejected finished) shard file moves into the part, and
    OUT's cached judge answers for the shard's traces are copied into the part's cache."""
    out_dir, part = RunDir(out), RunDir(part_dir(out, shard))
    part.annotations_dir.mkdir(parents=True, exist_ok=True)
    held = out_dir.shard_path(shard, num_shards)
    if held.exists():
        target = part.shard_path(shard, num_shards)
        if target.exists():
            raise RunDirError(f"both {held} and {target} hold annotations of shard {shard}; keep one of them")
        os.replace(held, target)  # same filesystem: a rename, never a half copy
    out_dir.shard_done_path(shard, num_shards).unlink(missing_ok=True)  # the part seals it again
    if out_dir.cache_path.exists():
        _seed_cache(out_dir.cache_path, part.cache_path, shard, num_shards)
    return part.root


def _seed_cache(source: Path, target: Path, shard: int, num_shards: int) -> None:
    from splitreason.judges.cache import RequestCache

    RequestCache(target).close()  # the table, as the annotator makes it
    db = sqlite3.connect(target, timeout=30, isolation_level=None)
    try:
        db.create_function("shard_of", 2, shard_of, deterministic=True)
        db.execute("ATTACH DATABASE ? AS out", (str(source),))
        db.execute("INSERT OR IGNORE INTO main.answers SELECT key, trace_id, created, ok, body FROM out.answers "
                   "WHERE shard_of(trace_id, ?) = ?", (num_shards, shard))
        db.execute("DETACH DATABASE out")
    finally:
        db.close()


def annotate_part(request, shard: int, check_file: str, token: str, input_path: str | None) -> dict:
    """Body of one Ray task: check what the node sees, then annotate the shard as a local run would.

    Errors come back as data (shard, host, one line), so the driver can report them per shard and
    still merge the others; nothing is raised through Ray but an interrupt.
    """
    from splitreason.annotator.pipeline import run_annotate
    from splitreason.cli import _known_errors

    host = socket.gethostname()
    try:
        _check_node_sees(check_file, token, input_path, host)
        from rich.console import Console

        counts = asyncio.run(run_annotate(request, Console(file=io.StringIO())))  # the driver reports
        return {"shard": shard, "ok": True, "host": host, "counts": counts.as_dict()}
    except Exception as error:  # noqa: BLE001 - every failure is reported, with its shard
        message = str(error) if isinstance(error, _known_errors()) else f"{type(error).__name__}: {error}"
        return {"shard": shard, "ok": False, "host": host, "error": " ".join(message.split())}


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

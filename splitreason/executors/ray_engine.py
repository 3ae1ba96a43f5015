"""`annotate --engine ray`: every unfinished shard as a task on an existing Ray cluster.

    driver: check settings against OUT -> connect -> one task per unfinished shard -> merge
    task:   run_annotate(--shard-index I) into OUT/parts/shard-0000I/   (executors/ray_parts.py)

The outputs, manifest and resume are a local run's: a shard finished in OUT is skipped, a part
left by a stopped run resumes (answers from its cache), changed settings are refused before any
task starts, and finished parts are merged into OUT by `splitreason merge`'s code, then removed.
A failed shard is reported and left in its part; the others are still merged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from splitreason.errors import one_line
from splitreason.executors.local import prepare_run, settled_manifest, stored_settings
from splitreason.executors.ray_parts import (
    PARTS_DIR,
    RayEngineError,
    RayShardsFailed,
    RayUnavailable,
    annotate_part,
    part_dir,
    prepare_parts,
    remove_check_file,
    write_check_file,
)
from splitreason.io.jsonl import atomic_write_json
from splitreason.io.lock import claim_output_dir
from splitreason.io.redaction import redact
from splitreason.io.run_dir import RunDir
from splitreason.merge import plan_merge, read_base, read_part, write_merge
from splitreason.schemas.annotate import AnnotateSettings
from splitreason.schemas.run_manifest import INPUT_SETTINGS, RunManifest, check_compatible

_POLL_SECONDS = 0.5
_TASK_RETRIES = 2  # a task whose worker or node died runs again (and resumes from its part)


def default_address() -> str:
    return os.environ.get("RAY_ADDRESS") or "auto"


def run_on_ray(request: AnnotateSettings, console: Console, *, address: str, num_cpus: float = 1.0) -> None:
    request = _absolute_paths(request)
    if request.shard_index is not None:
        raise RayEngineError("--shard-index runs one shard on this machine; leave it out with --engine ray (it runs "
                             "every shard)")
    prepared = prepare_run(request)  # every settings error before the cluster is touched
    asyncio.run(prepared.close())
    plan, config, n = prepared.plan, prepared.config, prepared.plan.num_shards
    if plan.manifest is None and request.num_shards is None:
        raise RayEngineError("--engine ray splits the input into shards, one task each: give --num-shards N (or a "
                             "shard directory from `splitreason shard`)")
    if plan.from_shard_dir and request.limit is not None:
        raise RayEngineError("--limit on a shard directory would cap every shard's task separately; leave it out "
                             "with --engine ray, or annotate locally")
    out = RunDir(request.out)
    _check_out_and_parts(out, config, n)
    to_run, finished_parts = _shards_to_run(out, request, n)
    if not to_run and not finished_parts:
        console.print(f"all {n} shards are finished in {request.out}; nothing to do", highlight=False, soft_wrap=True)
        return
    ray = _connect(address) if to_run else None  # before OUT is created: no cluster, nothing written
    try:
        lock = claim_output_dir(request.out)
    except BaseException:
        if ray is not None:
            ray.shutdown()
        raise
    try:
        # Checked again under the lock: another run may have finished shards in the meantime.
        previous = _check_out_and_parts(out, config, n)
        if previous is None and out.manifest_path.exists():
            out.clear_unannotated()  # a run that annotated nothing does not bind OUT to its settings
        to_run, finished_parts = _shards_to_run(out, request, n)
        if to_run and ray is None:
            ray = _connect(address)
        _mark_running(out, previous, config, request)
        results = _run_tasks(ray, request, to_run, n, plan, console, address=address, num_cpus=num_cpus) \
            if to_run else {}
        _finish(request, out, n, finished_parts, results, console)
    except BaseException:
        lock.discard()  # removes an OUT this run created only while it holds nothing but the lock
        raise
    finally:
        if ray is not None:
            ray.shutdown()
        lock.release()


def _check_out_and_parts(out: RunDir, config, n: int) -> dict | None:
    """The settings the merge at the end will compare, checked before anything runs: OUT and the
    parts an earlier run left were made with these (the input settings too, which a local resume lets
    change). OUT's run.json, when this run continues it."""
    previous = settled_manifest(out, config, also=INPUT_SETTINGS)
    if out.holds_annotations():
        out.check_shard_layout(n)
    for shard in range(n):
        part = RunDir(part_dir(out.root, shard))
        if (held := part.read_manifest()) is not None and part.holds_annotations():
            check_compatible(RunManifest.load(held, where=str(part.manifest_path)).config, config,
                             also=INPUT_SETTINGS)
    return previous


def _shards_to_run(out: RunDir, request: AnnotateSettings, n: int) -> tuple[list[int], list[int]]:
    """(shards to annotate, parts finished before and only waiting for the merge)."""
    finished_parts = [shard for shard in range(n) if RunDir(part_dir(request.out, shard)).shard_done_path(shard, n)
                      .exists() and not request.retry_rejected]
    to_run = [shard for shard in range(n) if shard not in finished_parts
              and (request.retry_rejected or not out.shard_done_path(shard, n).exists())]
    return to_run, finished_parts


def _finish(request: AnnotateSettings, out: RunDir, n: int, finished_parts: list[int], results: dict,
            console: Console) -> None:
    """Merge what finished into OUT and say in run.json how the run ended (a failed shard resumes)."""
    failed = {shard: result for shard, result in results.items() if not result["ok"]}
    ready = sorted([*finished_parts, *(shard for shard, result in results.items() if result["ok"])])
    result = _merge(request.out, ready, allow_incomplete=bool(failed), console=console)
    manifest = RunManifest.load(out.read_manifest() or {}, where=str(out.manifest_path))
    manifest = manifest.model_copy(update={
        "state": "complete" if result.complete else "failed" if failed else "incomplete",
        "failed_shards": {str(shard): redact(failed[shard]["error"]) for shard in sorted(failed)} or None})
    atomic_write_json(out.manifest_path, manifest.to_json())
    if failed:
        shards = ", ".join(str(shard) for shard in sorted(failed))
        raise RayShardsFailed(f"{len(failed)} of {n} shards failed (shard {shards}; see above); the others are "
                              f"merged into {request.out}; run the same command again to finish them")


def _absolute_paths(request: AnnotateSettings) -> AnnotateSettings:
    """Tasks run in other working directories (and on other machines): every path made absolute."""
    changes: dict = {"out": request.out.resolve()}
    if request.input is not None and Path(request.input).exists():
        changes["input"] = str(Path(request.input).resolve())
    if request.judges_file is not None:
        changes["judges_file"] = request.judges_file.resolve()
    return request.model_copy(update=changes)


def _mark_running(out: RunDir, previous: RunManifest | None, config, settings: AnnotateSettings) -> None:
    """run.json from the start, as a local run writes it; invocations and totals stay until the merge."""
    manifest = previous or RunManifest.start(config)
    manifest = manifest.model_copy(update={"config": config, "state": "running",
                                           "settings": stored_settings(settings)})
    atomic_write_json(out.manifest_path, manifest.to_json())


def _connect(address: str):
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray: pip install 'splitreason[ray]'") from None
    host, _, port = address.rpartition(":")
    if host and port.isdigit() and "://" not in address:
        # ray.init retries an address where nothing listens for a minute or more; say so at once.
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as error:
            raise RayUnavailable(f"no Ray cluster at {address} ({error.strerror or error}); start one with `ray start "
                                 "--head` (and `ray start --address=HEAD:PORT` on the other nodes)") from None
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RayUnavailable(f"cannot connect to a Ray cluster at {address}: {first} (start one with `ray start "
                             "--head`, or give --ray-address)") from None
    return ray


def _run_tasks(ray, request: AnnotateSettings, shards: list[int], n: int, plan, console: Console, *, address: str,
               num_cpus: float) -> dict[int, dict]:
    pending: dict = {}
    try:
        check_file, token = write_check_file(request.out)
        local_input = request.input if request.input is not None and Path(request.input).exists() else None
        task = ray.remote(num_cpus=num_cpus, max_retries=_TASK_RETRIES)(annotate_part)
        for shard, part in zip(shards, prepare_parts(request.out, shards, n)):
            shard_request = request.model_copy(update={"out": part, "shard_index": shard, "num_shards": n,
                                                       "progress": False})
            pending[task.remote(shard_request, shard, str(check_file), token, local_input)] = shard
        console.print(f"{len(shards)} of {n} shards submitted to the Ray cluster at {address}"
                      f"{f' ({n - len(shards)} finished before)' if len(shards) < n else ''}",
                      highlight=False, soft_wrap=True)
        expected = sum(plan.manifest.shards[shard].count for shard in shards) if plan.manifest else None
        return _wait(ray, pending, request, n, expected, console)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)  # an interrupted driver leaves no task writing behind it; the parts resume
        raise


def _wait(ray, pending: dict, request: AnnotateSettings, n: int, expected: int | None, console: Console) -> dict:
    results: dict[int, dict] = {}
    lines = _LineCounter([RunDir(part_dir(request.out, shard)).shard_path(shard, n) for shard in pending.values()])
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[shards]}"), console=console, disable=not request.progress) as progress:
        bar = progress.add_task("annotating on Ray", total=expected, shards=f"0/{len(pending)} shards")
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_SECONDS)
            for ref in done:
                shard = pending.pop(ref)
                results[shard] = _result(ray, ref, shard)
                progress.console.print(_describe(results[shard], n), highlight=False, soft_wrap=True)
            progress.update(bar, completed=lines.total(), shards=f"{len(results)}/{len(results) + len(pending)} shards")
    return results


def _result(ray, ref, shard: int) -> dict:
    try:
        return ray.get(ref)
    except Exception as error:  # noqa: BLE001 - a dead worker or node, after its retries
        message = one_line(redact(str(error))) or type(error).__name__
        return {"shard": shard, "ok": False, "host": "?", "error": f"{type(error).__name__}: {message}"}


def _describe(result: dict, n: int) -> str:
    if not result["ok"]:
        return f"shard {result['shard']} of {n} failed on {result['host']}: {result['error']}"
    counts = result["counts"]
    return (f"shard {result['shard']} of {n} done on {result['host']}: {counts['annotated']} annotated, "
            f"{counts['already_done']} already done, {counts['requests']} judge requests "
            f"({counts['elapsed_seconds']:.1f} s)")


class _LineCounter:
    """Records written so far across the parts' shard files, reading only what was appended."""

    def __init__(self, paths: list[Path]):
        self.offsets = {path: 0 for path in paths}
        self.lines = {path: 0 for path in paths}

    def total(self) -> int:
        for path, offset in self.offsets.items():
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
            except FileNotFoundError:
                continue
            self.offsets[path] = offset + len(chunk)
            self.lines[path] += chunk.count(b"\n")
        return sum(self.lines.values())


def _merge(out: Path, shards: list[int], *, allow_incomplete: bool, console: Console):
    parts = [read_part(part_dir(out, shard)) for shard in shards]
    plan = plan_merge(parts, base=read_base(out), allow_incomplete=allow_incomplete)
    result = write_merge(plan, out)
    for part in parts:  # its annotations, rejects, answers and invocations are in OUT now
        shutil.rmtree(part.root)
    remove_check_file(out)
    state = "every shard" if result.complete else f"{len(result.shards)} of {result.num_shards} shards"
    console.print(f"merged {len(result.added)} shards into {out}: it holds {state}, {result.traces} traces, "
                  f"{result.rejects} input rejects", highlight=False, soft_wrap=True)
    for note in result.notes:
        console.print(note, highlight=False, soft_wrap=True)
    if (out / PARTS_DIR).exists():
        left = sorted(path.name for path in (out / PARTS_DIR).iterdir())
        console.print(f"left in {out / PARTS_DIR} for the next run: {', '.join(left)}", highlight=False, soft_wrap=True)
    return result

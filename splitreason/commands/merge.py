"""`splitreason merge`: combine the run directories of one input's shards into one run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import json

import typer
from rich.console import Console

from splitreason.commands.options import AsJson, LegacyOut, OutDir, pick_output

console = Console(stderr=True, markup=False, emoji=False, soft_wrap=True)  # one line a message


def merge(
    parts: Annotated[list[Path], typer.Argument(help="Run directories of `annotate --num-shards N --shard-index I` "
                                                "(one or more shards each).", file_okay=False)],
    out: OutDir = Path("splitreason-out"),
    legacy_out: LegacyOut = None,
    manifest: Annotated[Path | None, typer.Option(help="Shard directory (or its manifest.json) to check the merged "
                                                  "traces against; default: the runs' input, when it is one.")] = None,
    allow_incomplete: Annotated[bool, typer.Option(help="Merge the shards that are there and list the missing ones, "
                                                   "instead of refusing.")] = False,
    as_json: AsJson = False,
) -> None:
    """Check and merge shard runs into OUT: every shard once, files as their done.json says, no trace twice."""
    from splitreason.merge import merge_runs

    out = pick_output(None if out == Path("splitreason-out") and legacy_out else out, legacy_out)
    result = merge_runs(parts, out, manifest_path=manifest, allow_incomplete=allow_incomplete)
    held = f"{len(result.shards)} of {result.num_shards} shards"
    console.print(f"merged {len(result.added)} new shards into {out}: it holds {held}, {result.traces} traces, "
                  f"{result.rejects} input rejects, {result.cache_rows} cached judge answers", highlight=False)
    for note in result.notes:
        console.print(note, highlight=False)
    if as_json:
        print(json.dumps({"output": str(out), "added": result.added, "shards": result.shards,
                          "num_shards": result.num_shards, "missing": result.missing, "traces": result.traces,
                          "rejects": result.rejects, "cache_rows": result.cache_rows, "notes": result.notes},
                         indent=2, ensure_ascii=False, default=str))

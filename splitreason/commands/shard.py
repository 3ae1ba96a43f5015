"""`splitreason shard`: deterministic shards of the selected traces, with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import json

import typer
from rich.console import Console

from splitreason.commands.options import (
    OUTPUT,
    AsJson,
    HubConfig,
    HubSplit,
    IncludeIncomplete,
    IncludeIncorrect,
    IncludeUnfinished,
    LegacyOut,
    pick_output,
)

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


def shard(
    input: Annotated[str, typer.Argument(help="OpenR1-schema file, directory or hub id.")],
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Directory for the shards (required).",
                                             file_okay=False, rich_help_panel=OUTPUT, show_default=False)] = None,
    legacy_out: LegacyOut = None,
    shards: Annotated[int, typer.Option("--shards", "-n", help="Number of shards.", min=1, max=100000)] = 8,
    limit: Annotated[int | None, typer.Option(help="Shard at most N traces.", min=0)] = None,
    include_incorrect: IncludeIncorrect = False,
    include_unfinished: IncludeUnfinished = False,
    include_incomplete: IncludeIncomplete = False,
    hub_config: HubConfig = None,
    hub_split: HubSplit = "train",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing, different shard directory.",
                                            rich_help_panel=OUTPUT)] = False,
    as_json: AsJson = False,
) -> None:
    """Select traces and write them into N deterministic shards plus manifest.json."""
    from splitreason.io.environment import environment_errors
    from splitreason.io.lock import claim_output_dir
    from splitreason.io.readers import iter_rows
    from splitreason.io.run_dir import check_output_path
    from splitreason.io.selection import Selection, SelectionStats, select_traces
    from splitreason.io.shards import write_shards

    out = pick_output(out, legacy_out)
    if out is None:
        from splitreason.errors import UsageError

        raise UsageError("shard needs an output directory: -o/--output DIR")
    selection = Selection(require_correct=not include_incorrect, require_stop=not include_unfinished,
                          require_complete=not include_incomplete, limit=limit)
    stats = SelectionStats()
    check_output_path(out)
    # iter_rows opens the input now: a missing file or hub id stops here, before OUT exists.
    items = select_traces(iter_rows(input, hub_split=hub_split, hub_config=hub_config), selection, stats=stats)
    source = f"{input} (selection: correct={selection.require_correct}, stop={selection.require_stop}, " \
             f"complete={selection.require_complete}, limit={limit})"
    lock = claim_output_dir(out)
    try:
        # Shards are written into a staging directory beside OUT and moved in when complete.
        with environment_errors(f"{out} was left as it was (shards are moved in only when complete)", path=out):
            manifest = write_shards(items, out, shards, source, overwrite=overwrite)
    except BaseException:
        lock.discard()  # a new OUT that got nothing goes again; an existing one keeps its files
        raise
    finally:
        lock.release()
    sizes = ", ".join(str(info.count) for info in manifest.shards[:16])
    more = " …" if len(manifest.shards) > 16 else ""
    console.print(f"wrote {manifest.total_count} traces into {shards} shards in {out} (sizes {sizes}{more}); "
                  f"{manifest.rejects_count} rejects", highlight=False)
    if as_json:
        print(json.dumps({"output": str(out), "input": input, "traces": manifest.total_count,
                          "shards": [info.count for info in manifest.shards], "rejects": manifest.rejects_count},
                         indent=2, ensure_ascii=False))

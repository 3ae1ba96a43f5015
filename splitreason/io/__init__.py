"""Input side of splitreason: read OpenR1-Math rows, select traces, write deterministic shards.

    rows = iter_rows("open-r1/OpenR1-Math-220k")          # RawRow | Reject (readers)
    selector = TraceSelector(Selection(limit=1000))         # validation + selection
    manifest = write_shards(selector(rows), out_dir, 8, "open-r1/OpenR1-Math-220k train")
    for index, trace in iter_shard_dir(out_dir): ...        # hash-checked against manifest.json

`jsonl` holds the crash-safe append-only JSONL and atomic-write helpers used for outputs.
"""

from splitreason.io.jsonl import (
    JsonlAppender,
    JsonlCorruptError,
    append_records,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    iter_jsonl,
    record_to_line,
    repair_tail,
)
from splitreason.io.readers import InputError, RawRow, is_hub_id, iter_rows, list_input_files
from splitreason.io.selection import Selection, SelectionStats, TraceSelector, select_traces
from splitreason.io.shards import (
    ShardInfo,
    ShardManifest,
    is_shard_dir,
    iter_rejects,
    iter_shard,
    iter_shard_dir,
    read_manifest,
    shard_file_name,
    shard_of,
    write_shards,
)

__all__ = [
    "InputError",
    "JsonlAppender",
    "JsonlCorruptError",
    "RawRow",
    "Selection",
    "SelectionStats",
    "ShardInfo",
    "ShardManifest",
    "TraceSelector",
    "append_records",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "is_hub_id",
    "is_shard_dir",
    "iter_jsonl",
    "iter_rejects",
    "iter_rows",
    "iter_shard",
    "iter_shard_dir",
    "list_input_files",
    "read_manifest",
    "record_to_line",
    "repair_tail",
    "select_traces",
    "shard_file_name",
    "shard_of",
    "write_shards",
]

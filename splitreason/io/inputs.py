"""Where an annotation run's traces come from: files, a hub id, or a shard directory.

Every item is paired with the shard it belongs to, so `--num-shards/--shard-index` on
independent machines split the same input the same way without talking to each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from itertools import islice
from pathlib import Path

from splitreason.io.readers import iter_rows
from splitreason.io.selection import Selection, SelectionStats, select_traces
from splitreason.io.shards import is_shard_dir, iter_rejects, iter_shard_dir, read_manifest, shard_of
from splitreason.schemas import Reject, Trace

SAMPLE_NAME = "openr1_sample.jsonl"


def bundled_sample() -> Path:
    """The small OpenR1-schema sample shipped with the package (the default input)."""
    return Path(str(resources.files("splitreason.data").joinpath(SAMPLE_NAME)))


def reject_shard_key(reject: Reject) -> str:
    """Rejects without a trace id are assigned by where they came from, so exactly one shard owns each."""
    return reject.trace_id or f"{reject.origin}:{reject.row}"


@dataclass
class InputPlan:
    source: str
    num_shards: int
    # How many traces the run will see, when it is known up front (shard manifest or --limit).
    expected: int | None
    selection_stats: SelectionStats = field(default_factory=SelectionStats)
    from_shard_dir: bool = False

    def items(self, selection: Selection, *, hub_split: str, hub_config: str | None,
              shard_indices: list[int] | None) -> Iterator[tuple[int, Trace | Reject]]:
        if self.from_shard_dir:
            for reject in iter_rejects(self.source):
                yield shard_of(reject_shard_key(reject), self.num_shards), reject
            traces = iter_shard_dir(self.source, shard_indices)
            # The shards hold selected traces already; only --limit is left to apply.
            yield from traces if selection.limit is None else islice(traces, selection.limit)
            return
        rows = iter_rows(self.source, hub_split=hub_split, hub_config=hub_config)
        for item in select_traces(rows, selection, stats=self.selection_stats):
            key = item.trace_id if isinstance(item, Trace) else reject_shard_key(item)
            yield shard_of(key, self.num_shards), item


def plan_input(source: str | None, *, num_shards: int | None, limit: int | None) -> InputPlan:
    """Decide the shard count and what is known of the input before reading it."""
    path = source or str(bundled_sample())
    if is_shard_dir(path):
        manifest = read_manifest(path)
        if num_shards is not None and num_shards != manifest.num_shards:
            from splitreason.io.readers import InputError

            raise InputError(
                f"{path} is a shard directory of {manifest.num_shards} shards; "
                f"--num-shards {num_shards} does not match (leave it out)"
            )
        expected = manifest.total_count if limit is None else min(limit, manifest.total_count)
        return InputPlan(source=path, num_shards=manifest.num_shards, expected=expected, from_shard_dir=True)
    return InputPlan(source=path, num_shards=num_shards or 1, expected=limit)

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

from splitreason.io.readers import InputError, iter_rows
from splitreason.io.selection import Selection, SelectionStats, select_traces
from splitreason.io.shards import MANIFEST_NAME, ShardManifest, iter_rejects, iter_shard_dir, read_manifest, shard_of
from splitreason.schemas import Reject, Trace

SAMPLE_NAME = "openr1_sample.jsonl"


def bundled_sample() -> Path:
    """The small OpenR1-schema sample shipped with the package (the default input)."""
    return Path(str(resources.files("splitreason.data").joinpath(SAMPLE_NAME)))


def shard_key(item: Trace | Reject) -> str:
    """What assigns an item to a shard: its trace id, or for a reject without one, where it came
    from (so exactly one shard owns each reject)."""
    return item.trace_id or f"{item.origin}:{item.row}"


@dataclass
class InputPlan:
    source: str
    num_shards: int
    # How many traces the run will see, when it is known up front (shard manifest or --limit).
    expected: int | None
    # Otherwise, how many input rows there are (parquet metadata, counted or estimated jsonl lines):
    # progress then counts rows read. `rows_estimated`: the count is an estimate from the file size.
    expected_rows: int | None = None
    rows_estimated: bool = False
    selection_stats: SelectionStats = field(default_factory=SelectionStats)
    # Set when the input is a shard directory: read and validated once, here.
    manifest: ShardManifest | None = None

    @property
    def from_shard_dir(self) -> bool:
        return self.manifest is not None

    def items(self, selection: Selection, *, hub_split: str, hub_config: str | None,
              shard_indices: list[int] | None) -> Iterator[tuple[int, Trace | Reject]]:
        """(shard, item) pairs of the wanted shards only: other shards' items stop here.

        The input is opened here, before anything is read: a missing file, an unreadable format or a
        hub id that cannot be loaded raises now (InputError), so a caller can check the input before
        it creates its output."""
        wanted = set(range(self.num_shards) if shard_indices is None else shard_indices)
        if self.manifest is not None:
            return self._shard_dir_items(selection, wanted)
        rows = iter_rows(self.source, hub_split=hub_split, hub_config=hub_config)
        return self._row_items(rows, selection, wanted)

    def _shard_dir_items(self, selection: Selection, wanted: set[int]) -> Iterator[tuple[int, Trace | Reject]]:
        for reject in iter_rejects(self.source, manifest=self.manifest):
            shard = shard_of(shard_key(reject), self.num_shards)
            if shard in wanted:
                yield shard, reject
        traces = iter_shard_dir(self.source, sorted(wanted), manifest=self.manifest)
        # The shards hold selected traces already; only --limit is left to apply.
        yield from traces if selection.limit is None else islice(traces, selection.limit)

    def _row_items(self, rows, selection: Selection, wanted: set[int]) -> Iterator[tuple[int, Trace | Reject]]:
        for item in select_traces(rows, selection, stats=self.selection_stats):
            shard = shard_of(shard_key(item), self.num_shards)
            if shard in wanted:
                yield shard, item


def plan_input(source: str | None, *, num_shards: int | None, limit: int | None) -> InputPlan:
    """Decide the shard count and what is known of the input before reading it."""
    path = source or str(bundled_sample())
    # A shard directory is one holding manifest.json; only then is a manifest read (a data file
    # is never read as one), and a broken manifest there is an error, not "plain files".
    manifest = read_manifest(path) if (Path(path) / MANIFEST_NAME).is_file() else None
    if manifest is not None:
        if num_shards is not None and num_shards != manifest.num_shards:
            raise InputError(
                f"{path} is a shard directory of {manifest.num_shards} shards; "
                f"--num-shards {num_shards} does not match (leave it out)"
            )
        expected = manifest.total_count if limit is None else min(limit, manifest.total_count)
        return InputPlan(source=path, num_shards=manifest.num_shards, expected=expected, manifest=manifest)
    rows, estimated = (None, False) if limit is not None else count_rows(path)
    return InputPlan(source=path, num_shards=num_shards or 1, expected=limit, expected_rows=rows,
                     rows_estimated=estimated)


#: jsonl files up to this size are counted exactly (a newline count runs at disk speed); larger ones
#: are estimated from their first lines' mean length.
COUNT_EXACTLY_BYTES = 256 << 20
_SAMPLE_LINES = 2000


def count_rows(source: str) -> tuple[int | None, bool]:
    """(rows in the input, whether estimated) before reading it: parquet footers hold the row count;
    jsonl is counted, or estimated when large or gzipped; a hub id gives (None, False)."""
    from splitreason.io.readers import list_input_files

    path = Path(source)
    if path.is_dir():
        files = list_input_files(path)
    elif path.is_file():
        files = [path]
    else:
        return None, False
    total, estimated = 0, False
    for file in files:
        try:
            rows, guess = _rows_of(file)
        except (OSError, ValueError, EOFError):
            return None, False  # the reader reports the file properly; progress just has no total
        if rows is None:
            return None, False
        total, estimated = total + rows, estimated or guess
    return total, estimated


def _rows_of(file: Path) -> tuple[int | None, bool]:
    name = file.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(file).metadata.num_rows, False
    if name.endswith(".jsonl.gz"):
        import gzip

        with gzip.open(file, "rb") as handle:
            sample = [handle.readline() for _ in range(_SAMPLE_LINES)]
        lines = [line for line in sample if line]
        if len(lines) < _SAMPLE_LINES:
            return sum(1 for line in lines if line.strip()), False
        ratio = file.stat().st_size / max(1, gzip_offset(file, lines))
        return round(len(lines) * ratio), True
    if name.endswith(".jsonl"):
        size = file.stat().st_size
        if size <= COUNT_EXACTLY_BYTES:
            with open(file, "rb") as handle:
                count = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
                handle.seek(max(0, size - 1))
                last = handle.read(1)
            return count + (1 if size and last != b"\n" else 0), False
        with open(file, "rb") as handle:
            sample = [handle.readline() for _ in range(_SAMPLE_LINES)]
        mean = sum(map(len, sample)) / len(sample)
        return round(size / mean), True
    return None, False


def gzip_offset(file: Path, lines: list[bytes]) -> int:
    """Compressed bytes that hold `lines` (the start of the file), to scale a gzip's line count."""
    import zlib

    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return len(compressor.compress(b"".join(lines)) + compressor.flush())

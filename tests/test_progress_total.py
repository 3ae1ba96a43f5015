"""Progress has a real total before the input is read: parquet footers, counted or estimated jsonl
lines (gzipped too), shard manifests and --limit; the bar's rows and the summary agree."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from splitreason.io import inputs
from splitreason.io.inputs import count_rows, plan_input
from tests.helpers import ok, openr1_record, reasoning_trace, run_cli


def _rows(n: int) -> list[dict]:
    return [openr1_record(f"p{i:04d}", [reasoning_trace(i, 3)]) for i in range(n)]


def test_row_counts_come_from_metadata_or_a_line_count(tmp_path: Path, monkeypatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _rows(40)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert count_rows(str(jsonl)) == (40, False)
    no_last_newline = tmp_path / "cut.jsonl"
    no_last_newline.write_text(jsonl.read_text().rstrip("\n"), encoding="utf-8")
    assert count_rows(str(no_last_newline)) == (40, False)

    parquet = tmp_path / "dir" / "in.parquet"
    parquet.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=7)  # 6 row groups
    assert count_rows(str(parquet)) == (40, False)
    (tmp_path / "dir" / "more.jsonl").write_text(jsonl.read_text(), encoding="utf-8")
    assert count_rows(str(tmp_path / "dir")) == (80, False)  # a directory: every file

    # Large files are estimated from their first lines (made "large" here by lowering the bound).
    monkeypatch.setattr(inputs, "COUNT_EXACTLY_BYTES", 10)
    monkeypatch.setattr(inputs, "_SAMPLE_LINES", 5)
    estimate, estimated = count_rows(str(jsonl))
    assert estimated and 30 <= estimate <= 50
    gz = tmp_path / "in.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write(jsonl.read_text())
    estimate, estimated = count_rows(str(gz))
    assert estimated and 10 <= estimate <= 160  # an order of magnitude from the compression ratio

    assert count_rows("someone/some-dataset") == (None, False)  # a hub id: no total
    assert plan_input(str(jsonl), num_shards=None, limit=5).expected == 5  # --limit is the total


def test_the_bar_counts_input_rows_to_their_total(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in _rows(12)), encoding="utf-8")
    # COLUMNS wide enough for every column; rich prints the bar's last state when stderr is not a terminal.
    result = ok(run_cli("annotate", source, "-o", tmp_path / "out"))
    bar = [line for line in result.stderr.splitlines() if line.startswith("annotating")]
    assert bar and "12/12" in bar[-1] and "rows/s" in bar[-1] and "eta" in bar[-1], result.stderr
    assert "tokens" not in bar[-1]  # the offline heuristic judge costs no tokens


@pytest.mark.parametrize("limit", ["3"])
def test_limit_is_the_total(tmp_path: Path, limit: str) -> None:
    result = ok(run_cli("annotate", "--limit", limit, "-o", tmp_path / "out"))
    bar = [line for line in result.stderr.splitlines() if line.startswith("annotating")]
    assert bar and f"{limit}/{limit}" in bar[-1] and "traces/s" in bar[-1], result.stderr


def test_paid_judges_show_tokens_and_dollars_so_far() -> None:
    import io

    from rich.console import Console

    from splitreason.annotator.progress import progress_bar
    from splitreason.annotator.runner import RunCounts
    from splitreason.commands.annotate import _cost_so_far
    from splitreason.schemas import Usage
    from splitreason.schemas.annotate import AnnotateSettings

    assert _cost_so_far(AnnotateSettings()) is None  # the offline heuristic judge costs nothing
    cost = _cost_so_far(AnnotateSettings(judge=["gpt-4o"]))  # list price: $2.50 / $10.00 per million
    assert cost(1_000_000, 100_000) == pytest.approx(3.5)
    assert _cost_so_far(AnnotateSettings(judge=["openai:some-model"]))(10, 10) is None  # no price: never guessed

    stream = io.StringIO()
    console = Console(file=stream, width=200, force_terminal=False)
    with progress_bar(console, True, 4, tokens=True, cost=cost) as tracker:
        counts = RunCounts(usage=Usage(prompt_tokens=1_000_000, completion_tokens=100_000))
        counts.status["accepted"] += 2
        tracker.update(counts, None)
    assert "tokens 1,100,000 ($3.50)" in stream.getvalue()

"""Progress has a real total before the input is read: parquet footers, counted or estimated jsonl
lines (gzipped too), shard manifests and --limit; the bar's rows and the summary agree."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from splitreason.io import inputs
from splitreason.io.inputs import count_rows, plan_input
from tests.helpers import cli_env, ok, openr1_record, reasoning_trace, run_cli


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
    # 80 columns, as in a default terminal or a pipe; rich prints the last state when stderr is not a terminal.
    result = ok(run_cli("annotate", source, "-o", tmp_path / "out", env=cli_env(COLUMNS="80")))
    bar = [line for line in result.stderr.splitlines() if line.startswith("annotating")]
    assert bar and "12/12 rows" in bar[-1] and "rows/s" in bar[-1] and "eta 0:00:00" in bar[-1], result.stderr
    assert "…" not in bar[-1] and len(bar[-1]) <= 80, bar[-1]
    assert "tok" not in bar[-1]  # the offline heuristic judge costs no tokens


def _final_line(width: int, *, terminal: bool, rows: int = 1760, cost=None) -> list[str]:
    """The lines a 1,760-row run over a paid judge leaves on a console `width` columns wide."""
    import io

    from rich.console import Console

    from splitreason.annotator.progress import progress_bar
    from splitreason.annotator.runner import RunCounts
    from splitreason.schemas import Usage

    stream = io.StringIO()
    console = Console(file=stream, width=width, force_terminal=terminal, color_system=None)
    read = [0]
    with progress_bar(console, True, None, rows=rows, rows_read=lambda: read[0], tokens=True, cost=cost) as tracker:
        counts = RunCounts(usage=Usage(prompt_tokens=1_000_000, completion_tokens=100_000))
        for _ in range(rows // 10):
            read[0] += 10
            counts.status["accepted"] += 10
            tracker.update(counts, None)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue()).replace("\r", "\n")  # cursor moves
    return [line for line in plain.splitlines() if "annotating" in line]


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("terminal", [True, False])
def test_the_line_fits_the_width_with_total_rate_and_eta(width: int, terminal: bool) -> None:
    from splitreason.commands.annotate import _cost_so_far
    from splitreason.schemas.annotate import AnnotateSettings

    lines = _final_line(width, terminal=terminal, cost=_cost_so_far(AnnotateSettings(judge=["gpt-4o"])))
    last = lines[-1].rstrip()
    assert len(last) <= width and "…" not in last, last
    for needle in ("1760/1760 rows", "rows/s", "eta 0:00:00", "1.1M tok $3.50"):
        assert needle in last, last
    if width >= 80:  # the status counts fit too; the bar where there is room
        assert "✓1760" in last, last
    if terminal and width >= 100:
        assert "━" in last, last


def test_not_a_terminal_prints_a_plain_line_now_and_then(monkeypatch) -> None:
    from splitreason.annotator import progress

    assert len(_final_line(80, terminal=False)) == 1  # a fast run: its last state only
    monkeypatch.setattr(progress, "PLAIN_LINE_EVERY_S", 0.0)
    lines = _final_line(80, terminal=False, rows=40)
    assert len(lines) == 5 and "10/40 rows" in lines[0] and "40/40 rows" in lines[-1], lines
    assert all("━" not in line for line in lines[:-1])  # periodic lines are plain text


@pytest.mark.parametrize("limit", ["3"])
def test_limit_is_the_total(tmp_path: Path, limit: str) -> None:
    result = ok(run_cli("annotate", "--limit", limit, "-o", tmp_path / "out"))
    bar = [line for line in result.stderr.splitlines() if line.startswith("annotating")]
    assert bar and f"{limit}/{limit} traces" in bar[-1] and "traces/s" in bar[-1], result.stderr


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
    console = Console(file=stream, width=80, force_terminal=False)
    with progress_bar(console, True, 4, tokens=True, cost=cost) as tracker:
        counts = RunCounts(usage=Usage(prompt_tokens=1_000_000, completion_tokens=100_000))
        counts.status["accepted"] += 2
        tracker.update(counts, None)
    assert "1.1M tok $3.50" in stream.getvalue()

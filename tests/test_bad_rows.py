"""Every input row is its own failure domain (issue 9, item 3).

Whatever a row's content causes while it is read or validated becomes a reject with a reason, in
every reader path (`annotate`, `shard`, `curate`), and the run goes on: numbers past Python's
int-conversion limit, nesting past its recursion limit, odd types, bytes that are not UTF-8,
values parquet cannot hand to Python, trace ids with control characters or longer than the review
UI accepts. A bug of ours is not a row's fault: it stays exit 3, never a reject.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from splitreason.io import readers
from splitreason.io.readers import iter_rows
from splitreason.schemas.trace import MAX_TRACE_ID_CHARS
from tests.helpers import annotations, cli_env, ok, openr1_record, read_jsonl, reasoning_trace, run_cli

HUGE = "1" + "0" * 5000  # past the 4,300 digits json.loads converts


def hostile_lines() -> tuple[list[bytes], dict[int, str], set[str]]:
    """JSONL lines (bytes), the reject reason expected per line number, and the good trace ids."""
    lines: list[bytes] = []
    expected: dict[int, str] = {}
    good: set[str] = set()

    def add(line: bytes | str | dict, reason: str | None = None, good_id: str | None = None) -> None:
        if isinstance(line, dict):
            line = json.dumps(line, ensure_ascii=False)
        lines.append(line if isinstance(line, bytes) else line.encode("utf-8"))
        if reason:
            expected[len(lines)] = reason
        if good_id:
            good.add(good_id)

    def record(name: str, **overrides) -> dict:
        return openr1_record(name, [reasoning_trace(len(lines), 3)], **overrides)

    add(record("good-a"), good_id="good-a:0")
    # Numbers Python will not convert, in a field we read and in one we never look at.
    add(json.dumps(record("huge-count")).replace('"correctness_count": 1', f'"correctness_count": {HUGE}'),
        "number_too_large")
    add(json.dumps(record("huge-unused")).replace('"correctness_llama": null', f'"correctness_llama": {HUGE}'),
        "number_too_large")
    # Nesting deeper than the recursion limit, inside a field nobody reads.
    deep = json.dumps(record("deep")).replace('"correctness_llama": null',
                                              '"correctness_llama": ' + "[" * 100_000 + "]" * 100_000)
    add(deep, "nested_too_deeply")
    # Odd types where strings, lists and integers belong.
    add({**record("x"), "uuid": {"not": "a string"}}, "bad_field")
    add({**record("ints"), "generations": [1, 2]}, "bad_field")
    add(record("flt", correctness_count=float("1e308")), "bad_field")
    add(record("boolprob", problem=True), "bad_field")
    add(record("listanswer", answer=[["nested"]]), "bad_field")
    add(record("strflags", finish_reasons=[["stop"]]), "bad_field")
    # Encodings: Latin-1 bytes and a UTF-16 line are not UTF-8.
    add(json.dumps(record("latin")).encode("utf-8").replace(b"olympiads", b"olymp\xefades\xff"), "invalid_utf8")
    add(json.dumps(record("utf16")).encode("utf-16"), "invalid_utf8")
    add(record("good-b"), good_id="good-b:0")
    # Trace ids that could never be shown or reviewed.
    add(record("line\nbreak"), "bad_trace_id")
    add(record("\x1b[31mred"), "bad_trace_id")
    add(record("sep\u2028arator"), "bad_trace_id")
    add(record("u" * (MAX_TRACE_ID_CHARS - 1)), "bad_trace_id")  # "{uuid}:0" is one character too long
    longest = "v" * (MAX_TRACE_ID_CHARS - 2)
    add(record(longest), good_id=f"{longest}:0")  # exactly the limit: accepted
    add(record("good-c"), good_id="good-c:0")
    return lines, expected, good


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, dict[int, str], set[str]]:
    lines, expected, good = hostile_lines()
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, expected, good


def reasons_by_row(path: Path) -> dict[int, str]:
    return {reject["row"]: reject["reason"] for reject in read_jsonl(path)}


def test_annotate_rejects_each_hostile_row_with_its_reason_and_goes_on(tmp_path: Path, hostile) -> None:
    source, expected, good = hostile
    out = tmp_path / "out"
    ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    assert reasons_by_row(out / "rejects.jsonl") == expected
    assert {record["trace_id"] for record in annotations(out)} == good
    for reject in read_jsonl(out / "rejects.jsonl"):
        assert reject["detail"] and "\n" not in reject["detail"] and "\x1b" not in reject["detail"]
        assert reject["trace_id"] is None  # a row-level reject: no bad id is carried along
    ok(run_cli("annotate", source, "-o", out, "--no-progress"))  # and every rerun goes on the same way
    assert reasons_by_row(out / "rejects.jsonl") == expected


def test_shard_and_curate_reject_the_same_rows(tmp_path: Path, hostile) -> None:
    source, expected, good = hostile
    ok(run_cli("shard", source, "-o", tmp_path / "shards", "--shards", "3"))
    assert reasons_by_row(tmp_path / "shards" / "rejects.jsonl") == expected
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert {trace_id for info in manifest["shards"] for trace_id in info["trace_ids"]} == good

    curated = tmp_path / "curated"
    ok(run_cli("curate", source, "-o", curated, "--no-dedup", "--no-near-dedup", "--no-progress"))
    assert reasons_by_row(curated / "rejects.jsonl") == expected
    assert json.loads((curated / "curate.json").read_text())["counts"]["input_rejects"] == len(expected)


def test_the_longest_accepted_trace_id_can_be_opened_and_decided_in_review(tmp_path: Path, write_jsonl) -> None:
    """One limit shared by input and review UI: every annotated trace can be reviewed."""
    from tests.browser import ReviewServerThread, call

    uuid = "w" * (MAX_TRACE_ID_CHARS - 2)
    source = write_jsonl("in.jsonl", [openr1_record(uuid, [reasoning_trace(3, 4)])])
    out = tmp_path / "out"
    ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    [record] = annotations(out)
    assert len(record["trace_id"]) == MAX_TRACE_ID_CHARS
    with ReviewServerThread(out, status="all") as server:
        status, trace = call(server, "GET", f"/api/trace?id={quote(record['trace_id'])}")
        assert status == 200 and trace["trace_id"] == record["trace_id"]
        status, _ = call(server, "POST", "/api/decision", {"trace_id": record["trace_id"], "decision": "accepted"})
        assert status == 200


def test_a_line_too_large_to_hold_is_read_past_not_into_memory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(readers, "MAX_ROW_BYTES", 1000)
    path = tmp_path / "big.jsonl"
    good = json.dumps({"uuid": "a"})
    path.write_text(good + "\n" + '{"pad": "' + "x" * 5000 + '"}\n' + good.replace('"a"', '"b"') + "\n")
    items = list(iter_rows(path))
    assert [getattr(item, "reason", None) for item in items] == [None, "row_too_large", None]
    assert items[1].row == 2 and "5,012 bytes" in items[1].detail and [items[0].row, items[2].row] == [1, 3]


def test_a_parquet_value_python_cannot_hold_is_a_reject_of_its_own_row(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [openr1_record(f"p{i}", [reasoning_trace(i, 3)]) for i in range(3)]
    table = pa.Table.from_pylist(rows)
    year_10000 = 253402300800 * 10**6  # microseconds since 1970 at 10000-01-01
    table = table.append_column("checked_at", pa.array([0, year_10000, 0], type=pa.timestamp("us")))
    source = tmp_path / "odd.parquet"
    pq.write_table(table, source)
    out = tmp_path / "out"
    ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    [reject] = read_jsonl(out / "rejects.jsonl")
    assert (reject["row"], reject["reason"]) == (1, "unreadable_row") and "out of range" in reject["detail"]
    assert {record["trace_id"] for record in annotations(out)} == {"p0:0", "p2:0"}


@pytest.mark.parametrize(("target", "error", "kind"), [
    ("splitreason.io.selection._validate", "KeyError", "jsonl"),
    ("splitreason.io.readers.parse_untrusted_json", "KeyError", "jsonl"),
    # A ValueError of ours while a parquet row is made into a record: the reader catches ValueError
    # only around pyarrow's conversion, so this is not taken for an unreadable row.
    ("splitreason.io.readers.RawRow", "ValueError", "parquet"),
])
def test_a_bug_of_ours_stays_a_bug_exit_3_never_a_reject(tmp_path: Path, write_jsonl, target: str, error: str,
                                                          kind: str) -> None:
    """A fault injected into our own validation code (as a real bug would be) must not be taken for
    bad input: the run stops with exit 3 and "please report it", and no row is rejected for it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    module, name = target.rsplit(".", 1)
    code = (f"import sys, {module} as m\n"
            f"def bug(*args, **kwargs):\n    raise {error}('a bug of ours')\n"
            f"m.{name} = bug\nsys.argv[0] = 'splitreason'\nfrom splitreason.cli import main\nmain()\n")
    rows = [openr1_record("u1", [reasoning_trace(1, 3)])]
    if kind == "parquet":
        source = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist(rows), source)
    else:
        source = write_jsonl("in.jsonl", rows)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", code, "annotate", str(source), "-o", str(out), "--no-progress"],
                            capture_output=True, text=True, env=cli_env(), timeout=120)
    assert result.returncode == 3, result.stderr
    assert f"internal error: {error}" in result.stderr and "please report it" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "rejects.jsonl").exists() and not annotations(out) if out.exists() else True


def test_one_depth_limit_for_every_command(tmp_path: Path) -> None:
    """A row nested 500 levels deep in a field nobody reads is rejected by annotate, shard and curate
    alike, with the same reason and detail (the limit is MAX_ROW_DEPTH, not whatever recursion
    depth is left at parse time); one nested 50 levels is accepted by all three."""
    from splitreason.io.untrusted_json import MAX_ROW_DEPTH

    def nested(name: str, depth: int) -> str:
        text = json.dumps(openr1_record(name, [reasoning_trace(len(name), 3)]))
        return text.replace('"correctness_llama": null', '"correctness_llama": ' + "[" * depth + "]" * depth)

    assert 50 < MAX_ROW_DEPTH < 500
    source = tmp_path / "deep.jsonl"
    source.write_text(nested("deep500", 500) + "\n" + nested("deep50", 50) + "\n", encoding="utf-8")
    ok(run_cli("annotate", source, "-o", tmp_path / "annotated", "--no-progress"))
    ok(run_cli("shard", source, "-o", tmp_path / "shards", "--shards", "1"))
    ok(run_cli("curate", source, "-o", tmp_path / "curated", "--no-dedup", "--no-near-dedup", "--no-progress"))
    for out in ("annotated", "shards", "curated"):
        rejects = [(r["row"], r["reason"], r["detail"]) for r in read_jsonl(tmp_path / out / "rejects.jsonl")]
        assert rejects == [(1, "nested_too_deeply", f"nested more than {MAX_ROW_DEPTH} levels deep")], out
    assert {record["trace_id"] for record in annotations(tmp_path / "annotated")} == {"deep50:0"}
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert [trace_id for info in manifest["shards"] for trace_id in info["trace_ids"]] == ["deep50:0"]
    assert json.loads((tmp_path / "curated" / "curate.json").read_text())["counts"]["input_rejects"] == 1


def test_parquet_and_hub_records_meet_the_same_depth_limit() -> None:
    from splitreason.io.untrusted_json import MAX_ROW_DEPTH

    deep: list = []
    for _ in range(MAX_ROW_DEPTH - 1):  # MAX_ROW_DEPTH lists; with the record itself, one level too many
        deep = [deep]
    reject = readers._row_unless_too_deep("x.parquet", 3, {"uuid": "u", "extra": deep})
    assert (reject.reason, reject.row) == ("nested_too_deeply", 3)
    assert readers._row_unless_too_deep("x.parquet", 4, {"uuid": "u", "extra": deep[0]}).data["uuid"] == "u"

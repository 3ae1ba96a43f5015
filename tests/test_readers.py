"""Readers and selection: every reject reason, every source kind, selection flags and limit."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from splitreason.io.hub import HubUnavailable
from splitreason.io import (
    InputError,
    RawRow,
    Selection,
    SelectionStats,
    TraceSelector,
    is_hub_id,
    iter_rows,
    select_traces,
)
from splitreason.io import readers as readers_mod
from splitreason.schemas import Reject, Trace


def record(uuid: str = "u1", n: int = 2, **overrides: Any) -> dict[str, Any]:
    """A well-formed OpenR1-Math record with `n` correct, finished, complete generations."""
    rec: dict[str, Any] = {
        "problem": f"Problem of {uuid}: compute 1+1.",
        "solution": "2",
        "answer": "2",
        "problem_type": "Algebra",
        "question_type": "math-word-problem",
        "source": "olympiads",
        "uuid": uuid,
        "is_reasoning_complete": [True] * n,
        "generations": [f"<think>gen {i} of {uuid}: 1+1=2</think> \\boxed{{2}}" for i in range(n)],
        "correctness_math_verify": [True] * n,
        "correctness_llama": None,
        "finish_reasons": ["stop"] * n,
        "correctness_count": n,
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    }
    rec.update(overrides)
    return rec


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    """Write lines: dicts are dumped as JSON, str as-is, bytes raw."""
    with open(path, "wb") as handle:
        for line in lines:
            if isinstance(line, bytes):
                handle.write(line + b"\n")
            elif isinstance(line, str):
                handle.write(line.encode("utf-8") + b"\n")
            else:
                handle.write(json.dumps(line).encode("utf-8") + b"\n")
    return path


def write_parquet(path: Path, records: list[dict[str, Any]], row_group_size: int = 2) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=row_group_size)
    return path


def split(items: list[Any]) -> tuple[list[Any], list[Reject]]:
    good = [x for x in items if not isinstance(x, Reject)]
    bad = [x for x in items if isinstance(x, Reject)]
    return good, bad


def traces_of(source: Path | str, selection: Selection | None = None) -> tuple[list[Trace], list[Reject], SelectionStats]:
    selector = TraceSelector(selection)
    good, bad = split(list(selector(iter_rows(source))))
    assert all(isinstance(t, Trace) for t in good)
    return good, bad, selector.stats


# -- readers ---------------------------------------------------------------------


def test_jsonl_rows_are_numbered_from_one(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [record("u1"), record("u2")])
    rows = list(iter_rows(path))
    assert rows == [
        RawRow(origin=str(path), row=1, data=record("u1")),
        RawRow(origin=str(path), row=2, data=record("u2")),
    ]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b'{"uuid": "broken", ', "invalid_json"),
        (b"not json at all", "invalid_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"null", "not_an_object"),
        (b'{"uuid": "caf\xe9"}', "invalid_utf8"),
        (b"\xff\xfe\x00garbage", "invalid_utf8"),
    ],
)
def test_reader_rejects_and_continues(tmp_path: Path, bad_line: bytes, reason: str) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [record("u1"), bad_line, record("u2")])
    items = list(iter_rows(path))
    good, bad = split(items)
    assert [r.data["uuid"] for r in good] == ["u1", "u2"]
    assert [r.row for r in good] == [1, 3]
    assert len(bad) == 1
    assert bad[0].reason == reason
    assert bad[0].origin == str(path) and bad[0].row == 2
    assert bad[0].detail and "\n" not in bad[0].detail


def test_reader_skips_blank_lines_and_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(record("u1")).encode() + b"\r\n\n   \n" + json.dumps(record("u2")).encode()
    )  # no final newline on the last line either
    rows = list(iter_rows(path))
    assert [(r.row, r.data["uuid"]) for r in rows] == [(1, "u1"), (4, "u2")]


def test_jsonl_gz(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(json.dumps(record("u1")).encode() + b"\n")
        handle.write(b"{oops\n")
        handle.write(json.dumps(record("u2")).encode() + b"\n")
    good, bad = split(list(iter_rows(path)))
    assert [r.data["uuid"] for r in good] == ["u1", "u2"]
    assert [(b.reason, b.row) for b in bad] == [("invalid_json", 2)]


def test_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.gz"
    data = gzip.compress(b"".join(json.dumps(record(f"u{i}")).encode() + b"\n" for i in range(50)))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="gzip"):
        list(iter_rows(path))


def test_parquet_reads_in_batches_with_zero_based_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers_mod, "PARQUET_BATCH_ROWS", 2)
    recs = [record(f"u{i}") for i in range(5)]
    path = write_parquet(tmp_path / "in.parquet", recs)
    rows = list(iter_rows(path))
    assert [r.row for r in rows] == [0, 1, 2, 3, 4]
    assert [r.data["uuid"] for r in rows] == [f"u{i}" for i in range(5)]
    assert rows[0].data["generations"] == recs[0]["generations"]
    assert rows[0].data["correctness_llama"] is None
    traces, rejects, _ = traces_of(path)
    assert len(traces) == 10 and not rejects
    assert traces[3].origin == str(path) and traces[3].origin_row == 1


def test_corrupt_parquet_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(InputError, match="corrupt parquet"):
        iter_rows(path)  # checked when called, before iterating
    # a directory holding one corrupt file fails before yielding anything from the good ones
    write_parquet(tmp_path / "a_good.parquet", [record("a")])
    with pytest.raises(InputError, match="corrupt parquet"):
        iter_rows(tmp_path)


def test_directory_is_read_sorted_and_recursive(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    write_jsonl(tmp_path / "b.jsonl", [record("b")])
    write_jsonl(tmp_path / "sub" / "c.jsonl", [record("c")])
    write_parquet(tmp_path / "a.parquet", [record("a")])
    with gzip.open(tmp_path / "a2.jsonl.gz", "wb") as handle:
        handle.write(json.dumps(record("a2")).encode() + b"\n")
    write_jsonl(tmp_path / ".hidden" / "x.jsonl", [record("hidden")])
    (tmp_path / "README.md").write_text("not data")
    (tmp_path / "notes.json").write_text("{}")
    rows = list(iter_rows(tmp_path))
    assert [r.data["uuid"] for r in rows] == ["a", "a2", "b", "c"]
    assert rows[0].origin == str(tmp_path / "a.parquet")


def test_directory_without_inputs_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("nothing")
    with pytest.raises(InputError, match="no input files"):
        list(iter_rows(tmp_path))


def test_missing_path_and_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        iter_rows(tmp_path / "missing.jsonl")  # raised by the call itself
    with pytest.raises(InputError, match="not found"):
        list(iter_rows("data/missing.jsonl"))  # owner/name shape but a file name: not a hub id
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n")
    with pytest.raises(InputError, match="unsupported"):
        list(iter_rows(csv))


def test_hub_id_shape(tmp_path: Path) -> None:
    assert is_hub_id("open-r1/OpenR1-Math-220k")
    assert not is_hub_id("open-r1/x.jsonl")
    assert not is_hub_id("justaname")
    assert not is_hub_id("a/b/c")
    assert not is_hub_id(str(tmp_path))


def test_hub_error_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    # The variables are read when the modules are imported; another test may have imported them.
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    with pytest.raises(HubUnavailable) as info:
        list(iter_rows("no-such-owner-xyz/no-such-dataset"))
    message = str(info.value)
    assert "no-such-owner-xyz/no-such-dataset" in message and "offline mode is on (HF_HUB_OFFLINE=1)" in message
    assert "\n" not in message and info.value.exit_code == 1  # the hub unavailable, not a usage error


def test_hub_rows_via_monkeypatched_load_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    import splitreason.io.hub

    monkeypatch.setattr(splitreason.io.hub, "why_hub_unusable", lambda: None)  # as if the hub were reachable

    calls: list[tuple[Any, ...]] = []

    def fake_load_dataset(hub_id: str, name: str | None = None, split: str | None = None, streaming: bool = False):
        calls.append((hub_id, name, split, streaming))
        return iter([record("h0"), record("h1")])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = list(iter_rows("owner/name", hub_split="train", hub_config="default"))
    assert calls == [("owner/name", "default", "train", True)]
    assert [(r.origin, r.row, r.data["uuid"]) for r in rows] == [("owner/name", 0, "h0"), ("owner/name", 1, "h1")]

    def failing(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Couldn't reach 'owner/name' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", failing)
    with pytest.raises(HubUnavailable, match=r"owner/name.*cannot be reached"):  # the network's fault: exit 1
        list(iter_rows("owner/name"))

    def unknown(*args: Any, **kwargs: Any) -> None:
        raise ValueError("Unknown split 'nope'. Should be one of ['train'].")

    monkeypatch.setattr(datasets, "load_dataset", unknown)
    with pytest.raises(InputError, match=r"owner/name.*Unknown split") as info:  # the hub answered: exit 2
        list(iter_rows("owner/name", hub_split="nope"))
    assert not isinstance(info.value, HubUnavailable)


def parquet_with_a_year_10000_row(path: Path, bad_rows: set[int], count: int = 4) -> Path:
    """A parquet file whose rows `bad_rows` hold a timestamp Python cannot hold."""
    year_10000 = 253402300800 * 10**6  # microseconds since 1970 at 10000-01-01
    table = pa.Table.from_pylist([{"uuid": f"h{i}"} for i in range(count)])
    stamps = [year_10000 if i in bad_rows else 0 for i in range(count)]
    pq.write_table(table.append_column("checked_at", pa.array(stamps, type=pa.timestamp("us"))), path)
    return path


@pytest.mark.parametrize("streaming", [True, False])
def test_a_hub_row_that_cannot_be_converted_is_a_reject_and_reading_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streaming: bool) -> None:
    """The hub seam: load_dataset gives a real `datasets` object (an IterableDataset when streaming,
    a Dataset when not) over a local parquet file, instead of one downloaded from the hub. Its
    iterator ends once a row raises; the reader rejects that row and goes on after it."""
    import datasets

    import splitreason.io.hub

    monkeypatch.setattr(splitreason.io.hub, "why_hub_unusable", lambda: None)
    source = parquet_with_a_year_10000_row(tmp_path / "odd.parquet", {1, 2})
    real_load_dataset = datasets.load_dataset

    def local(hub_id: str, name: str | None = None, split: str | None = None, streaming: bool = False):
        return real_load_dataset("parquet", data_files=str(source), split="train", streaming=streaming,
                                 cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(datasets, "load_dataset", local)
    items = list(iter_rows("owner/name", streaming=streaming))
    assert [(type(item).__name__, item.row) for item in items] == [
        ("RawRow", 0), ("Reject", 1), ("Reject", 2), ("RawRow", 3)]
    assert [item.data["uuid"] for item in items if not isinstance(item, Reject)] == ["h0", "h3"]
    assert all(item.reason == "unreadable_row" and "out of range" in item.detail
               for item in items if isinstance(item, Reject))


def test_a_hub_reader_that_cannot_go_past_a_bad_row_says_so_naming_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source whose iterator cannot be restarted after a row (not a `datasets` object): one line
    naming the row and what was read, not "check the id"."""
    import datasets

    import splitreason.io.hub

    monkeypatch.setattr(splitreason.io.hub, "why_hub_unusable", lambda: None)

    def rows():
        yield record("h0")
        raise ValueError("year 10000 is out of range")

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: rows())
    items = iter_rows("owner/name")
    assert next(items).data["uuid"] == "h0"
    with pytest.raises(InputError) as info:
        next(items)
    message = str(info.value)
    assert "row 1 cannot be read (ValueError: year 10000 is out of range)" in message, message
    assert "cannot go on past a row that fails" in message and "rows 0 to 0 were read" in message
    assert "check the id" not in message and "\n" not in message


# -- selection: row-level rejects ------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason", "field"),
    [
        ({"uuid": None}, "missing_field", "uuid"),
        ({"uuid": 17}, "bad_field", "uuid"),
        ({"uuid": "  "}, "bad_field", "uuid"),
        ({"problem": None}, "missing_field", "problem"),
        ({"problem": ["x"]}, "bad_field", "problem"),
        ({"generations": None}, "missing_field", "generations"),
        ({"generations": "just one string"}, "bad_field", "generations"),
        ({"generations": []}, "bad_field", "generations"),
        ({"generations": ["ok", 3]}, "bad_field", "generations"),
        ({"finish_reasons": "stop"}, "bad_field", "finish_reasons"),
        ({"finish_reasons": ["stop"]}, "bad_field", "finish_reasons"),  # length mismatch
        ({"correctness_math_verify": [True, True, True]}, "bad_field", "correctness_math_verify"),
        ({"correctness_math_verify": [True, "yes"]}, "bad_field", "correctness_math_verify"),
        ({"is_reasoning_complete": {"0": True}}, "bad_field", "is_reasoning_complete"),
        ({"answer": {"value": 2}}, "bad_field", "answer"),
        ({"source": float("-inf")}, "bad_field", "source"),  # `"source": -Infinity` in a JSON line
        ({"answer": float("nan")}, "bad_field", "answer"),
    ],
)
def test_row_level_rejects(tmp_path: Path, overrides: dict[str, Any], reason: str, field: str) -> None:
    bad = record("bad")
    bad.update(overrides)
    path = write_jsonl(tmp_path / "in.jsonl", [record("good1"), bad, record("good2")])
    traces, rejects, stats = traces_of(path)
    assert [t.trace_id for t in traces] == ["good1:0", "good1:1", "good2:0", "good2:1"]
    assert len(rejects) == 1
    rej = rejects[0]
    assert rej.reason == reason and field in rej.detail
    assert rej.row == 2 and rej.trace_id is None
    assert stats.rows_rejected == 1 and stats.rejected[reason] == 1


def test_missing_key_is_missing_field(tmp_path: Path) -> None:
    rec = record("bad")
    del rec["generations"]
    path = write_jsonl(tmp_path / "in.jsonl", [rec, record("good")])
    traces, rejects, _ = traces_of(path)
    assert [t.uuid for t in traces] == ["good", "good"]
    assert [(r.reason, r.row) for r in rejects] == [("missing_field", 1)]


def test_lenient_on_unused_fields(tmp_path: Path) -> None:
    rec = record("u1")
    for name in ("solution", "correctness_llama", "messages", "correctness_count"):
        rec[name] = None
    rec2 = record("u2")
    for name in ("solution", "correctness_llama", "messages", "correctness_count", "answer", "source"):
        rec2.pop(name)
    rec3 = record("u3", answer=42)
    path = write_jsonl(tmp_path / "in.jsonl", [rec, rec2, rec3])
    traces, rejects, _ = traces_of(path)
    assert not rejects
    assert len(traces) == 6
    assert traces[2].answer is None and traces[2].source is None
    assert traces[4].answer == "42"


# -- selection: per-generation rejects -------------------------------------------


@pytest.mark.parametrize(
    ("generation", "reason"),
    [
        ("", "empty_generation"),
        ("  \n\t ", "empty_generation"),
        ("first <bigmodel>hard</bigmodel> then", "contains_tag"),
        ("only a closing </bigmodel> tag", "contains_tag"),
        ("has a \x00 NUL", "nul_character"),
    ],
)
def test_generation_rejects(tmp_path: Path, generation: str, reason: str) -> None:
    rec = record("mixed", n=3)
    rec["generations"][1] = generation
    path = write_jsonl(tmp_path / "in.jsonl", [record("good1", n=1), rec, record("good2", n=1)])
    traces, rejects, stats = traces_of(path)
    assert [t.trace_id for t in traces] == ["good1:0", "mixed:0", "mixed:2", "good2:0"]
    assert [(r.reason, r.trace_id, r.row) for r in rejects] == [(reason, "mixed:1", 2)]
    assert "generation 1" in rejects[0].detail
    assert stats.generations_rejected == 1 and stats.rejected[reason] == 1


def test_lone_surrogate_from_json_escape(tmp_path: Path) -> None:
    rec = record("sur", n=2)
    line = json.dumps(rec).replace("gen 1 of sur", "gen 1 \\ud835 of sur")  # unpaired JSON escape, as in real data
    paired = json.dumps(record("pair", n=1)).replace("1+1=2", "\\ud835\\udc31")  # a valid pair is fine
    path = write_jsonl(tmp_path / "in.jsonl", [record("good", n=1), line, paired])
    traces, rejects, _ = traces_of(path)
    assert [t.trace_id for t in traces] == ["good:0", "sur:0", "pair:0"]
    assert "\U0001d431" in traces[2].text
    assert [(r.reason, r.trace_id) for r in rejects] == [("lone_surrogate", "sur:1")]
    assert "U+D835" in rejects[0].detail


@pytest.mark.parametrize(
    ("problem_json", "reason"),
    [("bad \\u0000 problem", "nul_character"), ("bad \\udc00 problem", "lone_surrogate")],
)
def test_problem_text_checks(tmp_path: Path, problem_json: str, reason: str) -> None:
    rec = record("badp", n=2, problem="PLACEHOLDER")
    line = json.dumps(rec).replace("PLACEHOLDER", problem_json)
    path = write_jsonl(tmp_path / "in.jsonl", [line, record("good", n=1)])
    traces, rejects, _ = traces_of(path)
    assert [t.trace_id for t in traces] == ["good:0"]
    assert [(r.reason, r.trace_id) for r in rejects] == [(reason, "badp:0"), (reason, "badp:1")]
    assert all("problem" in r.detail for r in rejects)


def test_bad_generation_not_selected_is_not_rejected(tmp_path: Path) -> None:
    rec = record("u", n=3, correctness_math_verify=[True, False, True])
    rec["generations"][1] = "<bigmodel>x</bigmodel>"  # would be a reject, but it is incorrect anyway
    path = write_jsonl(tmp_path / "in.jsonl", [rec])
    traces, rejects, stats = traces_of(path)
    assert [t.trace_id for t in traces] == ["u:0", "u:2"]
    assert not rejects
    assert stats.not_selected == {"incorrect": 1}


def test_duplicate_uuid(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [record("dup", n=1), record("dup", n=1), record("other", n=1)])
    traces, rejects, _ = traces_of(path)
    assert [t.trace_id for t in traces] == ["dup:0", "other:0"]
    assert [(r.reason, r.row, r.trace_id) for r in rejects] == [("duplicate_trace_id", 2, "dup:0")]


def test_reader_rejects_pass_through_selection(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [b"{bad", record("u", n=1)])
    stats = SelectionStats()
    items = list(select_traces(iter_rows(path), Selection(), stats=stats))
    assert isinstance(items[0], Reject) and items[0].reason == "invalid_json"
    assert isinstance(items[1], Trace)
    assert stats.rows_read == 2 and stats.rows_rejected == 1 and stats.rejected == {"invalid_json": 1}


# -- selection flags and limit ---------------------------------------------------


def flag_record() -> dict[str, Any]:
    return record(
        "f",
        n=6,
        correctness_math_verify=[True, False, True, True, None, True],
        finish_reasons=["stop", "stop", "length", "stop", "stop", None],
        is_reasoning_complete=[True, True, True, False, True, True],
    )


def test_trace_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [record("u1", n=1)])
    traces, _, _ = traces_of(path)
    rec = record("u1", n=1)
    assert traces[0] == Trace(
        trace_id="u1:0",
        uuid="u1",
        generation_index=0,
        problem=rec["problem"],
        text=rec["generations"][0],
        answer="2",
        source="olympiads",
        problem_type="Algebra",
        question_type="math-word-problem",
        origin=str(path),
        origin_row=1,
        finish_reason="stop",
        correctness_count=rec["correctness_count"],
    )


@pytest.mark.parametrize("value", ["2", -1, 1.5, True])
def test_ill_typed_correctness_count_rejects_the_row(tmp_path: Path, value) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [record("u1", n=1, correctness_count=value), record("u2", n=1)])
    traces, rejects, _ = traces_of(path)
    assert [t.uuid for t in traces] == ["u2"]
    assert [(r.reason, r.row) for r in rejects] == [("bad_field", 1)] and "correctness_count" in rejects[0].detail


def test_not_selected_generations_reach_the_callback(tmp_path: Path) -> None:
    from splitreason.io.selection import TraceSelector

    seen = []
    selector = TraceSelector(on_not_selected=lambda row, trace_id, reason: seen.append((row.row, trace_id, reason)))
    traces = [t for t in selector(iter_rows(write_jsonl(tmp_path / "in.jsonl", [flag_record()])))]
    assert seen and all(reason in selector.stats.not_selected for _, _, reason in seen)
    assert len(seen) == sum(selector.stats.not_selected.values()) and len(traces) == selector.stats.selected


def test_default_selection_counts_not_selected(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [flag_record()])
    traces, rejects, stats = traces_of(path)
    assert [t.generation_index for t in traces] == [0]
    assert not rejects
    assert stats.not_selected == {
        "incorrect": 1,
        "not_stop": 1,
        "incomplete": 1,
        "unknown_correctness": 1,
        "unknown_finish_reason": 1,
    }
    assert stats.generations_seen == 6 and stats.selected == 1 and stats.rows_read == 1
    assert stats.generations_seen == stats.selected + sum(stats.not_selected.values()) + stats.generations_rejected


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection(require_correct=False), [0, 1, 4]),
        (Selection(require_stop=False), [0, 2, 5]),
        (Selection(require_complete=False), [0, 3]),
        (Selection(False, False, False), [0, 1, 2, 3, 4, 5]),
    ],
)
def test_selection_flags(tmp_path: Path, selection: Selection, expected: list[int]) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [flag_record()])
    traces, _, _ = traces_of(path, selection)
    assert [t.generation_index for t in traces] == expected


def test_null_lists_are_unknown(tmp_path: Path) -> None:
    rec = record("n", n=2, finish_reasons=None, is_reasoning_complete=None, correctness_math_verify=None)
    path = write_jsonl(tmp_path / "in.jsonl", [rec])
    traces, rejects, stats = traces_of(path)
    assert not traces and not rejects
    assert stats.not_selected == {"unknown_correctness": 2}
    traces, _, _ = traces_of(path, Selection(require_correct=False, require_complete=False))
    assert not traces
    traces, _, _ = traces_of(path, Selection(False, False, False))
    assert [t.trace_id for t in traces] == ["n:0", "n:1"]


def test_limit_stops_reading(tmp_path: Path) -> None:
    consumed: list[int] = []

    def rows():
        for i in range(100):
            consumed.append(i)
            yield RawRow(origin="mem", row=i, data=record(f"u{i}", n=2))

    selector = TraceSelector(Selection(limit=3))
    traces = list(selector(rows()))
    assert [t.trace_id for t in traces] == ["u0:0", "u0:1", "u1:0"]
    assert consumed == [0, 1]
    assert selector.stats.limit_reached and selector.stats.selected == 3
    assert list(TraceSelector(Selection(limit=0))(rows())) == []
    with pytest.raises(ValueError):
        Selection(limit=-1)

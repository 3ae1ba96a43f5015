"""Deterministic shards, manifests, tamper detection, and the crash-safe JSONL helpers."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import splitreason
from splitreason.io import (
    InputError,
    JsonlAppender,
    JsonlCorruptError,
    Selection,
    TraceSelector,
    append_records,
    atomic_write_json,
    atomic_write_text,
    is_shard_dir,
    iter_jsonl,
    iter_rejects,
    iter_rows,
    iter_shard,
    iter_shard_dir,
    read_manifest,
    repair_tail,
    shard_file_name,
    shard_of,
    write_shards,
)
from splitreason.schemas import Reject, Trace


def make_trace(uuid: str, index: int = 0) -> Trace:
    return Trace(
        trace_id=f"{uuid}:{index}",
        uuid=uuid,
        generation_index=index,
        problem=f"problem {uuid} — ünïcode ∑",
        text=f"<think>trace {uuid}/{index}\nline two</think>",
        answer="42",
        origin="mem",
        origin_row=index,
    )


def items() -> list[Trace | Reject]:
    out: list[Trace | Reject] = [make_trace(f"u{i:03d}", g) for i in range(20) for g in range(2)]
    out.insert(5, Reject(origin="mem", row=3, reason="invalid_json", detail="Expecting value at column 1"))
    out.append(Reject(origin="mem", row=9, trace_id="u009:1", reason="contains_tag", detail="generation 1 ..."))
    return out


def all_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# -- shard assignment ------------------------------------------------------------


def test_shard_of_known_values() -> None:
    # Computed once with sha256; these must never change (they fix which shard a trace lives in).
    assert int.from_bytes(hashlib.sha256(b"abc").digest()[:8], "big") == 13436514500253700074
    assert shard_of("abc", 4) == 2
    assert shard_of("abc", 1000) == 74
    assert shard_of("0b2e3f0c-1a5b-5c3d-9e8f-123456789abc:3", 16) == 0
    assert shard_of("uuid-1:0", 7) == 5
    assert shard_of("anything", 1) == 0
    with pytest.raises(ValueError):
        shard_of("abc", 0)


def test_shard_of_spreads_keys() -> None:
    counts = [0] * 8
    for i in range(8000):
        counts[shard_of(f"key-{i}:0", 8)] += 1
    assert min(counts) > 800


# -- writing ---------------------------------------------------------------------


def test_write_shards_layout_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    data = items()
    manifest = write_shards(data, out, 4, "mem test source")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["manifest.json", "rejects.jsonl"] + [shard_file_name(i, 4) for i in range(4)]
    assert shard_file_name(0, 4) == "shard-00000-of-00004.jsonl"

    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["format_version"] == 1
    assert on_disk["source"] == "mem test source"
    assert on_disk["num_shards"] == 4
    assert on_disk["splitreason_version"] == splitreason.__version__
    assert on_disk["total_count"] == 40
    assert on_disk["rejects_count"] == 2
    assert on_disk["rejects_by_reason"] == {"contains_tag": 1, "invalid_json": 1}
    assert read_manifest(out) == manifest

    traces = [x for x in data if isinstance(x, Trace)]
    for info in manifest.shards:
        expected = [t.trace_id for t in traces if shard_of(t.trace_id, 4) == info.index]  # input order
        assert info.trace_ids == expected
        assert info.count == len(expected)
        content = (out / info.file).read_bytes()
        assert info.sha256 == hashlib.sha256(content).hexdigest()
        assert content == b"".join(t.model_dump_json().encode() + b"\n" for t in traces if t.trace_id in expected)
    assert sum(info.count for info in manifest.shards) == 40
    rejects = list(iter_rejects(out))
    assert rejects == [x for x in data if isinstance(x, Reject)]
    assert manifest.rejects_sha256 == hashlib.sha256((out / "rejects.jsonl").read_bytes()).hexdigest()
    assert is_shard_dir(out)
    assert not is_shard_dir(tmp_path)
    assert not list(tmp_path.glob(".*staging*"))  # staging directory cleaned up


def test_write_shards_is_deterministic(tmp_path: Path) -> None:
    m1 = write_shards(items(), tmp_path / "a", 3, "src")
    m2 = write_shards(iter(items()), tmp_path / "b", 3, "src")
    assert m1 == m2
    assert all_bytes(tmp_path / "a") == all_bytes(tmp_path / "b")


def test_round_trip(tmp_path: Path) -> None:
    write_shards(items(), tmp_path / "s", 4, "src")
    got = list(iter_shard_dir(tmp_path / "s"))
    traces = [x for x in items() if isinstance(x, Trace)]
    assert sorted(t.trace_id for _, t in got) == sorted(t.trace_id for t in traces)
    by_id = {t.trace_id: t for t in traces}
    for index, trace in got:
        assert trace == by_id[trace.trace_id]
        assert index == shard_of(trace.trace_id, 4)
    assert [i for i, _ in got] == sorted(i for i, _ in got)
    only = list(iter_shard_dir(tmp_path / "s", indices=[2]))
    assert {i for i, _ in only} == {2}
    assert [t for _, t in only] == list(iter_shard(tmp_path / "s", 2))
    with pytest.raises(InputError, match="out of range"):
        iter_shard(tmp_path / "s", 4)


def test_empty_input_gives_empty_shards(tmp_path: Path) -> None:
    manifest = write_shards([], tmp_path / "s", 2, "nothing")
    assert manifest.total_count == 0 and manifest.rejects_count == 0
    assert list(iter_shard_dir(tmp_path / "s")) == []
    assert (tmp_path / "s" / "shard-00001-of-00002.jsonl").read_bytes() == b""


def test_many_shards_keep_few_files_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from splitreason.io import shards as shards_mod

    monkeypatch.setattr(shards_mod, "_MAX_OPEN_FILES", 3)
    write_shards(items(), tmp_path / "a", 16, "src")
    monkeypatch.setattr(shards_mod, "_MAX_OPEN_FILES", 128)
    write_shards(items(), tmp_path / "b", 16, "src")
    assert all_bytes(tmp_path / "a") == all_bytes(tmp_path / "b")


def test_duplicate_trace_ids_and_bad_items_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        write_shards([make_trace("x"), make_trace("x")], tmp_path / "d", 2, "src")
    assert not (tmp_path / "d").exists()
    assert not list(tmp_path.glob(".*staging*"))
    with pytest.raises(TypeError):
        write_shards([{"trace_id": "x"}], tmp_path / "d", 2, "src")  # type: ignore[list-item]


# -- overwrite rules ---------------------------------------------------------------


def test_identical_rewrite_is_allowed(tmp_path: Path) -> None:
    out = tmp_path / "s"
    m1 = write_shards(items(), out, 4, "src")
    before = all_bytes(out)
    m2 = write_shards(items(), out, 4, "src")
    assert m1 == m2 and all_bytes(out) == before


def test_different_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "s"
    write_shards(items(), out, 4, "src")
    before = all_bytes(out)
    with pytest.raises(InputError, match="already holds different shards"):
        write_shards(items()[:10], out, 4, "src")
    with pytest.raises(InputError, match="already holds different shards"):
        write_shards(items(), out, 2, "src")
    assert all_bytes(out) == before
    manifest = write_shards(items(), out, 2, "src", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "rejects.jsonl",
        "shard-00000-of-00002.jsonl",
        "shard-00001-of-00002.jsonl",
    ]
    assert read_manifest(out) == manifest


def test_non_empty_foreign_dir_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "s"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        write_shards(items(), out, 2, "src")
    write_shards(items(), out, 2, "src", overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"  # overwrite only replaces our own files
    assert is_shard_dir(out)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        write_shards(items(), tmp_path / "file", 2, "src")


def test_empty_existing_dir_is_fine(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    write_shards(items(), tmp_path / "s", 2, "src")
    assert is_shard_dir(tmp_path / "s")


# -- tamper detection -------------------------------------------------------------


def test_modified_shard_is_detected(tmp_path: Path) -> None:
    out = tmp_path / "s"
    manifest = write_shards(items(), out, 4, "src")
    index = next(info.index for info in manifest.shards if info.count)
    path = out / manifest.shards[index].file
    content = path.read_bytes()
    path.write_bytes(content.replace(b"trace", b"TRACE", 1))
    with pytest.raises(InputError, match=rf"shard {index} of .* was modified after sharding: sha256"):
        iter_shard(out, index)
    with pytest.raises(InputError, match="modified after sharding"):
        list(iter_shard_dir(out))
    # an edited shard is no longer an identical earlier output
    with pytest.raises(InputError, match="already holds different shards"):
        write_shards(items(), out, 4, "src")
    path.unlink()
    with pytest.raises(InputError, match="missing"):
        iter_shard(out, index)


def test_modified_rejects_and_manifest_are_detected(tmp_path: Path) -> None:
    out = tmp_path / "s"
    write_shards(items(), out, 4, "src")
    with open(out / "rejects.jsonl", "ab") as handle:
        handle.write(b'{"origin": "x", "reason": "y"}\n')
    with pytest.raises(InputError, match="rejects file .* was modified"):
        list(iter_rejects(out))
    data = json.loads((out / "manifest.json").read_text())
    data["total_count"] += 1
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="invalid shard manifest"):
        read_manifest(out)
    assert not is_shard_dir(out)
    data["total_count"] -= 1
    data["surprise"] = 1
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="invalid shard manifest"):
        read_manifest(out)
    with pytest.raises(InputError, match="not a shard directory"):
        read_manifest(tmp_path)


# -- end to end --------------------------------------------------------------------


def test_end_to_end_from_jsonl(tmp_path: Path) -> None:
    rows = []
    for i in range(10):
        rows.append(
            {
                "uuid": f"id{i}",
                "problem": f"p{i}",
                "generations": [f"g{i}a", f"g{i}b"],
                "correctness_math_verify": [True, i % 2 == 0],
                "finish_reasons": ["stop", "stop"],
                "is_reasoning_complete": [True, True],
            }
        )
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    selector = TraceSelector(Selection())
    manifest = write_shards(selector(iter_rows(src)), tmp_path / "out", 3, f"{src} default selection")
    assert manifest.total_count == 15 and manifest.rejects_count == 1
    assert selector.stats.not_selected == {"incorrect": 5}
    assert sorted(t.trace_id for _, t in iter_shard_dir(tmp_path / "out")) == sorted(
        [f"id{i}:0" for i in range(10)] + [f"id{i}:1" for i in range(0, 10, 2)]
    )


# -- jsonl helpers -----------------------------------------------------------------


def test_append_and_iter_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.jsonl"
    assert append_records(path, [make_trace("a"), {"k": "ü", "n": 1}]) == 2
    assert append_records(path, [Reject(origin="o", reason="r")]) == 1
    records = list(iter_jsonl(path))
    assert records[0]["trace_id"] == "a:0"
    assert records[1] == {"k": "ü", "n": 1}
    assert records[2]["reason"] == "r"
    assert path.read_bytes().count(b"\n") == 3


def test_appender_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with JsonlAppender(path) as out:
        out.write({"a": 1})
        out.flush()
        assert path.read_bytes() == b'{"a": 1}\n'
        out.write({"a": 2})
    assert out.closed and out.count == 2
    assert list(iter_jsonl(path)) == [{"a": 1}, {"a": 2}]


def test_repair_tail_after_partial_write(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    append_records(path, [{"a": 1}, {"a": 2}])
    good = path.read_bytes()
    with open(path, "ab") as handle:  # simulate SIGKILL in the middle of a write
        handle.write(b'{"a": 3, "text": "half a rec')
    assert list(iter_jsonl(path)) == [{"a": 1}, {"a": 2}]  # torn tail is skipped when reading
    assert repair_tail(path) == len(b'{"a": 3, "text": "half a rec')
    assert path.read_bytes() == good
    assert repair_tail(path) == 0
    assert repair_tail(tmp_path / "missing.jsonl") == 0
    # a file that is one partial line only
    lone = tmp_path / "lone.jsonl"
    lone.write_bytes(b'{"x"')
    assert repair_tail(lone) == 4 and lone.read_bytes() == b""
    # a long partial line crossing the read chunk size
    with open(path, "ab") as handle:
        handle.write(b"x" * 200_000)
    assert repair_tail(path) == 200_000 and path.read_bytes() == good


def test_appender_repairs_torn_tail_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    append_records(path, [{"a": 1}])
    with open(path, "ab") as handle:
        handle.write(b'{"a": ')
    with JsonlAppender(path) as out:
        assert out.repaired_bytes == 6
        out.write({"a": 2})
    assert list(iter_jsonl(path)) == [{"a": 1}, {"a": 2}]


def test_iter_jsonl_raises_on_corrupt_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"a": 1}\n{corrupt\n{"a": 2}\n')
    with pytest.raises(JsonlCorruptError, match=":2:"):
        list(iter_jsonl(path))
    path.write_bytes(b'{"a": 1}\n[1]\n')
    with pytest.raises(JsonlCorruptError, match="not a JSON object"):
        list(iter_jsonl(path))
    path.write_bytes(b'{"a": 1}\n{"a": 2}')  # complete object without final newline is kept
    assert list(iter_jsonl(path)) == [{"a": 1}, {"a": 2}]


def test_lone_surrogate_is_written_as_escape(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    append_records(path, [{"t": "a\ud835b"}, Reject(origin="bad\udc80name", reason="r")])
    assert b"\\ud835" in path.read_bytes() and b"\\udc80" in path.read_bytes()
    assert [r.get("t", r.get("origin")) for r in iter_jsonl(path)] == ["a\ud835b", "bad\udc80name"]


def test_atomic_writes(tmp_path: Path) -> None:
    path = tmp_path / "d" / "x.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"b": 1, "a": [1, 2]}
    assert path.read_text().endswith("\n")
    atomic_write_text(path, "replaced")
    assert path.read_text() == "replaced"
    assert os.listdir(path.parent) == ["x.json"]  # no temp files left behind
    atomic_write_json(tmp_path / "m.json", make_trace("z"))  # pydantic models too
    assert json.loads((tmp_path / "m.json").read_text())["trace_id"] == "z:0"

"""`splitreason shard`, and annotating shards (a shard directory, or --num-shards/--shard-index).

However the input is split, the annotations are the same as annotating it in one go.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import openr1_record, reasoning_trace
from tests.helpers import annotations, assert_one_clean_error, cli_command, cli_env, ok, read_jsonl, run_cli


def essentials(records: list[dict]) -> list[dict]:
    """Annotation records, sorted by trace id: everything in them must agree."""
    return sorted(records, key=lambda record: record["trace_id"])


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> dict[str, Path]:
    """An input with good, bad and not-selected generations; its shard directory; the one-go run."""
    tmp = tmp_path_factory.mktemp("shards")
    rows: list = []
    for i in range(24):
        generations = [reasoning_trace(i * 3 + g, 5) for g in range(1 + i % 3)]
        row = openr1_record(f"r{i:03d}", generations)
        if i % 3 == 2:
            row["correctness_math_verify"][-1] = False  # not selected by default
        rows.append(row)
    rows.insert(5, "{not json at all")
    rows.insert(9, openr1_record("tagged", ["has a <bigmodel> tag already"]))
    rows.insert(12, openr1_record("empty", [""]))
    source = tmp / "input.jsonl"
    source.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
                      encoding="utf-8")
    shard_dir = tmp / "shards"
    result = ok(run_cli("shard", source, "-o", shard_dir, "--shards", "3"))
    single = tmp / "single"
    ok(run_cli("annotate", source, "-o", single, "--no-progress"))
    return {"tmp": tmp, "source": source, "shard_dir": shard_dir, "single": single,
            "shard_stderr": result.stderr}  # type: ignore[dict-item]


def test_shard_directory_layout(sharded) -> None:
    shard_dir, single = sharded["shard_dir"], sharded["single"]
    manifest = json.loads((shard_dir / "manifest.json").read_text())
    expected_ids = {record["trace_id"] for record in annotations(single)}
    assert manifest["num_shards"] == 3 and manifest["total_count"] == len(expected_ids) > 20
    ids = [trace_id for info in manifest["shards"] for trace_id in info["trace_ids"]]
    assert sorted(ids) == sorted(expected_ids)
    for info in manifest["shards"]:
        assert info["count"] > 0
        assert [t["trace_id"] for t in read_jsonl(shard_dir / info["file"])] == info["trace_ids"]
    assert manifest["rejects_by_reason"] == {"contains_tag": 1, "empty_generation": 1, "invalid_json": 1}
    assert f"wrote {manifest['total_count']} traces into 3 shards" in sharded["shard_stderr"]
    assert "3 rejects" in sharded["shard_stderr"]

    # Sharding the same input again is a no-op; a different one is refused without --overwrite.
    before = {p.name: p.read_bytes() for p in shard_dir.iterdir()}
    ok(run_cli("shard", sharded["source"], "-o", shard_dir, "--shards", "3"))
    assert {p.name: p.read_bytes() for p in shard_dir.iterdir()} == before
    refused = run_cli("shard", sharded["source"], "-o", shard_dir, "--shards", "2")
    assert_one_clean_error(refused, "already holds different shards")
    assert {p.name: p.read_bytes() for p in shard_dir.iterdir()} == before


def test_annotating_the_shard_directory_equals_annotating_the_input(sharded) -> None:
    out = sharded["tmp"] / "from-shards"
    ok(run_cli("annotate", sharded["shard_dir"], "-o", out, "--no-progress"))
    assert sorted(p.name for p in (out / "annotations").glob("*.jsonl")) == \
        [f"shard-0000{i}-of-00003.jsonl" for i in range(3)]
    assert essentials(annotations(out)) == essentials(annotations(sharded["single"]))
    key = lambda reject: json.dumps(reject, sort_keys=True)  # noqa: E731
    assert sorted(map(key, read_jsonl(out / "rejects.jsonl"))) == \
        sorted(map(key, read_jsonl(sharded["single"] / "rejects.jsonl")))
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["config"]["num_shards"] == 3
    assert all((out / "annotations" / f"shard-0000{i}-of-00003.done.json").exists() for i in range(3))


@pytest.mark.slow
def test_shard_index_runs_merged_equal_the_single_run(sharded) -> None:
    tmp, source = sharded["tmp"], sharded["source"]
    outs = [tmp / f"part-{i}" for i in range(3)]
    # Three "machines" at once, each on its own shard of the same input.
    processes = [subprocess.Popen(cli_command("annotate", source, "-o", out, "--num-shards", "3", "--shard-index",
                                              str(i), "--no-progress"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
                 for i, out in enumerate(outs)]
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0 and "Traceback" not in stderr, stderr

    merged = tmp / "merged"
    (merged / "annotations").mkdir(parents=True)
    seen_rejects: list[dict] = []
    for i, out in enumerate(outs):
        files = sorted(p.name for p in (out / "annotations").glob("*.jsonl"))
        assert files == [f"shard-0000{i}-of-00003.jsonl"]  # each machine writes only its own shard
        shutil.copy(out / "annotations" / files[0], merged / "annotations" / files[0])
        if (out / "rejects.jsonl").exists():
            seen_rejects += read_jsonl(out / "rejects.jsonl")
    records = annotations(merged)
    ids = [record["trace_id"] for record in records]
    assert len(ids) == len(set(ids))
    assert essentials(records) == essentials(annotations(sharded["single"]))
    # Each input reject is owned by exactly one shard.
    key = lambda reject: json.dumps(reject, sort_keys=True)  # noqa: E731
    assert sorted(map(key, seen_rejects)) == sorted(map(key, read_jsonl(sharded["single"] / "rejects.jsonl")))

    # The merged directory is a normal run directory for the other commands.
    stats = json.loads(ok(run_cli("stats", merged, "--json")).stdout)
    assert stats["traces"] == len(records)

    # Resuming one machine's OUT with the same settings does nothing.
    before = (outs[1] / "annotations" / "shard-00001-of-00003.jsonl").read_bytes()
    ok(run_cli("annotate", source, "-o", outs[1], "--num-shards", "3", "--shard-index", "1", "--no-progress"))
    assert (outs[1] / "annotations" / "shard-00001-of-00003.jsonl").read_bytes() == before


def test_limit_applies_to_a_shard_directory(sharded) -> None:
    out = sharded["tmp"] / "limited"
    ok(run_cli("annotate", sharded["shard_dir"], "-o", out, "--limit", "4", "--no-progress"))
    first = {record["trace_id"] for record in annotations(out)}
    assert len(first) == 4
    ok(run_cli("annotate", sharded["shard_dir"], "-o", out, "--no-progress", "--shard-index", "2"))
    manifest = json.loads((sharded["shard_dir"] / "manifest.json").read_text())
    ids = [record["trace_id"] for record in annotations(out)]
    assert len(ids) == len(set(ids)) and set(ids) == first | set(manifest["shards"][2]["trace_ids"])


def test_bad_shard_requests_are_refused(sharded) -> None:
    tmp, source, shard_dir = sharded["tmp"], sharded["source"], sharded["shard_dir"]
    out = tmp / "bad"
    result = run_cli("annotate", source, "-o", out, "--num-shards", "3", "--shard-index", "5", "--no-progress")
    assert_one_clean_error(result, "--shard-index 5", "3 shards")
    assert result.returncode == 2
    assert not list((out / "annotations").glob("*.jsonl")) if out.exists() else True

    result = run_cli("annotate", shard_dir, "-o", out, "--num-shards", "4", "--no-progress")
    assert_one_clean_error(result, "shard directory of 3 shards")


def test_resume_with_different_settings_is_refused(sharded) -> None:
    single = sharded["tmp"] / "single-copy"
    shutil.copytree(sharded["single"], single)
    before = {p.name: p.read_bytes() for p in (single / "annotations").iterdir()}
    result = run_cli("annotate", sharded["source"], "-o", single, "--target-coverage", "0.2", "--no-progress")
    line = assert_one_clean_error(result, "different settings", "target_coverage", "0.15", "0.2")
    assert result.returncode == 2, line
    result = run_cli("annotate", sharded["source"], "-o", single, "--num-shards", "2", "--no-progress")
    assert_one_clean_error(result, "num_shards")
    assert result.returncode == 2
    assert {p.name: p.read_bytes() for p in (single / "annotations").iterdir()} == before


def test_a_modified_shard_file_is_refused(sharded) -> None:
    copy = sharded["tmp"] / "tampered"
    shutil.copytree(sharded["shard_dir"], copy)
    path = copy / "shard-00001-of-00003.jsonl"
    path.write_bytes(path.read_bytes().replace(b"Okay", b"OKAY", 1))
    out = sharded["tmp"] / "tampered-out"
    result = run_cli("annotate", copy, "-o", out, "--shard-index", "1", "--no-progress")
    assert_one_clean_error(result, "modified after sharding")

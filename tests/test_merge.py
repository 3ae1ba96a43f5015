"""`splitreason merge`: shard runs made apart (one machine each) combined into one run directory.

The parts are real `annotate --num-shards 3 --shard-index I` runs (made in-process through
`run_annotate`, the code the CLI calls); every merge goes through the real CLI, so what is
checked is what a user sees: exit code, one error line, the files in OUT.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from splitreason.io.readers import iter_rows
from splitreason.io.selection import Selection, select_traces
from splitreason.io.shards import write_shards
from splitreason.merge import MergeError, merge_runs
from tests.builders import SHARDS, annotate, files, input_rows, shard_file, write_rows
from tests.judge_server import case_rows
from tests.helpers import assert_one_clean_error, ok, run_cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The input, one local run of every shard, and each shard annotated apart (raw input and shard dir)."""
    tmp = tmp_path_factory.mktemp("merge")
    source = write_rows(tmp / "input.jsonl", input_rows())
    found: dict[str, Path] = {"tmp": tmp, "source": source}
    annotate(source, tmp / "single", num_shards=SHARDS)
    found["single"] = tmp / "single"
    for i in range(SHARDS):
        annotate(source, tmp / f"part-{i}", num_shards=SHARDS, shard_index=i)
        found[f"part-{i}"] = tmp / f"part-{i}"
    ok(run_cli("shard", source, "-o", tmp / "shards", "--shards", str(SHARDS)))
    found["shards"] = tmp / "shards"
    for i in range(SHARDS):
        annotate(tmp / "shards", tmp / f"sd-part-{i}", shard_index=i)
        found[f"sd-part-{i}"] = tmp / f"sd-part-{i}"
    return found


def parts(runs, prefix: str = "part") -> list[Path]:
    return [runs[f"{prefix}-{i}"] for i in range(SHARDS)]


def copy_part(runs, name: str, tmp_path: Path) -> Path:
    target = tmp_path / f"copy-of-{name}"
    shutil.copytree(runs[name], target)
    return target


def reseal(run: Path, shard: int) -> None:
    """Rewrite a shard's done.json to match its (edited) file, as if annotate had written it so."""
    path = run / "annotations" / f"shard-{shard:05d}-of-{SHARDS:05d}.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    status = Counter(json.loads(line)["status"] for line in lines)
    done = {"file": path.name, "count": len(lines), "status": dict(status),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    path.with_name(path.name.replace(".jsonl", ".done.json")).write_text(json.dumps(done, indent=2) + "\n")


def refused(*paths: Path, out: Path, **options) -> str:
    """The merge's error message (the library call under `splitreason merge`; the CLI prints it
    as its one error line, see the tests that run it), after checking nothing was written."""
    existed = out.exists()
    with pytest.raises(MergeError) as raised:
        merge_runs(list(paths), out, **options)
    message = str(raised.value)
    assert "\n" not in message, message
    assert out.exists() == existed
    return message


@pytest.mark.slow
def test_merged_parts_equal_one_local_run_of_every_shard(runs, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = ok(run_cli("merge", *parts(runs), "-o", out))
    assert "merged 3 new shards" in result.stderr and "holds 3 of 3 shards" in result.stderr
    assert "not a shard directory" in result.stderr  # raw input: says what it could not check

    single = runs["single"]
    # Byte for byte: the shard files, their done.json, and rejects.jsonl in input order.
    assert files(out) == files(single)
    assert (out / "rejects.jsonl").read_bytes().count(b"\n") == 5  # invalid JSON, 3 tagged/empty, 1 duplicate
    merged_run, single_run = (json.loads((run / "run.json").read_text()) for run in (out, single))
    assert merged_run["config"] == single_run["config"]
    assert merged_run["totals"] == single_run["totals"] and merged_run["state"] == "complete"
    assert [invocation["shards"] for invocation in merged_run["invocations"]] == [[0], [1], [2]]

    # The other commands see the same run.
    stats = [json.loads(ok(run_cli("stats", run, "--json")).stdout) for run in (out, single)]
    assert stats[0] == stats[1] and stats[0]["traces"] == sum(len(shard_file(out, i).read_bytes().splitlines())
                                                              for i in range(SHARDS))
    for run in (out, single):
        ok(run_cli("export", run, "-o", tmp_path / f"{run.name}.jsonl", "--include-review"))
    assert (tmp_path / "merged.jsonl").read_bytes() == (tmp_path / "single.jsonl").read_bytes()

    # Resuming the merged OUT with the local command of every shard finds nothing to do.
    before = files(out)
    counts = annotate(runs["source"], out, num_shards=SHARDS)
    assert counts.annotated == 0 and counts.already_done == stats[0]["traces"]
    assert files(out) == before

    # Merging the same parts again is a no-op.
    again = ok(run_cli("merge", *parts(runs), "-o", out))
    assert "nothing new" in again.stderr
    assert files(out) == before


def test_shard_directory_parts_are_checked_against_the_manifest(runs, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = ok(run_cli("merge", *parts(runs, "sd-part"), "-o", out))
    assert "checked against the shard manifest: every trace annotated exactly once" in result.stderr
    local = tmp_path / "local"
    annotate(runs["shards"], local)
    assert files(out) == files(local)


def test_a_missing_shard_is_refused_and_allow_incomplete_lists_it(runs, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = run_cli("merge", runs["part-0"], runs["part-2"], "-o", out)
    assert_one_clean_error(result, "shard 1 of 3 is missing", "finished shards: 0, 2")
    assert result.returncode == 2 and not out.exists()

    partial = ok(run_cli("merge", runs["part-0"], runs["part-2"], "-o", out, "--allow-incomplete"))
    assert "1 of 3 shards missing (1)" in partial.stderr
    assert json.loads((out / "run.json").read_text())["state"] == "incomplete"
    merge_runs([runs["part-1"]], out)  # the last shard, when it comes
    assert files(out) == files(runs["single"])
    assert json.loads((out / "run.json").read_text())["state"] == "complete"


def test_an_unfinished_shard_is_not_merged(runs, tmp_path: Path) -> None:
    stopped = copy_part(runs, "part-1", tmp_path)
    (stopped / "annotations" / f"shard-00001-of-{SHARDS:05d}.done.json").unlink()
    message = refused(runs["part-0"], stopped, runs["part-2"], out=tmp_path / "out")
    assert "shard 1 of 3 is missing" in message


def test_a_shard_in_two_parts_is_refused(runs, tmp_path: Path) -> None:
    twin = copy_part(runs, "part-1", tmp_path)
    message = refused(*parts(runs), twin, out=tmp_path / "out")
    assert "shard 1 of 3 is in two parts" in message and str(runs["part-1"]) in message and str(twin) in message


def test_an_edited_shard_file_is_refused(runs, tmp_path: Path) -> None:
    edited = copy_part(runs, "part-2", tmp_path)
    path = shard_file(edited, 2)
    path.write_bytes(path.read_bytes().replace(b'"accepted"', b'"rejected"', 1))
    result = run_cli("merge", runs["part-0"], runs["part-1"], edited, "-o", tmp_path / "out")
    assert_one_clean_error(result, str(edited), "shard-00002-of-00003.jsonl does not match its done.json")

    cut = copy_part(runs, "part-0", tmp_path)
    shard_file(cut, 0).write_bytes(b"".join(shard_file(cut, 0).read_bytes().splitlines(keepends=True)[:-1]))
    message = refused(cut, runs["part-1"], runs["part-2"], out=tmp_path / "out2")
    assert "shard-00000-of-00003.jsonl does not match its done.json" in message and "cut short" in message


def test_a_trace_twice_is_refused(runs, tmp_path: Path) -> None:
    doubled = copy_part(runs, "part-1", tmp_path)
    path = shard_file(doubled, 1)
    first = path.read_bytes().splitlines(keepends=True)[0]
    path.write_bytes(path.read_bytes() + first)
    reseal(doubled, 1)  # a consistent file, done.json and all: only the ids give it away
    trace_id = json.loads(first)["trace_id"]
    message = refused(runs["part-0"], doubled, runs["part-2"], out=tmp_path / "out")
    assert f"trace {trace_id} appears twice" in message and "shard-00001-of-00003" in message

    # A trace moved into another shard's file is also in the wrong place.
    moved = copy_part(runs, "part-0", tmp_path)
    shard_file(moved, 0).write_bytes(shard_file(moved, 0).read_bytes() + first)
    reseal(moved, 0)
    message = refused(moved, runs["part-1"], runs["part-2"], out=tmp_path / "out2")
    assert f"trace {trace_id}" in message and "belongs to shard 1, not 0" in message


def test_parts_made_with_other_settings_are_refused(runs, tmp_path: Path) -> None:
    other = tmp_path / "other-2"
    annotate(runs["source"], other, num_shards=SHARDS, shard_index=2, target_coverage=0.2)
    result = run_cli("merge", runs["part-0"], runs["part-1"], other, "-o", tmp_path / "out")
    assert_one_clean_error(result, "different settings", "target_coverage: 0.15 vs 0.2", str(other))

    other_split = tmp_path / "other-split"
    annotate(runs["source"], other_split, num_shards=4, shard_index=2)
    message = refused(runs["part-0"], other_split, out=tmp_path / "out")
    assert "different settings" in message and "num_shards: 3 vs 4" in message

    speed = tmp_path / "faster-2"  # speed settings may differ between machines
    annotate(runs["source"], speed, num_shards=SHARDS, shard_index=2, concurrency=3)
    assert merge_runs([runs["part-0"], runs["part-1"], speed], tmp_path / "ok").complete


def test_traces_against_the_manifest_nothing_missing_nothing_outside(runs, tmp_path: Path) -> None:
    # A shard run missing one of its manifest's traces (file and done.json consistent otherwise).
    short = copy_part(runs, "sd-part-1", tmp_path)
    lines = shard_file(short, 1).read_bytes().splitlines(keepends=True)
    shard_file(short, 1).write_bytes(b"".join(lines[1:]))
    reseal(short, 1)
    message = refused(runs["sd-part-0"], short, runs["sd-part-2"], out=tmp_path / "out")
    assert "shard 1: 1 traces of the manifest are not annotated" in message
    assert f"first: {json.loads(lines[0])['trace_id']}" in message

    # Raw-input runs checked against the manifest of a smaller input: traces outside it.
    small = write_rows(tmp_path / "small.jsonl", input_rows()[:10])
    write_shards(select_traces(iter_rows(str(small)), Selection()), tmp_path / "small-shards", SHARDS, "small")
    result = run_cli("merge", *parts(runs), "-o", tmp_path / "out2", "--manifest", tmp_path / "small-shards")
    assert_one_clean_error(result, "is not in the shard manifest")
    assert result.returncode == 2
    fits = merge_runs(parts(runs), tmp_path / "out3", manifest_path=runs["shards"])
    assert any("checked against the shard manifest" in note for note in fits.notes)


def test_merging_into_an_out_that_holds_other_annotations(runs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    merge_runs(parts(runs), out)
    changed = copy_part(runs, "part-0", tmp_path)
    path = shard_file(changed, 0)
    path.write_bytes(path.read_bytes().replace(b'"accepted"', b'"review"', 1))
    reseal(changed, 0)
    before = files(out)
    result = run_cli("merge", changed, "-o", out)
    assert_one_clean_error(result, f"{out} already holds shard 0, and it differs from {changed}'s",
                           "nothing is overwritten")
    assert files(out) == before

    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    assert "is not empty and holds no run.json" in refused(*parts(runs), out=stray)


def test_a_merge_stopped_halfway_is_finished_by_running_it_again(runs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    merge_runs(parts(runs), out)
    # What a kill between copying shard 1 and sealing it leaves: run.json says "merging".
    (out / "annotations" / f"shard-00001-of-{SHARDS:05d}.done.json").unlink()
    (out / "rejects.jsonl").unlink()
    manifest = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**manifest, "state": "merging"}))
    merge_runs(parts(runs), out)
    assert files(out) == files(runs["single"])
    merged = json.loads((out / "run.json").read_text())
    assert merged["state"] == "complete" and len(merged["invocations"]) == 3  # none twice


def test_a_stopped_merge_marked_running_again_is_still_finished(runs, tmp_path: Path) -> None:
    """`annotate --engine ray` marks OUT "running" before its merge: a merge it stopped after
    sealing the shards but before rejects.jsonl and the totals must still be finished."""
    out = tmp_path / "out"
    merge_runs(parts(runs), out)
    (out / "rejects.jsonl").unlink()
    manifest = json.loads((out / "run.json").read_text())
    del manifest["totals"]
    (out / "run.json").write_text(json.dumps({**manifest, "state": "running"}))
    merge_runs(parts(runs), out)
    assert files(out) == files(runs["single"])
    merged = json.loads((out / "run.json").read_text())
    assert merged["state"] == "complete" and "totals" in merged


def test_a_reviewed_out_takes_new_shards_and_keeps_its_reviews(runs, tmp_path: Path) -> None:
    from splitreason.review.store import REVIEW_DB_NAME, ReviewStore
    from splitreason.schemas.review import Review

    out = tmp_path / "out"
    merge_runs([runs["part-0"], runs["part-1"]], out, allow_incomplete=True)
    trace_id = json.loads(shard_file(out, 0).read_bytes().splitlines()[0])["trace_id"]
    with ReviewStore.for_run(out) as store:
        store.save(Review(trace_id=trace_id, reviewer="ann", origin="ui", decision="rejected",
                          reviewed_at="2026-01-01T00:00:00Z"))
    merge_runs([runs["part-2"]], out)
    annotations = {name: data for name, data in files(out).items() if not name.startswith(REVIEW_DB_NAME)}
    assert annotations == files(runs["single"])
    with ReviewStore.for_run(out) as store:
        assert store.reviewed_ids() == {trace_id}


def test_a_part_with_human_reviews_is_refused(runs, tmp_path: Path) -> None:
    from splitreason.review.store import ReviewStore
    from splitreason.schemas.review import Review

    reviewed = copy_part(runs, "part-0", tmp_path)
    trace_id = json.loads(shard_file(reviewed, 0).read_bytes().splitlines()[0])["trace_id"]
    with ReviewStore.for_run(reviewed) as store:
        store.save(Review(trace_id=trace_id, reviewer="ann", origin="ui", decision="rejected",
                          reviewed_at="2026-01-01T00:00:00Z"))
    message = refused(reviewed, runs["part-1"], runs["part-2"], out=tmp_path / "out")
    assert str(reviewed) in message and "holds human reviews" in message


def test_judge_caches_are_merged_and_a_resume_asks_nothing(tmp_path: Path, judge_server, write_jsonl) -> None:
    server = judge_server()
    source = write_jsonl("cases.jsonl", case_rows([f"c{i}" for i in range(9)], paragraphs=4))
    judge = {"judge": ["openai:scripted-judge"], "base_url": server.base_url}
    for i in range(SHARDS):
        annotate(source, tmp_path / f"p{i}", num_shards=SHARDS, shard_index=i, **judge)
    asked = len(server.log)
    assert asked == 9

    out = tmp_path / "out"
    assert merge_runs([tmp_path / f"p{i}" for i in range(SHARDS)], out).cache_rows == 9

    def keys(run: Path) -> set[str]:
        db = sqlite3.connect(run / "cache.sqlite")
        try:
            return {key for (key,) in db.execute("SELECT key FROM answers")}
        finally:
            db.close()

    assert keys(out) == set().union(*(keys(tmp_path / f"p{i}") for i in range(SHARDS)))
    # A shard deleted from the merged OUT is annotated again from the merged cache: no request.
    shard_file(out, 1).unlink()
    counts = annotate(source, out, num_shards=SHARDS, **judge)
    assert counts.annotated == len(shard_file(tmp_path / "p1", 1).read_bytes().splitlines()) > 0
    assert counts.requests == 0 and len(server.log) == asked
    assert shard_file(out, 1).read_bytes() == shard_file(tmp_path / "p1", 1).read_bytes()

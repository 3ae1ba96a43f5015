"""`splitreason.load_run(OUT)`: a real run (curated, annotated, reviewed) as polars frames whose
columns are the documented ones and whose numbers are those the commands print."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

import splitreason
from splitreason.io.run_dir import RunDir
from splitreason.review.reconcile import reconcile_reviews
from splitreason.review.store import ReviewStore
from splitreason.schemas.review import Review, ReviewedSpan
from splitreason.tables.run import FRAME_COLUMNS, RunTablesError
from tests.helpers import REPO, annotations, assert_one_clean_error, ok, read_jsonl, run_cli

SAMPLE = REPO / "splitreason" / "data" / "openr1_sample.jsonl"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def _span(trace: str, start: int, end: int) -> ReviewedSpan:
    return ReviewedSpan(start=start, end=end, text=trace[start:end])


def _review(annotation, reviewer: str, decision: str, spans, minutes: int = 0, trace_id: str | None = None) -> Review:
    return Review(trace_id=trace_id or annotation.trace_id, reviewer=reviewer, origin="ui", decision=decision,
                  spans=spans, judge_spans=[_span(annotation.trace, s.start, s.end) for s in annotation.spans],
                  judge_confidence=annotation.confidence, reviewed_at=NOW + timedelta(minutes=minutes))


@pytest.fixture(scope="module")
def reviewed_run(tmp_path_factory) -> Path:
    """The bundled sample curated (two traces excluded), annotated with most traces left in review,
    and reviewed: one accepted by two reviewers, one rejected, one redrawn, one accepted trace rejected."""
    tmp = tmp_path_factory.mktemp("load_run")
    evals = tmp / "evals.jsonl"
    evals.write_text('{"problem": "What is 1+1?", "answer": "2"}\n')
    curated, out = tmp / "curated", tmp / "out"
    ok(run_cli("curate", SAMPLE, "-o", curated, "--eval-set", evals, "--no-near-dedup", "--no-progress"))
    ok(run_cli("annotate", curated, "-o", out, "--no-progress", "--accept-threshold", "1.0"))
    records = list(RunDir(out).iter_annotations())
    in_review = [a for a in records if a.status == "review"]
    accepted = [a for a in records if a.status == "accepted"]
    assert len(in_review) >= 3 and accepted
    first, second, third = in_review[:3]
    judge_first = [_span(first.trace, s.start, s.end) for s in first.spans]
    with ReviewStore.for_run(out) as store:
        store.save(_review(first, "ana", "accepted", judge_first))
        store.save(_review(first, "ben", "accepted", judge_first[:1], minutes=1))
        store.save(_review(second, "ana", "rejected", []))
        store.save(_review(third, "cy", "accepted", [_span(third.trace, 10, 60)]))
        store.save(_review(accepted[0], "ana", "rejected", []))
    return out


@pytest.fixture(scope="module")
def run_with_rejects(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("load_run_rejects")
    source = tmp / "in.jsonl"
    source.write_text(SAMPLE.read_text(encoding="utf-8") + "{broken json\n[1, 2]\n", encoding="utf-8")
    ok(run_cli("annotate", source, "-o", tmp / "out", "--no-progress"))
    return tmp / "out"


def test_every_frame_has_the_documented_columns_and_dtypes(reviewed_run: Path, run_with_rejects: Path) -> None:
    run, other = splitreason.load_run(reviewed_run), splitreason.load_run(run_with_rejects)
    for name, documented in FRAME_COLUMNS.items():
        full = run.collect(getattr(run, name))
        if name == "rejects":
            full = other.collect(other.rejects)
        assert full.height > 0, name  # real rows, so the dtypes are those read from real files
        for frame in (full, other.collect(getattr(other, name))):  # the second may be empty: same columns
            assert {column: dtype._string_repr() for column, dtype in frame.schema.items()} == \
                {column: dtype for column, (dtype, _) in documented.items()}, name
            assert list(frame.columns) == list(documented), name
        assert all(meaning.strip() for _, meaning in documented.values())
    described = run.describe()
    assert all(column in described for documented in FRAME_COLUMNS.values() for column in documented)
    assert run.manifest["config"]["accept_threshold"] == 1.0


def test_annotations_and_spans_are_the_records(reviewed_run: Path) -> None:
    run = splitreason.load_run(reviewed_run)
    frame = run.collect(run.annotations)
    records = [record for _, _, path in RunDir(reviewed_run).shard_files() for record in read_jsonl(path)]
    assert frame["trace_id"].to_list() == [r["trace_id"] for r in records]  # file order
    for row, record in zip(frame.iter_rows(named=True), records):
        assert row["trace"] == record["trace"] and row["status"] == record["status"]
        assert row["coverage"] == record["coverage"] and row["confidence"] == record["confidence"]
        assert row["reason"] == record["status_reason"].split(":", 1)[0]
        assert row["n_spans"] == len(record["spans"]) and row["trace_chars"] == len(record["trace"])
        assert row["span_chars"] == sum(s["end"] - s["start"] for s in record["spans"])
        assert row["judges"] == [record["judge"]["name"], *(j["name"] for j in record["other_judges"])]
        assert row["prompt_tokens"] == record["usage"]["prompt_tokens"]
    spans = run.collect(run.spans)
    assert spans.height == sum(len(r["spans"]) for r in records) > 0
    text = {r["trace_id"]: r["trace"] for r in records}
    for row in spans.iter_rows(named=True):
        assert row["text"] == text[row["trace_id"]][row["start"]:row["end"]] and row["chars"] == len(row["text"])
    # Lazy: a notebook's aggregate is one query.
    by_status = run.collect(run.annotations.group_by("status").agg(pl.len(), pl.col("coverage").mean()))
    assert dict(by_status.select("status", "len").iter_rows()) == \
        {s: sum(r["status"] == s for r in records) for s in {r["status"] for r in records}}


def test_reviews_are_merged_once_and_every_command_agrees(reviewed_run: Path, tmp_path: Path) -> None:
    run = splitreason.load_run(reviewed_run)
    with ReviewStore.for_run(reviewed_run) as store:
        grouped = store.reviews_by_trace()
    assert run.collect(run.reviews).height == sum(len(v) for v in grouped.values()) == 5
    by_id = {a.trace_id: a for a in RunDir(reviewed_run).iter_annotations()}
    expected = {trace_id: reconcile_reviews(by_id[trace_id].trace, reviews) for trace_id, reviews in grouped.items()}
    frame = run.collect(run.annotations.filter(pl.col("reviewed")))
    assert set(frame["trace_id"]) == set(expected)
    for row in frame.iter_rows(named=True):
        outcome = expected[row["trace_id"]]
        assert row["review_decision"] == outcome.decision and row["review_changed"] == outcome.changed
        assert row["reviewers"] == outcome.reviewers
        assert row["review_span_chars"] == sum(s.end - s.start for s in outcome.spans)
        assert [(s["start"], s["end"]) for s in row["review_spans"]] == [(s.start, s.end) for s in outcome.spans]
    assert run.skipped_reviews == {} and run.review_warnings() == []

    # stats, export and calibrate print what the frames hold.
    data = json.loads(ok(run_cli("stats", reviewed_run, "--json")).stdout)
    everything = run.collect(run.annotations)
    assert data["review"]["reviewed"] == frame.height == 4
    assert data["review"]["decisions"] == dict(frame.group_by("review_decision", maintain_order=True)
                                               .len().iter_rows())
    assert data["review"]["waiting"] == everything.filter((pl.col("status") == "review") & ~pl.col("reviewed")).height
    assert data["status"] == dict(everything.group_by("status", maintain_order=True).len().iter_rows())
    ok(run_cli("export", reviewed_run, "-o", tmp_path / "train.jsonl"))
    exported = {row["id"] for row in read_jsonl(tmp_path / "train.jsonl")}
    kept = everything.filter(pl.when(pl.col("reviewed")).then(pl.col("review_decision") == "accepted")
                             .otherwise(pl.col("status") == "accepted"))
    assert exported == set(kept["trace_id"])
    calibration = json.loads(ok(run_cli("calibrate", reviewed_run, "--json")).stdout)
    assert calibration["reviewed"]["traces"] == 4 and calibration["reviewed"]["changed"] == frame["review_changed"].sum()


def test_rejects_and_curate_exclusions(reviewed_run: Path, run_with_rejects: Path) -> None:
    run = splitreason.load_run(run_with_rejects)
    rejects = run.collect(run.rejects)
    assert rejects.to_dicts() == [{column: record.get(column) for column in rejects.columns}
                                  for record in read_jsonl(run_with_rejects / "rejects.jsonl")]
    assert sorted(rejects["reason"]) == ["invalid_json", "not_an_object"]
    assert run.curation_dir is None and run.collect(run.exclusions).height == 0  # no curation: empty, typed
    assert run.collect(run.review_outcomes).height == 0 and run.collect(run.reviews).height == 0

    curated = splitreason.load_run(reviewed_run)
    curation = Path(curated.manifest["config"]["input"])
    assert curated.curation_dir == curation
    exclusions = curated.collect(curated.exclusions)
    assert exclusions["trace_id"].to_list() == [r["trace_id"] for r in read_jsonl(curation / "exclusions.jsonl")]
    assert exclusions["reason"].to_list() == ["incorrect", "incorrect"]  # the sample's two wrong generations
    # An explicit curation directory wins.
    assert splitreason.load_run(run_with_rejects, curation=curation).collect(
        splitreason.load_run(run_with_rejects, curation=curation).exclusions).height == 2


def test_reviews_that_apply_nowhere_are_counted_and_said(reviewed_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(reviewed_run, out)
    before = json.loads(ok(run_cli("stats", out, "--json")).stdout)
    ok(run_cli("export", out, "-o", tmp_path / "before.jsonl"))
    with ReviewStore.for_run(out) as store:
        reviewed = store.reviewed_ids()
    victim = next(a for a in RunDir(out).iter_annotations() if a.trace_id not in reviewed)
    long_text = victim.trace + "x" * 50  # reviewed against a longer version of the trace
    with ReviewStore.for_run(out) as store:
        store.save(_review(victim, "zed", "accepted", [], trace_id="not-in-this-run:0"))
        store.save(Review(trace_id=victim.trace_id, reviewer="yan", origin="ui", decision="accepted",
                          spans=[_span(long_text, len(victim.trace), len(long_text))], reviewed_at=NOW))
    run = splitreason.load_run(out)
    assert run.skipped_reviews == {"not_in_run": 1, "spans_do_not_fit": 1}
    states = dict(run.collect(run.review_outcomes.select("trace_id", "state")).iter_rows())
    assert states["not-in-this-run:0"] == "not_in_run" and states[victim.trace_id] == "spans_do_not_fit"

    stats = ok(run_cli("stats", out, "--json"))
    assert json.loads(stats.stdout) == before  # applied nowhere
    assert "1 reviewed trace(s) not among this run's annotations" in stats.stderr
    assert "1 reviewed trace(s) with spans that do not fit" in stats.stderr
    export = ok(run_cli("export", out, "-o", tmp_path / "after.jsonl"))
    assert "do not fit" in export.stderr
    assert (tmp_path / "after.jsonl").read_bytes() == (tmp_path / "before.jsonl").read_bytes()


def test_an_out_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RunTablesError, match="does not exist"):
        splitreason.load_run(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunTablesError, match="is a file, not a run directory"):
        splitreason.load_run(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunTablesError, match=r"holds no annotations .*not an annotation run") as caught:
        splitreason.load_run(tmp_path / "empty")
    assert "\n" not in str(caught.value)
    assert_one_clean_error(run_cli("stats", tmp_path / "empty"), "not an annotation run")


def test_torn_and_corrupt_files(run_with_rejects: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(run_with_rejects, out)
    shard = RunDir(out).shard_files()[0][2]
    count = len(annotations(out))
    with open(shard, "a", encoding="utf-8") as handle:
        handle.write('{"trace_id": "half a line')  # a run writing it, or one that crashed mid-line
    run = splitreason.load_run(out)
    assert run.collect(run.annotations).height == count
    with open(shard, "a", encoding="utf-8") as handle:
        handle.write('\n{"trace_id": "x"}\n')  # now a corrupt line in the middle
    with pytest.raises(RunTablesError, match="cannot read the files of run") as caught:
        run.collect(run.annotations)
    assert "\n" not in str(caught.value)
    assert_one_clean_error(run_cli("stats", out, "--json"), "cannot read", "shard-00000-of-00001.jsonl")


def test_blocks_are_whole_lines_and_leave_a_torn_tail_out(tmp_path: Path) -> None:
    """The commands' bounded memory rests on this: blocks of about block_bytes, each ending at a
    line end, together every complete line once (a line longer than a block is one block)."""
    from splitreason.tables.run import jsonl_blocks

    path = tmp_path / "a.jsonl"
    lines = [json.dumps({"i": i, "pad": "x" * (i % 7) * 30}) + "\n" for i in range(300)]
    lines.insert(150, json.dumps({"i": -1, "pad": "y" * 5000}) + "\n")  # longer than a block
    path.write_text("".join(lines) + '{"torn": ', encoding="utf-8")
    blocks = [block.getvalue() for block in jsonl_blocks(path, block_bytes=1024)]
    assert b"".join(blocks) == "".join(lines).encode()
    assert all(block.endswith(b"\n") for block in blocks)
    assert all(len(block) <= 1024 + 400 for block in blocks if b'"y' not in block)
    assert len(blocks) > 20


def test_the_readme_example_runs(reviewed_run: Path, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")].replace('load_run("out")', f'load_run({str(reviewed_run)!r})')
    namespace: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), namespace)
    ok(run_cli("export", reviewed_run, "-o", tmp_path / "train.jsonl"))
    assert namespace["exported"].collect().height == len(read_jsonl(tmp_path / "train.jsonl"))

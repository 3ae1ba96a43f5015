"""The model-grounded judges (`surprisal:`, `divergence:`) on two tiny models made to disagree on
planted steps (tests/grounded_fixtures.py): their spans find the planted steps, fill the target
coverage, and go through `annotate` (resume, cache, export) like any judge's."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from tests.grounded_fixtures import planted_share, planted_traces
from tests.helpers import annotations, assert_one_clean_error, ok, openr1_record, read_jsonl, run_cli

pytestmark = pytest.mark.slow


def _judge(kind: str, pair, **settings):
    from splitreason.judges.divergence import DivergenceJudge
    from splitreason.judges.grounded import GroundedSettings
    from splitreason.judges.surprisal import SurprisalJudge

    if kind == "surprisal":
        return SurprisalJudge("surprisal", str(settings.pop("small", pair.small)), GroundedSettings(**settings))
    return DivergenceJudge("divergence", str(pair.small), str(pair.large), GroundedSettings(**settings))


def _run(judge, traces, target):
    from splitreason.schemas import Trace

    async def go():
        await judge.start()
        try:
            return await asyncio.gather(*[
                judge.judge(Trace(trace_id=str(i), uuid=str(i), generation_index=0, problem=problem, text=text), target)
                for i, (problem, text, _) in enumerate(traces)])
        finally:
            await judge.close()

    return asyncio.run(go())


def _chars(ranges):
    return {c for start, end in ranges for c in range(start, end)}


def _iou(traces, verdicts) -> float:
    inter = union = 0
    for (_, _, planted), verdict in zip(traces, verdicts):
        got = _chars((e.start, e.start + len(e.text)) for e in verdict.excerpts)
        want = _chars(planted)
        inter += len(got & want)
        union += len(got | want)
    return inter / union


@pytest.mark.parametrize("kind,settings", [("surprisal", {}), ("divergence", {}), ("divergence", {"divergence": "kl"})])
def test_spans_cover_the_planted_steps(grounded_pair, kind, settings):
    traces = planted_traces(16, seed=7)
    judge = _judge(kind, grounded_pair, batch_size=4, **settings)
    verdicts = _run(judge, traces, planted_share(traces))
    assert _iou(traces, verdicts) >= 0.8
    excerpt = verdicts[0].excerpts[0]
    assert excerpt.signal is not None and excerpt.signal > 0
    assert "nats" in excerpt.reason
    stats = judge.batch_stats.as_dict()
    assert stats["traces"] == 16 and stats["max_batch_size"] > 1  # concurrent traces share forward passes
    assert judge.info.backend == kind and judge.info.params["fingerprints"]


@pytest.mark.parametrize("target", [0.15, 0.3])
def test_coverage_within_two_points_of_the_target(grounded_pair, target):
    traces = planted_traces(6, seed=3, sentences=30)
    for verdict, (_, text, _) in zip(_run(_judge("divergence", grounded_pair), traces, target), traces):
        covered = sum(len(e.text) for e in verdict.excerpts)
        assert abs(covered / len(text) - target) <= 0.02


def test_a_trace_longer_than_the_context_is_read_in_windows(grounded_pair):
    traces = planted_traces(4, seed=11)
    judge = _judge("surprisal", grounded_pair, small=grounded_pair.short_context)
    verdicts = _run(judge, traces, planted_share(traces))
    assert judge.batch_stats.windows > len(traces)  # 128-token context, ~140-token sequences
    assert _iou(traces, verdicts) >= 0.8


def _input(path, traces):
    rows = [openr1_record(f"u{i}", [text], problem=problem) for i, (problem, text, _) in enumerate(traces)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_through_annotate_resume_cache_and_export(grounded_pair, tmp_path):
    traces = planted_traces(6, seed=21)
    data = _input(tmp_path / "in.jsonl", traces)
    judge = f"divergence:{grounded_pair.small},{grounded_pair.large}"
    out = tmp_path / "run"
    target = f"{planted_share(traces):.3f}"
    common = ("--judge", judge, "--target-coverage", target, "--divergence", "kl", "--batch-size", "4", "--no-progress")
    ok(run_cli("annotate", data, "-o", out, "--limit", "3", *common, timeout=300))
    ok(run_cli("annotate", data, "-o", out, *common, timeout=300))  # resumes: the first 3 stay, 3 are added
    records = annotations(out)
    assert len(records) == 6 and {r["status"] for r in records} == {"accepted"}
    span = records[0]["spans"][0]
    assert span["signal"] > 0 and "KL" in span["reason"] and span["score"] == 1.0
    assert records[0]["judge"]["backend"] == "divergence" and records[0]["judge"]["params"]["divergence"] == "kl"
    manifest = json.loads((out / "run.json").read_text())
    assert [inv["annotated"] for inv in manifest["invocations"]] == [3, 3]
    assert manifest["invocations"][0]["batching"][judge]["forward_passes"] >= 1

    # The cache answers a run with the same models and settings without reading the traces again.
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(out / "cache.sqlite", again / "cache.sqlite")
    ok(run_cli("annotate", data, "-o", again, *common, timeout=300))
    manifest = json.loads((again / "run.json").read_text())
    assert manifest["invocations"][0]["cache_hits"] == 6
    assert [r["spans"] for r in annotations(again)] == [r["spans"] for r in records]

    # Other settings are another run: refused in the same OUT.
    assert_one_clean_error(run_cli("annotate", data, "-o", out, "--judge", judge, "--target-coverage", target, "--no-progress"),
                           "different settings")

    export = tmp_path / "train.jsonl"
    result = ok(run_cli("export", out, "-o", export))
    rows = read_jsonl(export)
    assert len(rows) == 6 and {row["metadata"]["judge_kind"] for row in rows} == {"model-grounded"}
    assert "heuristic" not in result.stderr


def test_surprisal_on_the_bundled_sample(grounded_pair, tmp_path):
    out = tmp_path / "sample"
    judge = f"surprisal:{grounded_pair.small}"
    result = ok(run_cli("annotate", "-o", out, "--judge", judge, "--limit", "3", "--no-progress", timeout=300))
    records = annotations(out)
    assert len(records) == 3 and all(r["spans"] for r in records)
    assert all(abs(r["coverage"] - 0.15) <= 0.02 for r in records)
    assert "heuristic is fixed rules" not in result.stderr
    # resumed with more traces: the first three stay, two are added; export takes all five
    ok(run_cli("annotate", "-o", out, "--judge", judge, "--limit", "5", "--no-progress", timeout=300))
    manifest = json.loads((out / "run.json").read_text())
    assert [inv["annotated"] for inv in manifest["invocations"]] == [3, 2]
    resumed = {r["trace_id"]: r for r in annotations(out)}
    assert len(resumed) == 5 and all(resumed[r["trace_id"]] == r for r in records)  # the first three unchanged
    ok(run_cli("export", out, "-o", out / "train.jsonl"))
    assert len((out / "train.jsonl").read_text().splitlines()) == 5


def test_device_dtype_and_window_length_reach_the_judges(grounded_pair, tmp_path):
    # annotate's --device/--dtype/--max-length are the model-grounded judges' (provenance included): a
    # 64-token window reads each sample trace (thousands of tokens) in many windows.
    out = tmp_path / "windows"
    ok(run_cli("annotate", "-o", out, "--judge", f"surprisal:{grounded_pair.small}", "--limit", "2", "--device", "cpu",
               "--dtype", "float32", "--max-length", "64", "--no-progress", timeout=300))
    params = annotations(out)[0]["judge"]["params"]
    assert (params["max_len"], params["dtype"]) == (64, "float32")
    batching = next(iter(json.loads((out / "run.json").read_text())["invocations"][0]["batching"].values()))
    assert batching["windows"] > 20 * 2
    # another window length changes the spans: resuming with it is refused
    assert_one_clean_error(run_cli("annotate", "-o", out, "--judge", f"surprisal:{grounded_pair.small}", "--limit",
                                   "3", "--max-length", "128", "--no-progress", timeout=300), "different settings")
    assert_one_clean_error(run_cli("annotate", "-o", tmp_path / "bad", "--judge", f"surprisal:{grounded_pair.small}",
                                   "--dtype", "float8", "--no-progress"), "float8")


def test_bad_input_is_one_line(grounded_pair, tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "no-such-model"
    assert_one_clean_error(run_cli("annotate", "-o", out, "--judge", f"surprisal:{missing}", "--no-progress"),
                           "does not exist")
    assert not out.exists()
    assert_one_clean_error(run_cli("annotate", "-o", out, "--judge", f"divergence:{grounded_pair.small}",
                                   "--no-progress"), "divergence:<small>,<large>")
    assert_one_clean_error(run_cli("annotate", "-o", out, "--judge",
                                   f"divergence:{grounded_pair.small},{grounded_pair.other_tokenizer}",
                                   "--no-progress"), "different tokenizers")
    assert not out.exists()
    assert_one_clean_error(run_cli("annotate", "-o", out, "--divergence", "kl", "--no-progress"),
                           "divergence:SMALL,LARGE judges only")

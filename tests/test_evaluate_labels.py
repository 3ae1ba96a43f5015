"""`splitreason evaluate labels` on runs over traces with planted steps (tests/grounded_fixtures.py):
spans on the planted steps lift the small model's (excess) loss well above chance, random whole
steps of the same size stay near 1, and runs are compared by character F1."""

from __future__ import annotations

import json
import random
import re
import shutil

import pytest

from tests.grounded_fixtures import planted_share, planted_traces
from tests.helpers import assert_one_clean_error, ok, openr1_record, read_jsonl, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def labelled_runs(grounded_pair, tmp_path_factory):
    """Three runs over the same 24 traces: the surprisal judge's, the planted steps, random steps."""
    root = tmp_path_factory.mktemp("labels")
    traces = planted_traces(24, seed=31)
    data = root / "in.jsonl"
    data.write_text("".join(json.dumps(openr1_record(f"u{i}", [text], problem=problem)) + "\n"
                            for i, (problem, text, _) in enumerate(traces)))
    judged = root / "surprisal"
    ok(run_cli("annotate", data, "-o", judged, "--judge", f"surprisal:{grounded_pair.small}", "--target-coverage",
               f"{planted_share(traces):.3f}", "--no-progress", timeout=300))
    planted = {text: spans for _, text, spans in traces}
    rng = random.Random(5)

    def random_steps(text: str) -> list[tuple[int, int]]:
        # two whole sentences of the thinking part, anywhere
        sentences = [m.span() for m in re.finditer(r"[A-Z][^.]*\.", text[:text.index("</think>")])]
        return sorted(rng.sample(sentences, 2))

    def rewrite(name: str, choose) -> str:
        out = root / name
        shutil.copytree(judged, out)
        for path in (out / "annotations").glob("shard-*.jsonl"):
            records = read_jsonl(path)
            for record in records:
                text = record["trace"]
                spans = choose(text)
                record["spans"] = [{"start": s, "end": e, "text": text[s:e], "score": 1.0, "reason": name,
                                    "match": "exact"} for s, e in spans]
                record["coverage"] = round(sum(e - s for s, e in spans) / len(text), 6)
            path.write_text("".join(json.dumps(record) + "\n" for record in records))
        return out

    return judged, rewrite("planted", planted.__getitem__), rewrite("random", random_steps)


def test_planted_spans_lift_and_random_spans_do_not(grounded_pair, labelled_runs, tmp_path):
    judged, planted, random_run = labelled_runs
    result = ok(run_cli("evaluate", "labels", planted, random_run, judged, "--small", grounded_pair.small,
                        "--large", grounded_pair.large, "--json", timeout=300))
    report = json.loads(result.stdout)
    assert report["traces"] == 24 and "by construction" in report["caveat"]
    by_run = {run["run"]: run for run in report["runs"]}
    planted_row, random_row, judged_row = by_run[str(planted)], by_run[str(random_run)], by_run[str(judged)]
    assert planted_row["excess_lift"] > 2 and planted_row["loss_lift"] > 1.5
    assert abs(random_row["excess_lift"] - 1) < 0.35 and abs(random_row["loss_lift"] - 1) < 0.35
    assert judged_row["judge"].endswith("(model-grounded)")
    agreement = {(pair["a"], pair["b"]): pair["char_f1"] for pair in report["agreement"]}
    assert agreement[(str(planted), str(judged))] > 0.8  # the surprisal judge found the planted steps
    assert agreement[(str(planted), str(random_run))] < 0.5

    # The same JSON is a section of the run's report.
    saved = tmp_path / "labels.json"
    saved.write_text(result.stdout)
    page = tmp_path / "report.html"
    shown = ok(run_cli("report", judged, "-o", page, "--labels", saved, "--no-progress", timeout=300))
    html = page.read_text()
    assert "Labels against the small model" in html and "by construction" in html and str(planted) in html
    assert "excess lift" in shown.stdout
    summary = json.loads(ok(run_cli("report", judged, "-o", tmp_path / "again.html", "--labels", saved, "--json",
                                    "--no-progress", timeout=300)).stdout)
    assert summary["labels"] == report and summary["traces"] == 24


def test_table_without_a_large_model(grounded_pair, labelled_runs):
    judged, planted, _ = labelled_runs
    result = ok(run_cli("evaluate", "labels", planted, judged, "--small", grounded_pair.small, "--no-progress",
                        timeout=300))
    assert "loss lift" in result.stdout and "excess lift" not in result.stdout
    assert "by construction" in result.stdout
    # captured = piped: plain columns (no box lines), each run's path whole on its line
    assert "│" not in result.stdout and "…" not in result.stdout
    assert any(line.startswith(str(planted)) for line in result.stdout.splitlines())


def test_reviews_apply_as_export_applies_them(grounded_pair, labelled_runs, tmp_path):
    """Traces rejected in review are left out and a reviewed trace counts with its reviewed spans:
    the spans scored are those export would train on (the reviews used to be ignored)."""
    from splitreason.io.run_dir import RunDir
    from splitreason.review.store import ReviewStore
    from tests.builders import review_of

    _, planted, _ = labelled_runs
    reviewed = tmp_path / "reviewed"
    shutil.copytree(planted, reviewed)
    first, second, third = sorted(RunDir(reviewed).iter_annotations(), key=lambda a: a.trace_id)[:3]
    with ReviewStore.for_run(reviewed) as store:
        store.save(review_of(first, "alice", "rejected"))
        store.save(review_of(second, "alice", "rejected", minutes=1))
        store.save(review_of(third, "bob", "accepted", slice(0, 1), minutes=2))  # keeps 1 of its 2 planted steps
    result = ok(run_cli("evaluate", "labels", reviewed, planted, "--small", grounded_pair.small, "--json",
                        timeout=300))
    report = json.loads(result.stdout)
    assert report["traces"] == 22 and report["left_out"] == {str(planted): 2}
    assert report["runs"][0]["judge"].endswith(", 1 reviewed")
    assert report["runs"][0]["token_share"] < report["runs"][1]["token_share"]
    assert 0.95 < report["agreement"][0]["char_f1"] < 1  # the same spans but on the one trace reviewed


def test_bad_input_is_one_line(grounded_pair, labelled_runs, tmp_path):
    judged, _, _ = labelled_runs
    assert_one_clean_error(run_cli("evaluate", "labels", judged, "--small", tmp_path / "missing"), "does not exist")
    assert_one_clean_error(run_cli("evaluate", "labels", judged, "--small", grounded_pair.small, "--large",
                                   grounded_pair.other_tokenizer), "different tokenizers")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_clean_error(run_cli("evaluate", "labels", empty, "--small", grounded_pair.small), "no annotations")
    not_labels = tmp_path / "x.json"
    not_labels.write_text("{}")
    assert_one_clean_error(run_cli("report", judged, "-o", tmp_path / "r.html", "--labels", not_labels),
                           "evaluate labels --json")

"""`splitreason curate`, end to end through the CLI: every input trace ends in exactly one place
(kept in a shard, excluded with a step and reason, or a reject), and each step does what it says."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import openr1_record, reasoning_trace
from tests.helpers import assert_one_clean_error, ok, read_jsonl, run_cli
from tests.builders import CORPUS, DICE, EVAL, LEAKS, MN, URN

CHINESE = ("<think>\n" + "我们需要仔细地计算这个问题。首先，我们考虑所有可能的情况，然后逐一验证每一种情况是否满足题目的条件。"
           "接下来我们把结果加起来，并且检查有没有遗漏的情况，最后得到答案。\n" * 3 + "</think>\n答案是 \\(\\boxed{7}\\)。")
EVAL_PROBLEM = ("Let \\( f(x) = 3x^2 + 5x + 7 \\). Find the sum of all real numbers \\( x \\) such that "
                "\\( f(f(x)) = 11 \\), and give the answer as a fraction in lowest terms.")


def _rows() -> list[dict]:
    rows = [openr1_record(f"u{i:03d}", [reasoning_trace(i * 10), reasoning_trace(i * 10 + 1)],
                          problem=f"Find the remainder when \\( {i + 3}^{{{100 + i}}} \\) is divided by \\( {i + 7} \\).",
                          source="olympiads" if i % 2 else "cn_contest", problem_type="Algebra" if i % 3 else "Geometry")
            for i in range(12)]
    rows[1]["correctness_math_verify"] = [True, False]  # generation 1: select step, "incorrect"
    rows[2]["generations"][1] = CHINESE  # language filter
    rows[3]["finish_reasons"] = ["stop", "length"]  # kept only with --finish-reason stop,length
    rows[4]["correctness_count"] = 0  # --min-correct 1
    rows.append(openr1_record("dup-exact", [reasoning_trace(500)], source="olympiads",
                              problem="Problem 3. find the remainder when $5^{102}$ is divided by $9$"))  # = u002
    rows.append(openr1_record("dup-near", [reasoning_trace(501)], source="olympiads",
                              problem="Determine the remainder when \\( 6^{103} \\) is divided by \\( 10 \\). Justify your answer."))  # ~ u003
    rows.append(openr1_record("renumbered", [reasoning_trace(502)], source="olympiads",
                              problem="Find the remainder when \\( 6^{104} \\) is divided by \\( 11 \\)."))  # not a duplicate
    rows.append(openr1_record("leak", [reasoning_trace(503)], source="olympiads",
                              problem=EVAL_PROBLEM.replace("\\( f(f(x)) = 11 \\)", "$f(f(x))=11$")))
    rows.append(openr1_record("short", ["<think>\nToo short.\n</think>"], source="olympiads",
                              problem="A different short problem about the number 5."))
    return rows


def _write(path: Path, rows: list[dict], bad_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows] + list(bad_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return _write(tmp_path / "in.jsonl", _rows(), bad_lines=("{not json",))


@pytest.fixture
def eval_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "eval.jsonl", [{"id": "e1", "problem": EVAL_PROBLEM},
                                            {"id": "e2", "problem": "Compute binom(31, 28) exactly."}])


def _kept(out: Path) -> dict[str, dict]:
    return {record["trace_id"]: record for path in sorted(out.glob("shard-*.jsonl")) for record in read_jsonl(path)}


def test_every_trace_ends_in_exactly_one_place(tmp_path, source, eval_file):
    out = tmp_path / "curated"
    result = ok(run_cli("curate", source, "-o", out, "--shards", "3", "--min-chars", "200", "--language", "en",
                        "--finish-reason", "stop,length", "--min-correct", "1", "--eval-set", eval_file,
                        "--no-progress"))
    kept = _kept(out)
    excluded = {record["trace_id"]: record for record in read_jsonl(out / "exclusions.jsonl")}
    rejects = read_jsonl(out / "rejects.jsonl")
    assert [r["reason"] for r in rejects] == ["invalid_json"]
    assert not kept.keys() & excluded.keys()
    all_ids = {f"{row['uuid']}:{i}" for row in _rows() for i in range(len(row["generations"]))}
    assert kept.keys() | excluded.keys() == all_ids  # nothing lost
    why = {trace_id: (record["step"], record["reason"]) for trace_id, record in excluded.items()}
    assert why["u001:1"] == ("select", "incorrect")
    assert why["u002:1"] == ("filter", "language")
    assert why["u004:0"] == why["u004:1"] == ("filter", "correctness_count")
    assert why["short:0"] == ("filter", "length_chars")
    assert why["leak:0"] == ("decontaminate", "contaminated") and excluded["leak:0"]["eval_set"] == "eval"
    assert why["dup-exact:0"] == ("dedup", "exact_duplicate") and excluded["dup-exact:0"]["kept"] == "u002"
    assert why["dup-near:0"] == ("dedup", "near_duplicate") and excluded["dup-near:0"]["kept"] == "u003"
    assert "renumbered:0" in kept and "u003:1" in kept  # other numbers; finish reason "length" allowed
    assert kept["u003:1"]["finish_reason"] == "length"

    summary = json.loads((out / "curate.json").read_text())
    counts = summary["counts"]
    assert counts["kept"] == len(kept) and counts["excluded"] == len(excluded) and counts["input_rejects"] == 1
    assert counts["traces_in"] == len(all_ids) == counts["kept"] + counts["excluded"] + counts["generations_rejected"]
    by_reason = Counter((r["step"], r["reason"]) for r in excluded.values())
    for step in summary["steps"]:
        assert step["in"] - step["out"] == sum(step["excluded"].values())
        assert step["excluded"] == {reason: n for (s, reason), n in by_reason.items() if s == step["step"]}
    pairs = read_jsonl(out / "contamination.jsonl")
    assert [(p["uuid"], p["eval_id"], p["verdict"], p["rule"]) for p in pairs] == [("leak", "e1", "contaminated", "exact")]
    assert pairs[0]["score"] == 1.0 and pairs[0]["dropped"] and all(len(gram.split()) == 5 for gram in pairs[0]["ngrams"])
    decontamination = summary["decontamination"]
    assert decontamination["rule"] == "specific" and decontamination["ngram"] == 5
    assert decontamination["by_eval_set"]["eval"] == {"matched_problems": 1, "removed_traces": 1, "near_matches": 0}
    assert decontamination["by_rule"] == {"exact": {"problems": 1, "removed_traces": 1}}
    assert decontamination["examples"][0]["eval_problem"] == EVAL_PROBLEM
    clusters = {(c["kind"], c["kept"]): c for c in read_jsonl(out / "clusters.jsonl")}
    assert clusters[("exact", "u002")]["removed"] == [{"uuid": "dup-exact", "similarity": 1.0}]
    assert clusters[("minhash", "u003")]["removed"][0]["uuid"] == "dup-near"
    assert "decontaminate" in result.stderr and "exact_duplicate 1" in result.stderr

    annotated = tmp_path / "annotated"  # the curated directory is annotate's input as it is
    ok(run_cli("annotate", out, "-o", annotated, "--no-progress"))
    done = {r["trace_id"] for p in (annotated / "annotations").glob("*.jsonl") for r in read_jsonl(p)}
    assert done == set(kept) and read_jsonl(annotated / "rejects.jsonl")[0]["reason"] == "invalid_json"


def test_keep_contaminated_reports_but_keeps(tmp_path, source, eval_file):
    out = tmp_path / "curated"
    ok(run_cli("curate", source, "-o", out, "--eval-set", eval_file, "--keep-contaminated", "--no-near-dedup",
               "--no-progress"))
    assert "leak:0" in _kept(out)
    assert read_jsonl(out / "contamination.jsonl")[0]["dropped"] is False
    summary = json.loads((out / "curate.json").read_text())
    assert summary["decontamination"]["matched_problems"] == 1 and summary["decontamination"]["removed_traces"] == 0
    assert summary["decontamination"]["by_rule"] == {"exact": {"problems": 1, "removed_traces": 0}}
    assert summary["dedup"]["minhash"] is None


@pytest.fixture
def decontamination_input(tmp_path: Path) -> tuple[Path, Path]:
    """Competition problems against an AIME-like evaluation set (tests/test_decontaminate.py): a leak
    with two sentences reordered, the leaked wording with other numbers, a problem sharing only stock
    phrasing, and problems in the same phrasing that give the corpus sample its stock settings."""
    reordered, _ = LEAKS["reordered"]
    rows = [openr1_record("leak", [reasoning_trace(1)], problem=reordered),
            openr1_record("near", [reasoning_trace(2)], problem=URN.replace("$16$ green", "$12$ green")),
            openr1_record("stock", [reasoning_trace(3)], problem=f"{DICE} Let $q$ be the chance that the larger number "
                                                                 f"is at least $5$. Then $q = \\frac{{m}}{{n}}$, {MN}")]
    rows += [openr1_record(f"corpus{i}", [reasoning_trace(10 + i)], problem=problem) for i, problem in enumerate(CORPUS)]
    evals = [{"id": problem.id, "problem": problem.problem} for problem in EVAL]
    return _write(tmp_path / "in.jsonl", rows), _write(tmp_path / "aime.jsonl", evals)


def test_decontamination_explains_every_decision(tmp_path, decontamination_input):
    source, evals = decontamination_input
    out = tmp_path / "curated"
    result = ok(run_cli("curate", source, "-o", out, "--eval-set", evals, "--no-near-dedup", "--no-progress"))
    excluded = {r["uuid"]: r for r in read_jsonl(out / "exclusions.jsonl")}
    assert set(excluded) == {"leak"} and excluded["leak"]["reason"] == "contaminated"
    assert "overlap" in excluded["leak"]["detail"] and excluded["leak"]["eval_set"] == "aime"
    assert {"near:0", "stock:0"} <= set(_kept(out))
    pairs = {p["uuid"]: p for p in read_jsonl(out / "contamination.jsonl")}
    leak, near, stock = pairs["leak"], pairs["near"], pairs["stock"]
    assert (leak["eval_id"], leak["verdict"], leak["rule"], leak["dropped"]) == ("urn", "contaminated", "overlap", True)
    assert leak["score"] >= leak["threshold"] == 0.5 and leak["ngrams"] and leak["ngrams_shared"] >= len(leak["ngrams"])
    assert leak["boilerplate"] and {"ngram", "eval_df", "corpus_df"} == set(leak["boilerplate"][0])
    assert (near["verdict"], near["rule"], near["dropped"], near["missing_numbers"]) == ("near_match", "near_match",
                                                                                         False, ["16"])
    assert (stock["eval_id"], stock["verdict"], stock["rule"], stock["score"]) == ("dice", "clean", "boilerplate_only", 0)
    assert stock["ngrams"] == [] and stock["boilerplate_shared"] >= len(stock["boilerplate"]) > 0
    x = json.loads((out / "curate.json").read_text())["decontamination"]
    assert (x["rule"], x["ngram"], x["min_overlap_ratio"], x["strict"]) == ("specific", 5, 0.5, False)
    assert x["by_rule"] == {"overlap": {"problems": 1, "removed_traces": 1}}
    assert x["near_matches"] == {"problems": 1, "kept": 1} and x["kept_with_overlap"]["boilerplate_only"] >= 1
    assert x["boilerplate"]["corpus_sampled"] == len(CORPUS) + 3 and x["boilerplate"]["boilerplate_ngrams"] > 0
    assert x["by_eval_set"]["aime"] == {"matched_problems": 1, "removed_traces": 1, "near_matches": 1}
    assert x["eval_sets"][0]["too_short"] == 1  # "Find $x$."
    assert [e["uuid"] for e in x["examples"]] == ["leak"] and [e["uuid"] for e in x["near_match_examples"]] == ["near"]
    assert "1 near matches (same wording, other numbers), 1 kept" in " ".join(result.stderr.split())
    # 20 input problems are a thin sample of stock phrasing: said once on stderr and kept in curate.json
    assert len(x["warnings"]) == 1 and x["warnings"][0].startswith("stock phrasing was learned from 20 distinct")
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [f"warning: {x['warnings'][0]}"] and "2,000" in warned[0]

    strict = tmp_path / "strict"
    ok(run_cli("curate", source, "-o", strict, "--eval-set", evals, "--strict", "--no-near-dedup", "--no-progress"))
    excluded = {r["uuid"]: r["reason"] for r in read_jsonl(strict / "exclusions.jsonl")}
    assert excluded == {"leak": "contaminated", "near": "near_match"}
    x = json.loads((strict / "curate.json").read_text())["decontamination"]
    assert x["by_rule"]["near_match"] == {"problems": 1, "removed_traces": 1} and x["near_matches"]["kept"] == 0

    ngram = tmp_path / "ngram"  # today's rule removes the stock-only problem and much of the corpus too
    ok(run_cli("curate", source, "-o", ngram, "--eval-set", evals, "--rule", "ngram", "--min-overlap", "1",
               "--no-near-dedup", "--no-progress"))
    excluded = {r["uuid"] for r in read_jsonl(ngram / "exclusions.jsonl")}
    assert {"leak", "near", "stock"} <= excluded
    x = json.loads((ngram / "curate.json").read_text())["decontamination"]
    assert (x["rule"], x["ngram"], x["min_overlap"]) == ("ngram", 8, 1) and set(x["by_rule"]) == {"ngram"}


@pytest.mark.parametrize("args, needles", [
    (["--min-overlap", "2"], ["--min-overlap counts shared n-grams of --rule ngram", "--min-overlap-ratio"]),
    (["--rule", "ngram", "--strict"], ["--strict belongs to --rule specific"]),
    (["--rule", "ngram", "--min-overlap-ratio", "0.4"], ["--min-overlap-ratio belongs to --rule specific"]),
    (['--rule', 'words'], ["'--rule'", "'words' is not one of 'specific', 'ngram'"]),  # an Enum: click names the choices
    (["--ngram", "1"], ["--ngram must be at least 2"]),
])
def test_decontamination_options_of_the_other_rule_are_refused(tmp_path, source, eval_file, args, needles):
    result = run_cli("curate", source, "-o", tmp_path / "out", "--eval-set", eval_file, *args, "--no-progress")
    assert_one_clean_error(result, *needles)
    assert not (tmp_path / "out").exists()
    no_eval = run_cli("curate", source, "-o", tmp_path / "out", "--min-overlap-ratio", "0.6", "--no-progress")
    assert_one_clean_error(no_eval, "--min-overlap-ratio sets up decontamination, which needs --eval-set")


def test_ngram_without_rule_says_which_rule_it_sets(tmp_path, source, eval_file):
    """An old `--ngram 8` script (when 8-grams were the only rule) now sets the default rule's n: said
    in one line, not silently; nothing is said once the rule is chosen, on the command line or in --config."""
    old = ok(run_cli("curate", source, "-o", tmp_path / "old", "--eval-set", eval_file, "--ngram", "8",
                     "--no-near-dedup", "--no-progress"))
    notes = [line for line in old.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "--ngram 8 sets the n-gram size of --rule specific" in notes[0]
    assert "--rule ngram" in notes[0]
    assert json.loads((tmp_path / "old" / "curate.json").read_text())["decontamination"]["ngram"] == 8
    chosen = ok(run_cli("curate", source, "-o", tmp_path / "chosen", "--eval-set", eval_file, "--ngram", "8",
                        "--rule", "specific", "--no-near-dedup", "--no-progress"))
    config = tmp_path / "curate.toml"
    config.write_text('rule = "specific"\n')
    configured = ok(run_cli("curate", source, "-o", tmp_path / "configured", "--eval-set", eval_file, "--ngram", "8",
                            "--config", config, "--no-near-dedup", "--no-progress"))
    assert "note:" not in chosen.stderr and "note:" not in configured.stderr


def test_sampling_is_stratified_seeded_and_independent_of_input_order(tmp_path):
    rows = [openr1_record(f"s{i:03d}", [reasoning_trace(i, paragraphs=4 + i % 30)], problem=f"Problem about {i} and {i * 7}.",
                          source=["olympiads", "amc_aime", "cn_contest"][i % 3]) for i in range(90)]
    forward, backward = _write(tmp_path / "a.jsonl", rows), _write(tmp_path / "b.jsonl", rows[::-1])
    samples = []
    for name, path, seed in (("a", forward, 3), ("b", backward, 3), ("c", forward, 4)):
        ok(run_cli("curate", path, "-o", tmp_path / name, "--sample", "30", "--seed", str(seed), "--stratify", "source",
                   "--no-near-dedup", "--no-progress"))
        samples.append(set(_kept(tmp_path / name)))
    assert samples[0] == samples[1] and samples[0] != samples[2] and all(len(s) == 30 for s in samples)
    summary = json.loads((tmp_path / "a" / "curate.json").read_text())
    assert {s["key"]["source"]: s["taken"] for s in summary["sampling"]["strata"]} == \
        {"olympiads": 10, "amc_aime": 10, "cn_contest": 10}
    not_sampled = [r for r in read_jsonl(tmp_path / "a" / "exclusions.jsonl") if r["step"] == "sample"]
    assert len(not_sampled) == 60 and {r["reason"] for r in not_sampled} == {"not_sampled"}


@pytest.mark.parametrize("args, needles", [
    (["--min-tokens", "5"], ["--min-tokens/--max-tokens need --tokenizer"]),
    (["--min-chars", "9", "--max-chars", "3"], ["--min-chars 9 is above --max-chars 3"]),
    (["--eval-set", "missing-eval.jsonl"], ["input not found", "missing-eval.jsonl"]),
    (["--eval-set", "aime24"], ["hub dataset HuggingFaceH4/aime_2024 cannot be read", "offline"]),  # the real hub path
    (["--stratify", "colour", "--sample", "3"], ["stratify", "'source', 'problem_type' or 'length'"]),  # StrataKey: the choices
    (["--length-buckets", "4k,8k"], ["--length-buckets expects comma-separated character counts"]),
])
def test_bad_options_are_one_clear_error(tmp_path, source, args, needles):
    result = run_cli("curate", source, "-o", tmp_path / "out", *args, "--no-progress")
    assert_one_clean_error(result, *needles)
    assert not (tmp_path / "out").exists()


def test_eval_set_without_a_problem_field_and_foreign_output_are_refused(tmp_path, source):
    no_field = _write(tmp_path / "e.jsonl", [{"id": 1, "text": "a problem"}])
    assert_one_clean_error(run_cli("curate", source, "-o", tmp_path / "o1", "--eval-set", no_field),
                           "no problem field", "--eval-field")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert_one_clean_error(run_cli("curate", source, "-o", foreign), "not empty and holds no curate output")
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "again"
    ok(run_cli("curate", source, "-o", out, "--no-progress"))
    assert_one_clean_error(run_cli("curate", source, "-o", out, "--no-progress"), "--overwrite")
    ok(run_cli("curate", source, "-o", out, "--overwrite", "--sample", "5", "--no-progress"))
    assert len(_kept(out)) == 5 and not list(tmp_path.glob(".again.curate-*"))  # the work directory is gone

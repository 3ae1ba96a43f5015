"""`splitreason evaluate offload` through the CLI with the shared tiny tagged model (small) and its
perturbed copy (large): every mode on the same problems, samples.jsonl complete enough to replay a
sample, summary.json, a run killed part-way resumed, and bad input as one line each.

Tiny-model numbers show the mechanism, not quality: the models answer at random."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from splitreason import CLOSE_TAG, OPEN_TAG
from tests.helpers import REPO, assert_one_clean_error, cli_env, ok, read_jsonl
from tests.offload_fixtures import run_cli

pytest.importorskip("torch")
pytest.importorskip("math_verify")

FAST = ("--chunk-tokens", "8", "--max-segment-tokens", "32", "--max-tokens", "80", "--no-progress")


@pytest.fixture
def eval_file(tmp_path) -> Path:
    path = tmp_path / "eval.jsonl"
    rows = [{"id": "q0", "problem": "Problem 20000: work out the value step by step.", "answer": "025"},
            {"id": "q1", "problem": "Problem 20001: work out the value step by step.", "answer": "\\frac{14}{3}"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def offload(tagged_model, large_model, eval_file, out, *extra):
    return run_cli("evaluate", "offload", "--small", tagged_model, "--large", large_model, "--eval-set", eval_file,
                   "-o", out, *FAST, *extra)


@pytest.mark.slow
def test_all_modes_write_replayable_samples_and_a_summary(tagged_model, large_model, eval_file, tmp_path, review_run):
    from transformers import PreTrainedTokenizerFast

    out = tmp_path / "out"
    result = ok(offload(tagged_model, large_model, eval_file, out, "--mode", "learned", "--mode", "random",
                        "--mode", "small", "--mode", "large", "--samples", "2", "--temperature", "0.8", "--json"))
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert set(summary["modes"]) == {"learned", "random", "small", "large"}
    rows = read_jsonl(out / "samples.jsonl")
    assert len(rows) == 2 * 2 * 4
    assert len({(row["mode"], row["problem_id"], row["sample"]) for row in rows}) == len(rows)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tagged_model))
    seeds = {}
    for row in rows:
        seeds.setdefault((row["problem_id"], row["sample"]), set()).add(row["seed"])
        assert row["gold"] in ("025", "\\frac{14}{3}") and isinstance(row["correct"], bool)
        assert row["tokens"]["total"] == sum(len(segment["token_ids"]) for segment in row["segments"])
        assert row["handoffs"] == sum(segment["model"] == "large" for segment in row["segments"]) or row["mode"] == "large"
        assert set(row["forward_passes"]) == {"small", "large"} and set(row["wall_s"]) >= {"small", "large", "grade"}
        if row["mode"] == "large":
            assert row["small_prompt_ids"] == [] and OPEN_TAG not in row["text"]
            assert "wrap the steps" not in tokenizer.decode(row["large_prompt_ids"])  # no offload instruction
            continue
        prompt = tokenizer.decode(row["small_prompt_ids"])
        assert "Problem 2000" in prompt and "wrap the steps that are hardest" in prompt  # train.json's instruction
        # the text is the segments, large ones between tags, each closed once
        rebuilt = "".join(f"{OPEN_TAG}{s['text']}{CLOSE_TAG}" if s["model"] == "large" else s["text"]
                          for s in row["segments"])
        assert row["text"] == rebuilt
        assert row["text"].count(OPEN_TAG) == row["text"].count(CLOSE_TAG) == row["handoffs"]
        for segment in row["segments"]:
            assert tokenizer.decode(segment["token_ids"]) == segment["text"]
        if row["mode"] == "small":
            assert row["offload_share"] == 0 and row["forward_passes"]["large"] == 0
        if row["mode"] == "random":
            learned = next(r for r in rows if r["mode"] == "learned" and r["problem_id"] == row["problem_id"]
                           and r["sample"] == row["sample"])
            assert row["random_plan"]["share"] == pytest.approx(min(learned["offload_share"], 0.95))
    assert all(len(values) == 1 for values in seeds.values())  # one seed per (problem, sample), every mode
    assert len({next(iter(values)) for values in seeds.values()}) == 4
    learned = summary["modes"]["learned"]
    assert learned["samples"] == 4 and learned["problems"] == 2 and 0 <= learned["accuracy_ci95"][0]
    assert learned["projected"]["pipelined"]["speedup"] > 0 and "speedup_vs_large_runs" in learned["projected"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["chunk_tokens"] == 8 and manifest["prompts"]["small_template_source"].startswith("train.json")
    # evaluate simulate reads the run
    from splitreason.evaluate.simulate import simulate
    from splitreason.schemas.evaluate_simulate import EvaluateSimulateSettings

    simulated = simulate(EvaluateSimulateSettings(evaluation=out, profile="a6000-paper"))
    assert simulated["samples"] == 4 and simulated["chunk_tokens"] == 8
    # splitreason report shows it: named with --evaluation, or found in the run directory
    import shutil

    shutil.copytree(out, review_run / "evaluations" / "tiny-eval")
    page_file = tmp_path / "report.html"
    terminal = ok(run_cli("report", review_run, "-o", page_file, "--no-progress")).stdout
    page = page_file.read_text(encoding="utf-8")
    section = page[page.index('<section id="evaluations">'):]
    section = section[: section.index("</section>")]
    assert "tiny-eval" in section and 'alt="accuracy against offload share"' in section
    for mode, figures in summary["modes"].items():
        assert f"<td>{mode}</td>" in section and f"{figures['offload_share']:.2%}" in section
    assert "evaluation tiny-eval" in terminal
    assert_one_clean_error(run_cli("report", review_run, "-o", page_file, "--no-progress", "--evaluation",
                                   tmp_path), "not a finished `evaluate offload` output")


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(tagged_model, large_model, eval_file, tmp_path):
    out = tmp_path / "out"
    args = ["--mode", "learned", "--mode", "small"]
    command = [sys.executable, "-m", "tests.killed_at", "line:samples.jsonl:2", "evaluate", "offload", "--small",
               str(tagged_model), "--large", str(large_model), "--eval-set", str(eval_file), "-o", str(out), *FAST, *args]
    killed = subprocess.run(command, cwd=REPO, env=cli_env(OMP_NUM_THREADS="1"), capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    samples = out / "samples.jsonl"
    kept = read_jsonl(samples)
    assert len(kept) == 2  # killed right after the second row
    with open(samples, "ab") as handle:
        handle.write(b'{"mode": "learned", "problem_')  # a torn line, as a crash mid-write leaves
    result = ok(offload(tagged_model, large_model, eval_file, out, *args, "-v"))
    assert f"{4 - len(kept)} samples written, {len(kept)} kept from before" in result.stderr
    assert "torn last line" in result.stderr
    # -v: where the run resumed and each sample it ran, one line each
    assert f"2 of 4 samples already in {out}; 2 to run" in result.stderr
    assert result.stderr.count("splitreason.evaluate.offload.run: ") == 4  # resume point, models, 2 samples
    rows = read_jsonl(samples)
    assert len(rows) == 4 and rows[: len(kept)] == kept
    assert len({(row["mode"], row["problem_id"], row["sample"]) for row in rows}) == 4
    # an OUT made with other settings is refused, untouched
    before = samples.read_bytes()
    assert_one_clean_error(offload(tagged_model, large_model, eval_file, out, *args, "--max-segment-tokens", "16"),
                           "other settings", "max_segment_tokens")
    assert samples.read_bytes() == before


def test_bad_input_is_one_line(tagged_model, offload_export, eval_file, tmp_path):
    no_answer = tmp_path / "no_answer.jsonl"
    no_answer.write_text(json.dumps({"id": "q0", "problem": "Problem 1: what?"}) + "\n", encoding="utf-8")
    assert_one_clean_error(offload(tagged_model, tagged_model, no_answer, tmp_path / "a"), "no answer field",
                           "--answer-field")
    assert not (tmp_path / "a").exists()
    # a large model with another tokenizer
    from tests.tiny_model import build_tiny_model

    other = build_tiny_model(tmp_path / "other")
    line = assert_one_clean_error(offload(tagged_model, other, eval_file, tmp_path / "b"), "do not share a vocabulary")
    assert "same tokenizer" in line and not (tmp_path / "b").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert_one_clean_error(offload(tagged_model, tagged_model, eval_file, busy), "not empty")
    assert (busy / "notes.txt").read_text() == "mine"


def test_settings_that_cannot_run_are_refused_when_built():
    from splitreason.schemas.evaluate_offload import EvaluateOffloadSettings
    from splitreason.schemas.settings import SettingsError

    base = {"small": "s", "large": "l", "eval_set": "aime24", "output": Path("out")}
    cases = [({"modes": ["random"]}, "--offload-share"), ({"small": None}, "needs --small"),
             ({"modes": ["small", "small"]}, "each --mode once"), ({"modes": []}, "at least one --mode"),
             ({"backend": "openai"}, "--small-url")]
    for change, needle in cases:
        with pytest.raises(SettingsError, match=needle):
            EvaluateOffloadSettings.build({**base, **change})
    assert EvaluateOffloadSettings.build({**base, "modes": ["random"], "offload_share": 0.05}).modes == ["random"]


def test_a_resume_on_a_rewritten_eval_set_is_refused_and_summaries_count_only_its_problems(tagged_model, tmp_path):
    def write_set(rows):
        path = tmp_path / "eval.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path

    def small_alone(eval_set, out):
        return run_cli("evaluate", "offload", "--small", tagged_model, "--eval-set", eval_set, "-o", out, *FAST,
                       "--max-tokens", "12", "--mode", "small", "--json")

    out = tmp_path / "out"
    first = write_set([{"id": "a", "problem": "Problem 20000: work out the value.", "answer": "1"},
                       {"id": "b", "problem": "Problem 20001: work out the value.", "answer": "2"}])
    ok(small_alone(first, out))
    samples = (out / "samples.jsonl").read_bytes()
    # the same file rewritten: other ids, and problem a with another problem and gold
    rewritten = write_set([{"id": "c", "problem": "Problem 20002: work out the value.", "answer": "3"},
                           {"id": "a", "problem": "Problem 20003: work out the value.", "answer": "4"}])
    result = small_alone(rewritten, out)
    assert result.returncode == 2
    assert_one_clean_error(result, "other contents", "new -o")
    assert (out / "samples.jsonl").read_bytes() == samples
    # an OUT whose manifest predates the fingerprint: the summary counts only the set's problems
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["eval_set"]["sha256"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    shrunk = write_set([{"id": "a", "problem": "Problem 20000: work out the value.", "answer": "1"}])
    summary = json.loads(ok(small_alone(shrunk, out)).stdout)
    assert summary["problems"] == 1 and summary["modes"]["small"]["samples"] == 1


def test_instruction_override_and_none_change_the_small_prompt_ids(tagged_model):
    from transformers import PreTrainedTokenizerFast

    from splitreason.evaluate.offload.prompts import PromptBuilder
    from splitreason.schemas.export import user_content

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tagged_model))
    problem = "Problem 20000: work out the value step by step."

    def prompt(instruction):
        return tokenizer.decode(PromptBuilder.for_small(tokenizer, str(tagged_model), instruction).ids(problem))

    recorded, override, none = prompt(None), prompt("Mark the steps you find hard."), prompt("")
    assert "wrap the steps that are hardest" in recorded  # train.json's instruction
    assert "Mark the steps you find hard." in override and "wrap the steps" not in override
    assert problem in none and "wrap the steps" not in none and "Mark the steps" not in none
    assert user_content(problem, None) in none and len(none) < len(recorded)


def test_a_piped_table_keeps_its_headers_and_greedy_samples_get_a_note(tagged_model, eval_file, tmp_path):
    result = ok(run_cli("evaluate", "offload", "--small", tagged_model, "--eval-set", eval_file, "-o", tmp_path / "out",
                        *FAST, "--max-tokens", "12", "--mode", "small", "--samples", "2"))
    header = next(line for line in result.stdout.splitlines() if line.lstrip().startswith("mode"))
    assert header.split() == ["mode", "acc", "(95%", "CI)", "maj", "tokens", "offload", "handoffs", "forced", "wall",
                              "s", "speed-up"]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "--samples 2 at --temperature 0" in notes[0]

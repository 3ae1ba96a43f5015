"""The latency projection: the paper's numbers reproduced (exact and with its rounding), the
sequential schedule's handoff costs, roofline rates, and real segments read from an evaluation's
samples.jsonl; `evaluate simulate` on the command line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from splitreason.evaluate.latency import (Rates, Segment, project_latency, segments_from_records,
                                          segments_from_token_ids, synthetic_segments)
from splitreason.evaluate.rates import gpus, load_profile, roofline_rates
from tests.helpers import assert_one_clean_error, ok, run_cli

PAPER = load_profile("a6000-paper")
# The paper's projection (1.5B + 32B on an A6000, prompt 2,048, 16,384 tokens, chunks of 256)
PAPER_FIGURES = {0.0135: 8.8, 0.05: 6.4, 0.10: 5.1}


def _synthetic(share: float, *, paper_rounding: bool, schedule: str = "pipelined", chunk: int = 256):
    segments = synthetic_segments(16384, share, segment_tokens=chunk, round_to_chunks=chunk if paper_rounding else None)
    return project_latency(segments, PAPER, small_prompt_tokens=2048, chunk_tokens=chunk, schedule=schedule)


def test_the_shipped_profile_holds_the_papers_rates() -> None:
    assert (PAPER.small_prefill, PAPER.small_decode) == (pytest.approx(28868.4664), 141)
    assert (PAPER.large_prefill, PAPER.large_decode) == (pytest.approx(2594.868088), 16)


@pytest.mark.parametrize("share", sorted(PAPER_FIGURES))
def test_pipelined_with_the_papers_rounding_reproduces_its_projection(share: float) -> None:
    projection = _synthetic(share, paper_rounding=True)
    assert round(projection.speedup, 1) == PAPER_FIGURES[share]
    assert projection.large_tokens % 256 == 0


def test_exact_offload_differs_from_the_papers_rounding() -> None:
    # 1.35 % of 16,384 is 221 tokens: no whole 256-token chunk, so the paper's point offloads nothing
    rounded, exact = _synthetic(0.0135, paper_rounding=True), _synthetic(0.0135, paper_rounding=False)
    assert rounded.large_tokens == 0  # the pair is the small model alone, waiting for the large model's prefill
    assert rounded.pair_s == pytest.approx(2048 / PAPER.large_prefill + 16384 / 141)
    assert exact.large_tokens == 221 and exact.speedup == pytest.approx(7.93, abs=0.01)
    # exact, by hand: prompt max(2048/28868, 2048/2595) + 221 large tokens at 16/s + the rest at 141/s
    by_hand = 2048 / PAPER.large_prefill + 221 / 16 + (16384 - 221) / 141
    assert exact.pair_s == pytest.approx(by_hand)
    assert exact.large_alone_s == pytest.approx(2048 / PAPER.large_prefill + 16384 / 16)
    assert _synthetic(0.05, paper_rounding=False).speedup == pytest.approx(6.31, abs=0.01)
    assert _synthetic(0.10, paper_rounding=False).speedup == pytest.approx(4.93, abs=0.01)


def test_pipelined_chunk_costs_are_the_larger_of_decode_and_the_others_prefill() -> None:
    # rates where the reader is the bottleneck: the small model decodes faster than the large one reads
    rates = Rates(small_prefill=1000, small_decode=500, large_prefill=100, large_decode=10)
    projection = project_latency([Segment("small", 300), Segment("large", 50)], rates, small_prompt_tokens=0)
    assert projection.decode_s == pytest.approx(300 / 100 + 50 / 10)


def test_sequential_is_never_faster_and_adds_the_handoff_costs() -> None:
    generator = random.Random(7)
    for _ in range(200):
        segments = [Segment("small" if index % 2 == 0 else "large", generator.randint(1, 700),
                            forced=generator.random() < 0.2) for index in range(generator.randint(1, 12))]
        prompt, chunk = generator.randint(0, 4000), generator.choice([16, 64, 256])
        pipelined = project_latency(segments, PAPER, small_prompt_tokens=prompt, chunk_tokens=chunk)
        sequential = project_latency(segments, PAPER, small_prompt_tokens=prompt, chunk_tokens=chunk,
                                     schedule="sequential")
        assert sequential.pair_s >= pipelined.pair_s
        assert sequential.large_alone_s == pipelined.large_alone_s
    # one handoff, counted by hand: 100 small tokens, then a 70-token large segment in chunks of 64
    segments = [Segment("small", 100), Segment("large", 70), Segment("small", 30)]
    sequential = project_latency(segments, PAPER, small_prompt_tokens=10, chunk_tokens=64, schedule="sequential")
    tag = 1 / 141
    catch_up = max(1 / 16, 100 / PAPER.large_prefill)  # the large model reads the small model's 100 tokens
    dropped = (128 - 70) / 16  # two chunks written, the rest of the second dropped
    checks = 2 * max(1 / 141, 64 / PAPER.small_prefill)  # one small-model pass per chunk
    assert sequential.handoff_s == pytest.approx(tag + catch_up + dropped + checks)
    assert sequential.decode_s == pytest.approx(130 / 141 + 70 / 16)
    assert sequential.handoffs == 1 and sequential.offload_share == pytest.approx(70 / 200)


def test_roofline_rates_from_the_gpu_table() -> None:
    assert {"a6000", "a100", "h100"} <= set(gpus())
    rates = roofline_rates("a6000", small_params_b=1.5, large_params_b=32)
    assert rates.small_decode == pytest.approx(768e9 / (1.5e9 * 2))
    assert rates.large_prefill == pytest.approx(154.8e12 / (2 * 32e9))
    faster = roofline_rates("H100", small_params_b=1.5, large_params_b=32, bytes_per_param=1)
    assert faster.large_decode == pytest.approx(3350e9 / 32e9)
    # the roofline is an upper bound: the paper's measured 1.5B decode is below it
    assert PAPER.small_decode < rates.small_decode


def test_segments_from_a_tagged_completion() -> None:
    open_id, close_id = 900, 901
    ids = [1, 2, 3, open_id, 4, 5, close_id, 6, open_id, 7]
    assert segments_from_token_ids(ids, open_id=open_id, close_id=close_id) == [
        Segment("small", 3), Segment("large", 2), Segment("small", 1), Segment("large", 1)]
    assert segments_from_token_ids([], open_id=open_id, close_id=close_id) == []


def write_evaluation(out: Path, *, chunk_tokens: int | None = 64) -> list[dict]:
    """An evaluation OUT as `evaluate offload` writes it: samples.jsonl rows with real segments."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for problem in range(3):
        small_prompt, large_prompt = list(range(200 + problem)), list(range(180))
        learned = [{"model": "small", "token_ids": list(range(400)), "text": "s", "forced": False},
                   {"model": "large", "token_ids": list(range(30 + problem)), "text": "l", "forced": False},
                   {"model": "small", "token_ids": list(range(300)), "text": "s", "forced": False},
                   {"model": "large", "token_ids": list(range(512)), "text": "l", "forced": True},
                   {"model": "small", "token_ids": list(range(100)), "text": "s", "forced": False}]
        rows.append({"mode": "learned", "problem_id": str(problem), "sample": 0, "small_prompt_ids": small_prompt,
                     "large_prompt_ids": large_prompt, "segments": learned})
        rows.append({"mode": "large", "problem_id": str(problem), "sample": 0, "small_prompt_ids": [],
                     "large_prompt_ids": large_prompt,
                     "segments": [{"model": "large", "token_ids": list(range(1500)), "text": "l", "forced": False}]})
    with open(out / "samples.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    if chunk_tokens is not None:
        (out / "summary.json").write_text(json.dumps({"settings": {"chunk_tokens": chunk_tokens}}), encoding="utf-8")
    return rows


def test_simulate_reads_an_evaluations_real_segments(tmp_path: Path) -> None:
    out = tmp_path / "eval-out"
    rows = write_evaluation(out, chunk_tokens=32)
    report = json.loads(ok(run_cli("evaluate", "simulate", "--evaluation", out, "--profile", "a6000-paper",
                                   "--sequential", "--json")).stdout)
    learned = [row for row in rows if row["mode"] == "learned"]
    projections = [project_latency(segments_from_records(row["segments"]), PAPER,
                                   small_prompt_tokens=len(row["small_prompt_ids"]),
                                   large_prompt_tokens=len(row["large_prompt_ids"]), chunk_tokens=32,
                                   schedule="sequential") for row in learned]
    mean_pair = sum(p.pair_s for p in projections) / 3
    mean_alone = sum(p.large_alone_s for p in projections) / 3
    assert report["samples"] == 3 and report["mode"] == "learned" and report["chunk_tokens"] == 32
    assert report["schedule"] == "sequential"
    assert report["pair_s"] == pytest.approx(mean_pair) and report["large_alone_s"] == pytest.approx(mean_alone)
    assert report["speedup"] == pytest.approx(mean_alone / mean_pair)
    assert report["sequential"]["pair_s"] == pytest.approx(mean_pair)
    assert report["pipelined"]["pair_s"] < report["sequential"]["pair_s"]
    assert report["handoffs"] == 2
    large_tokens = sum(len(s["token_ids"]) for row in learned for s in row["segments"] if s["model"] == "large")
    assert report["large_tokens"] == pytest.approx(large_tokens / 3)
    # against the large model's own (longer) answers in the same run
    assert report["large_runs_s"] == pytest.approx(180 / PAPER.large_prefill + 1500 / 16)
    assert report["speedup_vs_large_runs"] == pytest.approx(report["large_runs_s"] / mean_pair)


@pytest.mark.slow
def test_simulate_on_the_command_line_reproduces_the_paper(tmp_path: Path) -> None:
    for share, figure in PAPER_FIGURES.items():
        rounded = json.loads(ok(run_cli("evaluate", "simulate", "--profile", "a6000-paper", "--offload-share",
                                        share, "--paper-rounding", "--json")).stdout)
        assert round(rounded["speedup"], 1) == figure
        assert rounded["large_alone_s"] == pytest.approx(2048 / PAPER.large_prefill + 16384 / 16)
    exact = json.loads(ok(run_cli("evaluate", "simulate", "--small-prefill", "28868.4664", "--small-decode", "141",
                                  "--large-prefill", "2594.868088", "--large-decode", "16",
                                  "--offload-share", "0.0135", "--json")).stdout)
    assert exact["speedup"] == pytest.approx(7.93, abs=0.01) and exact["rates"]["source"] == "the command line"
    # a rate on the command line overrides the profile's
    faster = json.loads(ok(run_cli("evaluate", "simulate", "--profile", "a6000-paper", "--large-decode", "32",
                                   "--offload-share", "0.05", "--json")).stdout)
    assert faster["rates"]["large_decode"] == 32 and "large decode from the command line" in faster["rates"]["source"]
    table = ok(run_cli("evaluate", "simulate", "--gpu", "a100", "--small-params", "1.5", "--large-params", "32",
                       "--offload-share", "0.05")).stdout
    assert "pipelined" in table and "sequential" in table and "roofline on NVIDIA A100" in table
    config = tmp_path / "simulate.toml"
    config.write_text('profile = "a6000-paper"\noffload-share = 0.05\npaper-rounding = true\n', encoding="utf-8")
    from_config = json.loads(ok(run_cli("evaluate", "simulate", "--config", config, "--json")).stdout)
    assert round(from_config["speedup"], 1) == 6.4


@pytest.mark.slow
def test_simulate_bad_input_is_one_line(tmp_path: Path) -> None:
    paper = ("--profile", "a6000-paper")
    cases = [
        ((*paper,), "--offload-share"),
        ((*paper, "--offload-share", "0.1", "--evaluation", tmp_path), "one of the two"),
        ((*paper, "--evaluation", tmp_path / "absent"), "not found"),
        ((*paper, "--evaluation", tmp_path), "holds no samples.jsonl"),
        (("--offload-share", "0.1"), "no rate for --small-prefill"),
        (("--profile", "nope", "--offload-share", "0.1"), "neither a shipped profile"),
        (("--gpu", "b300", "--small-params", "1", "--large-params", "8", "--offload-share", "0.1"), "'b300' is not one of"),
        (("--gpu", "a100", "--offload-share", "0.1"), "--small-params"),
        ((*paper, "--offload-share", "1.5"), "offload-share"),
        (("--gpu", "a100", "--small-params", "1.5e9", "--large-params", "32", "--offload-share", "0.1"),
         "parameters in billions (1.5 for a 1.5B model)"),
    ]
    for args, needle in cases:
        assert_one_clean_error(run_cli("evaluate", "simulate", *args), needle)
    write_evaluation(tmp_path / "out")
    assert_one_clean_error(run_cli("evaluate", "simulate", *paper, "--evaluation", tmp_path / "out", "--mode",
                                   "random"), "no samples of mode 'random'", "large, learned")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "samples.jsonl").write_text(json.dumps({"mode": "learned", "segments": []}) + "\n", encoding="utf-8")
    assert_one_clean_error(run_cli("evaluate", "simulate", *paper, "--evaluation", broken), "small_prompt_ids")
    profile = tmp_path / "bad.toml"
    profile.write_text("[small]\nprefill = 10\ndecode = 0\n[large]\nprefill = 1\ndecode = 1\n", encoding="utf-8")
    assert_one_clean_error(run_cli("evaluate", "simulate", "--profile", profile, "--offload-share", "0.1"),
                           "small.decode")

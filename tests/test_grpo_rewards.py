"""GRPO's reward functions on hand-written completions: balanced, nested, unclosed, empty, tags
after the answer, no answer, right and wrong answers; the offload and latency scores' shapes; the
TRL callables on a batch (real math-verify in worker processes)."""

from __future__ import annotations

import pytest

from splitreason.evaluate.latency import Rates, Segment
from splitreason.train.rewards import (RewardFunctions, correctness_reward, format_reward, latency_reward,
                                       offload_reward, parse_reward_weights, tag_faults, text_pieces)

PAPER = Rates(small_prefill=28_868, small_decode=141, large_prefill=2_595, large_decode=16)

BALANCED = "<think>\nEasy. <bigmodel>Hard step: 12*13=156.</bigmodel> Done.\n</think>\n\nThe answer is \\boxed{156}."
NESTED = "<think>a <bigmodel>b <bigmodel>c</bigmodel> d</bigmodel></think> The answer is \\boxed{1}."
UNCLOSED = "<think>a <bigmodel>b c d</think> The answer is \\boxed{1}."
EMPTY = "<think>a <bigmodel> </bigmodel> b</think> The answer is \\boxed{1}."
STRAY_CLOSE = "<think>a </bigmodel> b</think> The answer is \\boxed{1}."
AFTER_ANSWER = "<think>a b</think> The answer is \\boxed{1}. <bigmodel>more</bigmodel>"
NO_ANSWER = "<think>a <bigmodel>b</bigmodel> c and I keep thinking about it"
NO_TAGS = "<think>a b</think> The answer is \\boxed{7}."


@pytest.mark.parametrize(("text", "faults"), [
    (BALANCED, []), (NO_TAGS, []), (NO_ANSWER, []),
    (NESTED, ["nested"]), (UNCLOSED, ["unclosed"]), (EMPTY, ["empty"]),
    (STRAY_CLOSE, ["close without open"]), (AFTER_ANSWER, ["after the answer"]),
])
def test_format_faults(text, faults):
    assert tag_faults(text) == faults
    assert format_reward(text) == (1.0 if not faults else -1.0)


def test_pieces_split_by_model_and_unclosed_runs_to_the_end():
    assert text_pieces(BALANCED)[1] == ("large", "Hard step: 12*13=156.")
    assert [m for m, _ in text_pieces(BALANCED)] == ["small", "large", "small"]
    assert text_pieces(UNCLOSED)[-1] == ("large", "b c d</think> The answer is \\boxed{1}.")
    assert text_pieces(STRAY_CLOSE) == [("small", "<think>a  b</think> The answer is \\boxed{1}.")]
    for text in (BALANCED, NESTED, UNCLOSED, EMPTY, STRAY_CLOSE, AFTER_ANSWER, NO_ANSWER, NO_TAGS):
        assert "".join(piece for _, piece in text_pieces(text)) == text.replace("<bigmodel>", "").replace("</bigmodel>", "")


def test_offload_reward_peaks_at_the_target_and_falls_smoothly_on_both_sides():
    at = offload_reward(0.05, target=0.05, tolerance=0.05)
    assert at == pytest.approx(1.0)
    below, above = offload_reward(0.0, target=0.05, tolerance=0.05), offload_reward(0.10, target=0.05, tolerance=0.05)
    assert below == pytest.approx(above) and -1 < below < at  # symmetric, smooth (no cliff at 0)
    assert offload_reward(0.5, target=0.05, tolerance=0.05) == pytest.approx(-1.0, abs=1e-6)
    assert offload_reward(0.06, target=0.05, tolerance=0.05) > offload_reward(0.08, target=0.05, tolerance=0.05)


def test_latency_reward_against_the_large_model_alone():
    small_only = latency_reward([Segment("small", 1000)], PAPER, prompt_tokens=200)
    some = latency_reward([Segment("small", 900), Segment("large", 100)], PAPER, prompt_tokens=200)
    large_only = latency_reward([Segment("large", 1000)], PAPER, prompt_tokens=200)
    assert 0.8 < small_only < 1  # 141 vs 16 tokens/s: about 1 - 16/141
    assert large_only == pytest.approx(0.0, abs=0.01)
    assert small_only > some > large_only
    assert latency_reward([], PAPER, prompt_tokens=10) == 0.0


def test_correctness_and_weights():
    assert correctness_reward(True) == 1.0 and correctness_reward(False) == 0.0
    assert parse_reward_weights("correctness=2,latency=0") == {"correctness": 2.0, "format": 0.5, "offload": 0.5,
                                                                "latency": 0.0}
    for bad in ("speed=1", "correctness", "format=x", "correctness=0,format=0,offload=0,latency=0"):
        with pytest.raises(ValueError):
            parse_reward_weights(bad)


def test_trl_callables_on_a_batch():
    """Right, wrong and missing answers graded by math-verify (gold first) in worker processes; the
    offload share from token ids split at single-token tags; every reward logged as a metric."""
    from splitreason.evaluate.grading import Grader

    texts = [BALANCED, "<think>x</think> The answer is \\boxed{155}.", NO_ANSWER, "The answer is $\\frac{1}{2}$."]
    golds = ["156", "156", "3", "0.5"]
    # ids: 1 = <bigmodel>, 2 = </bigmodel>, others plain
    ids = [[5, 5, 1, 6, 6, 2, 5, 5, 5, 5], [5] * 10, [5, 1, 6, 2], [5, 5]]
    logged: dict[str, float] = {}
    with Grader(workers=1) as grader:
        rewards = RewardFunctions(grader=grader, rates=PAPER, weights=parse_reward_weights("latency=1"),
                                  target_offload=0.2, tolerance=0.1, open_id=1, close_id=2, count_tokens=len)
        functions = rewards.functions()
        assert [f.__name__ for f in functions] == ["correctness", "format", "offload", "latency"]
        kwargs = dict(prompts=["p"] * 4, completions=texts, completion_ids=ids, answer=golds, prompt_tokens=[20] * 4,
                      log_metric=lambda name, value: logged.__setitem__(name, value))
        correctness, fmt, offload, latency = (f(**kwargs) for f in functions)
    assert correctness == [1.0, 0.0, 0.0, 1.0]
    assert [v["status"] for v in (s.verdict for s in rewards.last)] == ["correct", "wrong", "no_answer", "correct"]
    assert fmt == [1.0, 1.0, 1.0, 1.0]
    assert rewards.last[0].offload_share == pytest.approx(2 / 8)
    assert offload[0] > offload[1]  # 25 % is near the 20 % target, 0 % is not
    assert latency[1] > latency[0] > 0
    assert logged["accuracy"] == 0.5 and logged["offload_share"] == pytest.approx((0.25 + 0.5) / 4)


def test_runtime_segments_are_used_as_given():
    """A true-offload rollout brings what each model wrote; the text's tags are not re-split."""
    rewards = RewardFunctions(grader=None, rates=PAPER, weights=parse_reward_weights(""), target_offload=0.05,
                              tolerance=0.05, open_id=None, close_id=None, count_tokens=lambda text: len(text.split()))
    segments = [[{"model": "small", "tokens": 90}, {"model": "large", "tokens": 10, "forced": True}]]
    share = rewards._offload(prompts=["p"], completions=["whatever"], completion_ids=[[1]], segments=segments)
    assert rewards.last[0].offload_share == pytest.approx(0.1)
    assert share == [pytest.approx(offload_reward(0.1, target=0.05, tolerance=0.05))]
    # text tags: pieces counted with the tokenizer's count
    rewards.last = []
    rewards._offload(prompts=["p"], completions=["a b <bigmodel>c d</bigmodel>"], completion_ids=[[1]])
    assert rewards.last[0].offload_share == pytest.approx(0.5)

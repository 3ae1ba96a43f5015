"""`train grpo --true-offload`: rollouts through the handoff runtime with the tiny tagged model as
the policy and the evaluator's tiny "large" model (same tokenizer, noisy weights), in this process
or behind a real vLLM (CPU) server. The large model's tokens and every close the runtime inserted
stay out of the loss; an unreachable --large URL is one line."""

from __future__ import annotations

import json

import pytest

from tests.helpers import assert_one_clean_error, free_port, read_jsonl
from tests.offload_fixtures import run_cli
from tests.tiny_model import build_tiny_model

FAST = ("--num-generations", "2", "--batch-size", "2", "--max-completion-length", "48", "--no-progress",
        "--seed", "0", "--chunk-tokens", "8")


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    path = tmp_path_factory.mktemp("grpo_to") / "problems.jsonl"
    rows = [{"id": f"q{i}", "problem": f"Problem {i}: work out the value step by step.", "answer": str(i)}
            for i in range(4)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_closes_inserted_by_the_runtime_are_out_of_the_loss_and_sampled_ones_in():
    from splitreason.train.true_offload import _closes_out_of_loss

    # 1 = <bigmodel>, 2 = </bigmodel>; the runtime's mask: 0 on the large model's tokens (7, 7)
    ids, mask = [5, 1, 7, 7, 2, 5, 2, 5], [1, 1, 0, 0, 1, 1, 1, 1]
    assert _closes_out_of_loss(ids, mask, (2,)) == [1, 1, 0, 0, 0, 1, 1, 1]  # the stray close (sampled) stays in
    assert _closes_out_of_loss([5, 1, 7, 8, 9, 5], [1, 1, 0, 1, 1, 1], (8, 9)) == [1, 1, 0, 0, 0, 1]  # text tags


@pytest.mark.slow
def test_true_offload_rollouts_keep_the_large_models_tokens_out_of_the_loss(tagged_model, large_model, problems,
                                                                            tmp_path):
    from splitreason.models.loading import load_causal_lm
    from splitreason.schemas.training import TrainRecord

    out = tmp_path / "out"
    # a --large the policy cannot share ids with fails before OUT exists, so the corrected command runs as it is
    other = build_tiny_model(tmp_path / "other")
    failed = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", out, *FAST,
                     "--steps", "2", "--true-offload", "--large", other)
    assert_one_clean_error(failed, "do not share a vocabulary")
    assert not out.exists()
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", out, *FAST,
                     "--steps", "2", "--true-offload", "--large", large_model)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "true offload" in result.stdout
    record = TrainRecord.read(out)
    assert record.kind == "grpo" and record.grpo["true_offload"] and record.steps == 2
    load_causal_lm(out, device="cpu")
    # OUT loads in the offload evaluator as it is (train.json's prompt, the tags as tokens)
    evaluated = run_cli("evaluate", "offload", "--small", out, "--large", large_model, "--eval-set", problems,
                        "--mode", "learned", "--max-tokens", "16", "--limit", "1", "-o", tmp_path / "eval", "--no-progress")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert (tmp_path / "eval" / "samples.jsonl").is_file()

    rollouts = read_jsonl(out / "rollouts.jsonl")
    # --max-completion-length 48 caps the whole completion: tags and the end of turn count
    assert all(0 < rollout["completion_tokens"] <= 48 for rollout in rollouts)
    offloaded = [r for r in rollouts if any(s["model"] == "large" and s["tokens"] for s in r["segments"])]
    assert offloaded, "no rollout handed a segment to the large model"
    for rollout in offloaded:
        large = sum(s["tokens"] for s in rollout["segments"] if s["model"] == "large")
        small = sum(s["tokens"] for s in rollout["segments"] if s["model"] == "small")
        out_of_loss = sum(count for value, count in rollout["loss_mask"] if value == 0)
        closes = rollout["text"].count("</bigmodel>")
        # out of the loss: every large token, and each close ending a large segment (+ an end of
        # turn the large model wrote); in it: the policy's own tokens and the open tags it chose
        segments = sum(1 for s in rollout["segments"] if s["model"] == "large")
        assert large + segments <= out_of_loss <= large + closes + 1
        assert rollout["tokens_in_loss"] == rollout["completion_tokens"] - out_of_loss
        assert rollout["tokens_in_loss"] >= small
        # loss_mask and each segment's share of it are read from the masks TRL trained with
        assert all(s["tokens_in_loss"] == 0 and not s["in_loss"] for s in rollout["segments"] if s["model"] == "large")
        assert all(s["tokens_in_loss"] == s["tokens"] for s in rollout["segments"] if s["model"] == "small")
        assert rollout["offload_share"] == pytest.approx(large / (large + small))
        assert rollout["segments"][0]["written_by"] == "small" and "large" in {s["written_by"] for s in rollout["segments"]}


@pytest.mark.parametrize("large", ["/nonexistent/large-model", "someone/large-model-not-cached"],
                         ids=["missing-path", "offline-hub-id"])
def test_a_large_model_that_cannot_load_is_one_line_before_out_exists(tagged_model, problems, tmp_path, large):
    """Checked before OUT is created (a failed start leaves no OUT to block the corrected rerun);
    a vocabulary the policy does not share is the slow test's first run, followed by the rerun."""
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "out", *FAST,
                     "--true-offload", "--large", large)
    assert result.returncode != 0
    assert_one_clean_error(result, large)
    assert not (tmp_path / "out").exists()


def _rollouts(tagged_model, large_model, problems, tmp_path, **overrides):
    """TRL's rollout function as `train grpo --true-offload` builds it, with the policy loaded here."""
    from splitreason.evaluate.handoff import HFRunner
    from splitreason.models.loading import load_causal_lm
    from splitreason.models.tokenizer import load_tokenizer
    from splitreason.schemas.grpo import GRPOSettings
    from splitreason.train.grpo import model_prompt
    from splitreason.train.true_offload import TrueOffloadRollouts, check_large_tokenizer

    settings = GRPOSettings(model=str(tagged_model), problems=str(problems), out=tmp_path / "out", true_offload=True,
                            large=str(large_model), chunk_tokens=4, **overrides)
    tokenizer = load_tokenizer(tagged_model)
    prompt, _ = model_prompt(settings, tokenizer)
    tokenizer.chat_template = prompt.chat_template
    problem = "Problem 3: work out the value step by step."
    messages = prompt.messages(problem)
    rollouts = TrueOffloadRollouts.create(settings, tokenizer, {messages[-1]["content"]: problem},
                                          large_tokenizer=check_large_tokenizer(settings, tokenizer))
    policy = load_causal_lm(tagged_model, device="cpu")
    return rollouts, policy, HFRunner(policy, tokenizer), messages


def test_the_completion_with_its_tags_and_end_of_turn_never_passes_max_completion_length(
        tagged_model, large_model, problems, tmp_path):
    """The tiny policy opens a segment after ~12 tokens: limits around that end rollouts inside a
    segment or just after one, where the tags (and an end of turn) used to come on top."""
    tagged = 0
    for limit in (16, 20, 24):
        rollouts, _, small, messages = _rollouts(tagged_model, large_model, problems, tmp_path,
                                                 max_completion_length=limit, temperature=1.0)
        for seed in range(6):
            _, ids, mask, segments = rollouts.rollout(small, messages, seed)
            assert len(mask) == len(ids) <= limit, (limit, seed, segments)
            tagged += any(s["model"] == "large" for s in segments)
    assert tagged >= 3, "too few rollouts handed a segment to the large model: the tags were not exercised"


def test_the_end_of_turn_appended_is_the_one_the_policy_sampled(tagged_model, large_model, problems, tmp_path):
    """A model whose generation config lists two end-of-turn ids: the rollout ends with the one
    the policy wrote, in the loss, not the tokenizer's."""
    from dataclasses import replace

    import torch

    from splitreason.evaluate.handoff import Sampling

    rollouts, policy, small, messages = _rollouts(tagged_model, large_model, problems, tmp_path)
    rollouts.handoff = replace(rollouts.handoff, sampling=Sampling(temperature=0.0))
    tokenizer = rollouts.tokenizer
    prompt_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    with torch.no_grad():
        first = int(policy(input_ids=torch.tensor([prompt_ids])).logits[0, -1].argmax())
    assert first != tokenizer.eos_token_id and first not in rollouts.tags.all_ids
    policy.generation_config.eos_token_id = [tokenizer.eos_token_id, first]
    small = type(small)(policy, tokenizer)
    _, ids, mask, _ = rollouts.rollout(small, messages, 0)
    assert ids == [first] and mask == [1]


def test_the_end_of_turn_of_a_trace_is_the_sampled_one_else_the_fallback():
    from splitreason.evaluate.handoff import TraceResult
    from splitreason.train.true_offload import end_of_turn

    def trace(finish, eos_id):
        return TraceResult(text="", segments=[], completion_ids=[], completion_mask=[], finish=finish, eos_id=eos_id)

    assert end_of_turn(trace("eos", 7), 2) == 7
    assert end_of_turn(trace("eos", None), 2) == 2  # a large model behind a server that did not say
    assert end_of_turn(trace("max_tokens", None), 2) is None


def test_an_unreachable_large_url_is_one_line(tagged_model, problems, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "out", *FAST,
                     "--true-offload", "--large", url)
    assert result.returncode == 1
    assert_one_clean_error(result, url, "does not answer")
    assert not (tmp_path / "out").exists()


@pytest.mark.vllm
@pytest.mark.slow
def test_the_large_model_behind_a_vllm_server(tagged_model, large_model, problems, tmp_path):
    """--large URL: issue12's OpenAI-compatible backend writes the segments; the policy stays local."""
    from pathlib import Path

    from tests.vllm_fixtures import require_vllm_venv
    from tests.vllm_server import start_vllm_server

    venv = require_vllm_venv()
    with start_vllm_server(Path(large_model), venv=venv, max_model_len=2048,
                           extra_args=["--dtype", "float32", "--enforce-eager"]) as url:
        result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "out",
                         *FAST, "--steps", "1", "--true-offload", "--large", url)
    assert result.returncode == 0, result.stderr[-3000:]
    rollouts = read_jsonl(tmp_path / "out" / "rollouts.jsonl")
    assert any(s["model"] == "large" and s["tokens"] for r in rollouts for s in r["segments"])
    assert all(rollout["tokens_in_loss"] < rollout["completion_tokens"] for rollout in rollouts
               if any(s["model"] == "large" for s in rollout["segments"]))

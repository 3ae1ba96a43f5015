"""The handoff runtime on the CPU with the shared tiny tagged model (small) and a perturbed copy of
it (large, same tokenizer): token by token against the slow reference that probes the small model
on every prefix, one forward pass per close check, traces ending inside a segment, forced closes,
cache crops, tags that are text, reproducible sampling and the random baseline."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from splitreason import CLOSE_TAG, OPEN_TAG  # noqa: E402
from splitreason.evaluate.handoff import (HandoffSettings, HFRunner, RandomPlan, Sampling,  # noqa: E402
                                          check_shared_vocabulary, find_close, run_trace, tag_ids_of)
from splitreason.evaluate.handoff.reference import reference_trace  # noqa: E402


@pytest.fixture(scope="module")
def pair(tagged_model, large_model):
    import torch

    torch.set_num_threads(1)
    small, large = HFRunner.load(str(tagged_model)), HFRunner.load(str(large_model))
    check_shared_vocabulary(small.tokenizer, large.tokenizer)
    return small, large


@pytest.fixture(scope="module")
def problems(offload_export):
    rows = [json.loads(line) for line in offload_export.heldout.read_text().splitlines()]
    return [row["messages"][0]["content"].split("\n\n")[0] for row in rows[:8:2]]


def prompts(pair, tagged_model, problem):
    from splitreason.schemas.training import TrainRecord

    small, large = pair
    record = TrainRecord.read(tagged_model)
    small_ids = small.tokenizer(record.prompt.render(small.tokenizer, problem), add_special_tokens=False)["input_ids"]
    large_text = large.tokenizer.apply_chat_template([{"role": "user", "content": problem}], tokenize=False,
                                                     add_generation_prompt=True)
    return small_ids, large.tokenizer(large_text, add_special_tokens=False)["input_ids"]


def run_both(pair, tagged_model, problem, settings):
    small, large = pair
    small_ids, large_ids = prompts(pair, tagged_model, problem)
    tags = tag_ids_of(small.tokenizer)
    fast = run_trace(small, large, small_prompt_ids=small_ids, large_prompt_ids=large_ids, tags=tags,
                     settings=settings)
    slow = reference_trace(small.model, large.model, small_prompt_ids=small_ids, large_prompt_ids=large_ids,
                           tags=tags, settings=settings, small_eos=small.eos_ids, large_eos=large.eos_ids,
                           large_banned=tags.all_ids)
    return fast, slow


def as_tuples(result):
    return [(segment.model, segment.token_ids, segment.forced) for segment in result.segments]


def test_learned_handoff_matches_the_per_prefix_reference_token_by_token(pair, tagged_model, problems):
    settings = HandoffSettings(chunk_tokens=8, max_segment_tokens=40, max_tokens=220)
    found = forced = 0
    for problem in problems:
        fast, slow = run_both(pair, tagged_model, problem, settings)
        assert fast.completion_ids == slow.completion_ids
        assert as_tuples(fast) == slow.segments
        assert (fast.finish, fast.ended_in_segment) == (slow.finish, slow.ended_in_segment)
        found += sum(segment.forced is False for segment in fast.segments)
        forced += fast.forced_closes
        # the reference probes the small model after every large token; the runtime once per chunk
        large_tokens = fast.tokens_by_model()["large"]
        assert slow.probes == large_tokens
        assert fast.close_checks <= slow.probes
        assert fast.forward_passes["small"] <= slow.forward_passes["small"]
        assert fast.text.count(OPEN_TAG) == fast.text.count(CLOSE_TAG) == fast.handoffs
    assert found > 0, "no segment was closed by the small model: the test does not exercise the close check"


def test_close_check_is_one_forward_pass_per_chunk(pair, tagged_model, problems):
    small, large = pair
    calls = []

    class Counting:
        """Wraps the small model's session and records the passes each close check costs."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        @property
        def forward_passes(self):
            return self.inner.forward_passes

        def next_token_views(self, context, start, watch):
            before = self.inner.forward_passes
            views = self.inner.next_token_views(context, start, watch)
            calls.append((len(context) - start, self.inner.forward_passes - before))
            return views

    class CountingRunner:
        def __init__(self, inner):
            self.inner = inner
            self.eos_ids, self.vocab_size, self.tokenizer = inner.eos_ids, inner.vocab_size, inner.tokenizer

        def session(self, seed):
            return Counting(self.inner.session(seed))

        def decode(self, ids):
            return self.inner.decode(ids)

    settings = HandoffSettings(chunk_tokens=8, max_segment_tokens=40, max_tokens=220)
    small_ids, large_ids = prompts(pair, tagged_model, problems[0])
    result = run_trace(CountingRunner(small), large, small_prompt_ids=small_ids, large_prompt_ids=large_ids,
                       tags=tag_ids_of(small.tokenizer), settings=settings)
    assert result.handoffs > 0
    assert len(calls) == result.close_checks > 0
    assert all(passes == 1 for _, passes in calls)  # the whole chunk in one pass
    assert all(1 <= chunk <= settings.chunk_tokens for chunk, _ in calls)
    # every other small-model pass is one generated token (or its end of turn)
    small_steps = result.forward_passes["small"] - result.close_checks
    generated = sum(len(s.token_ids) for s in result.segments if s.model == "small") + result.handoffs
    assert small_steps == generated + (1 if result.finish == "eos" and not result.ended_in_segment else 0)


def test_a_trace_ending_inside_a_segment_is_closed_once(pair, tagged_model, problems):
    settings = HandoffSettings(chunk_tokens=8, max_segment_tokens=40, max_tokens=400)
    full, _ = run_both(pair, tagged_model, problems[0], settings)
    first_large = next(index for index, segment in enumerate(full.segments)
                       if segment.model == "large" and len(segment.token_ids) > 2)
    before = sum(len(segment.token_ids) for segment in full.segments[:first_large])
    cut = HandoffSettings(chunk_tokens=8, max_segment_tokens=40, max_tokens=before + 2)
    fast, slow = run_both(pair, tagged_model, problems[0], cut)
    assert fast.ended_in_segment and slow.ended_in_segment and fast.finish == "max_tokens"
    assert as_tuples(fast) == slow.segments
    assert fast.segments[-1].model == "large" and len(fast.segments[-1].token_ids) == 2
    assert fast.text.endswith(CLOSE_TAG) and not fast.text.endswith(CLOSE_TAG * 2)
    assert fast.text.count(CLOSE_TAG) == fast.text.count(OPEN_TAG)
    tags = tag_ids_of(pair[0].tokenizer)
    assert fast.completion_ids[-1] == tags.close_ids[-1] and fast.completion_mask[-1] == 0


def test_forced_closes_match_the_reference_and_crop_the_cache(pair, tagged_model, problems):
    settings = HandoffSettings(chunk_tokens=3, max_segment_tokens=2, max_tokens=100)
    for problem in problems[:1]:
        fast, slow = run_both(pair, tagged_model, problem, settings)
        assert as_tuples(fast) == slow.segments
        assert fast.forced_closes > 0
        for segment in fast.segments:
            if segment.model == "large":
                assert len(segment.token_ids) <= 2
    # a close inside a chunk drops the chunk's rest from both caches
    small, large = pair
    small_ids, large_ids = prompts(pair, tagged_model, problems[0])
    sessions = []
    original = HFRunner.session

    def keep(self, seed):
        session = original(self, seed)
        sessions.append((self, session))
        return session

    HFRunner.session = keep
    try:
        result = run_trace(small, large, small_prompt_ids=small_ids, large_prompt_ids=large_ids,
                           tags=tag_ids_of(small.tokenizer),
                           settings=HandoffSettings(chunk_tokens=16, max_segment_tokens=64, max_tokens=220))
    finally:
        HFRunner.session = original
    closed_early = [s for s in result.segments if s.model == "large" and s.forced is False and len(s.token_ids) % 16]
    assert closed_early, "no segment closed inside a chunk: the crop is not exercised"
    large_session = next(session for runner, session in sessions if runner is large)
    small_session = next(session for runner, session in sessions if runner is small)
    assert large_session.cropped_tokens > 0 and small_session.cropped_tokens > 0


def test_text_tags_screen_on_the_first_token_and_confirm_in_a_counted_pass(offload_export):
    """The base model has no tag tokens: its tags are text. find_close against per-prefix probing."""
    import torch

    from splitreason.evaluate.handoff.reference import _Model, _probe_close
    from splitreason.evaluate.handoff.types import TraceResult

    runner = HFRunner.load(str(offload_export.base_model))
    tags = tag_ids_of(runner.tokenizer)
    assert not tags.single and len(tags.close_ids) > 1
    context = runner.tokenizer("We add 3 and 4 to get 7. Multiplying 12 by 13 gives 156.",
                               add_special_tokens=False)["input_ids"]
    chunk = 10
    for threshold in (1e-6, 1e-3):
        result = TraceResult(text="", segments=[], completion_ids=[], completion_mask=[], finish="eos")
        session = runner.session(0)
        found = find_close(session, context, chunk, tags, threshold, result)
        counts = {"small": 0}
        probe = _Model(runner.model, "small", counts)
        expected = next((index for index in range(chunk)
                         if _probe_close(probe, context[: len(context) - chunk + index + 1], tags, threshold)), None)
        assert found == expected
        assert result.close_checks == 1
        assert session.forward_passes == 1 + result.confirm_passes
        if threshold == 1e-6:
            assert result.confirm_passes >= 1  # candidates were screened and confirmed
    torch.manual_seed(0)


def test_sampling_is_reproducible_from_the_seed(pair, tagged_model, problems):
    small, large = pair
    small_ids, large_ids = prompts(pair, tagged_model, problems[1])
    settings = HandoffSettings(chunk_tokens=8, max_tokens=120, sampling=Sampling(temperature=1.0, top_p=0.9))
    runs = [run_trace(small, large, small_prompt_ids=small_ids, large_prompt_ids=large_ids,
                      tags=tag_ids_of(small.tokenizer), settings=settings, seed=seed) for seed in (3, 3, 4)]
    assert runs[0].completion_ids == runs[1].completion_ids
    assert runs[0].completion_ids != runs[2].completion_ids


def test_modes_small_large_and_random(pair, tagged_model, problems):
    small, large = pair
    tags = tag_ids_of(small.tokenizer)
    small_ids, large_ids = prompts(pair, tagged_model, problems[2])
    settings = HandoffSettings(chunk_tokens=8, max_tokens=150)
    alone = run_trace(small, large, small_prompt_ids=small_ids, large_prompt_ids=large_ids, tags=tags,
                      settings=settings, mode="small")
    assert alone.handoffs == 0 and OPEN_TAG not in alone.text and all(alone.completion_mask)
    assert alone.forward_passes["large"] == 0
    big = run_trace(small, large, small_prompt_ids=small_ids, large_prompt_ids=large_ids, tags=tags,
                    settings=settings, mode="large")
    assert [segment.model for segment in big.segments] == ["large"] and big.forward_passes["small"] == 0
    plan = RandomPlan(share=0.3, segment_tokens=5)
    randoms = [run_trace(small, large, small_prompt_ids=small_ids, large_prompt_ids=large_ids, tags=tags,
                         settings=HandoffSettings(chunk_tokens=8, max_tokens=150), mode="random", seed=seed,
                         random_plan=plan) for seed in (1, 1)]
    assert randoms[0].completion_ids == randoms[1].completion_ids
    random_run = randoms[0]
    assert random_run.close_checks == 0 and random_run.handoffs > 0
    lengths = random_run.large_segment_lengths()
    assert all(length == 5 for length in lengths[:-1]) and lengths[-1] <= 5
    # a segment that ends at its planned length is the plan, not a forced close
    large_segments = [segment for segment in random_run.segments if segment.model == "large"]
    assert not any(segment.forced for segment in large_segments[:-1])
    assert random_run.forced_closes == int(random_run.ended_in_segment) == sum(bool(s.forced) for s in large_segments)
    # the tags the runtime placed are not the small model's choice
    assert sum(random_run.completion_mask) == random_run.tokens_by_model()["small"]


def test_a_live_model_in_training_mode_without_a_cache_writes_the_same_trace(tagged_model, problems):
    """GRPO hands its policy in as an object; with gradient checkpointing in training mode
    transformers returns no cache, and the runtime must then re-read the whole context."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tagged_model))
    model = AutoModelForCausalLM.from_pretrained(str(tagged_model))
    runner = HFRunner(model, tokenizer)
    small_ids = tokenizer(f"<|im_start|>user\n{problems[0]}<|im_end|>\n<|im_start|>assistant\n",
                          add_special_tokens=False)["input_ids"]
    settings = HandoffSettings(chunk_tokens=8, max_tokens=60)
    tags = tag_ids_of(tokenizer)
    model.eval()
    cached = run_trace(runner, runner, small_prompt_ids=small_ids, large_prompt_ids=small_ids, tags=tags,
                       settings=settings)
    model.gradient_checkpointing_enable()
    model.train()
    uncached = run_trace(runner, runner, small_prompt_ids=small_ids, large_prompt_ids=small_ids, tags=tags,
                         settings=settings)
    assert uncached.completion_ids == cached.completion_ids


@pytest.fixture(scope="module")
def text_tag_model(offload_export, tmp_path_factory):
    """The shared recipe trained with `--tags text`: the tags stay text (8 tokens each here), as in
    the paper's released models."""
    from tests.offload_fixtures import train_tagged_model

    return train_tagged_model(tmp_path_factory.mktemp("texttags") / "model", offload_export.train,
                              offload_export.base_model, "--tags", "text")


@pytest.mark.slow
def test_text_tags_end_to_end_match_the_reference(text_tag_model, problems):
    """With tags that are text, whole traces match the per-prefix reference token by token, at the
    greedy rule and at a threshold; candidates are confirmed in counted second passes. The same
    model plays the large part (a text tag cannot be banned, so it may write tags as text too)."""
    from splitreason.evaluate.offload.prompts import PromptBuilder

    small = HFRunner.load(str(text_tag_model))
    large = HFRunner.load(str(text_tag_model))
    tags = tag_ids_of(small.tokenizer)
    assert not tags.single
    small_prompt = PromptBuilder.for_small(small.tokenizer, str(text_tag_model), None)
    large_prompt = PromptBuilder.for_large(large.tokenizer)
    confirmed = handoffs = 0
    for threshold in (None, 0.3):
        settings = HandoffSettings(chunk_tokens=8, max_segment_tokens=40, max_tokens=160, close_threshold=threshold)
        for problem in problems[:2]:
            small_ids, large_ids = small_prompt.ids(problem), large_prompt.ids(problem)
            fast = run_trace(small, large, small_prompt_ids=small_ids, large_prompt_ids=large_ids, tags=tags,
                             settings=settings)
            slow = reference_trace(small.model, large.model, small_prompt_ids=small_ids, large_prompt_ids=large_ids,
                                   tags=tags, settings=settings, small_eos=small.eos_ids, large_eos=large.eos_ids)
            assert fast.completion_ids == slow.completion_ids
            assert as_tuples(fast) == slow.segments
            assert fast.forward_passes["small"] <= slow.forward_passes["small"]
            confirmed += fast.confirm_passes
            handoffs += fast.handoffs
    assert handoffs > 0 and confirmed > 0

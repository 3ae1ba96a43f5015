"""The model home (splitreason/models): loading, the tags as tokens, teacher-forced scoring."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from splitreason import CLOSE_TAG, OPEN_TAG  # noqa: E402
from splitreason.models import ModelError  # noqa: E402
from splitreason.models.loading import load_causal_lm  # noqa: E402
from splitreason.models.scoring import score_sequences, windows  # noqa: E402
from splitreason.models.tags import add_tag_tokens, tag_tokens  # noqa: E402
from splitreason.models.tokenizer import load_tokenizer  # noqa: E402
from tests.tiny_model import build_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


def test_windows_score_every_position_once_with_context():
    for length, max_len, overlap in [(10, 4, 1), (100, 30, 10), (5, 5, 2), (31, 30, 10), (2, 2, 5)]:
        positions = []
        for start, end, first in windows(length, max_len, overlap):
            assert end - start <= max_len
            assert start == 0 or first - start >= min(overlap, max_len - 2)
            positions += range(first, end - 1)
        assert positions == list(range(length - 1))


def test_tags_become_single_non_special_tokens_with_mean_rows(tiny):
    tokenizer = load_tokenizer(tiny)
    model = load_causal_lm(tiny)
    assert not tag_tokens(tokenizer).single  # plain text before
    old_rows = model.get_input_embeddings().weight.shape[0]
    old_in = model.get_input_embeddings().weight[:old_rows].mean(0).clone()
    old_out = model.get_output_embeddings().weight[:old_rows].mean(0).clone()
    tags = add_tag_tokens(tokenizer, model)
    assert tags.single and tags.mode == "special"
    ids = tokenizer.encode(f"so {OPEN_TAG}x = 2{CLOSE_TAG} done", add_special_tokens=False)
    assert ids.count(tags.open_id) == 1 and ids.count(tags.close_id) == 1
    assert OPEN_TAG in tokenizer.decode(ids, skip_special_tokens=True)
    new_in = model.get_input_embeddings().weight[old_rows:]
    new_out = model.get_output_embeddings().weight[old_rows:]
    assert new_in.shape[0] == 2 and torch.allclose(new_in, old_in.expand_as(new_in))
    assert torch.allclose(new_out, old_out.expand_as(new_out))
    assert add_tag_tokens(tokenizer, model) == tags  # idempotent


def test_tied_embeddings_stay_tied_and_start_at_the_mean(tiny):
    # R1-Distill-Qwen-1.5B ties its input and output embeddings: the new rows are one matrix, set once.
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = load_tokenizer(tiny)
    config = AutoConfig.from_pretrained(tiny)
    config.tie_word_embeddings = True
    model = AutoModelForCausalLM.from_config(config)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    old_rows = model.get_input_embeddings().weight.shape[0]
    old = model.get_input_embeddings().weight.detach().clone()
    add_tag_tokens(tokenizer, model)
    weight = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight.data_ptr() == weight.data_ptr()  # still one matrix
    assert torch.equal(weight[:old_rows], old)  # the old rows untouched
    assert torch.allclose(weight[old_rows:], old.mean(0).expand(2, -1))


def test_scores_match_a_plain_forward_pass_and_windows_stay_close(tiny):
    tokenizer = load_tokenizer(tiny)
    model = load_causal_lm(tiny)
    texts = ["Let x = 3. Then 2x + 1 = 7, so the answer is 7.", "Wait, 17 \\times 23 = 391. " * 6]
    sequences = [tokenizer.encode(text, add_special_tokens=False) for text in texts]
    scores = score_sequences(model, sequences, watch=[5], batch_size=2, chunk=7)
    for ids, score in zip(sequences, scores):
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        expected = logprobs[:-1].gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)
        assert len(score.target_logprob) == len(ids) - 1
        assert torch.allclose(torch.tensor(score.target_logprob), expected, atol=1e-4)
        assert score.greedy_id == logprobs[:-1].argmax(-1).tolist()
        assert torch.allclose(torch.tensor(score.watched[5]), logprobs[:-1, 5], atol=1e-4)
    windowed = score_sequences(model, sequences, max_len=24, overlap=8)
    assert [len(s.target_logprob) for s in windowed] == [len(ids) - 1 for ids in sequences]
    assert windowed[0].target_logprob[:23] == pytest.approx(scores[0].target_logprob[:23], abs=1e-4)


def test_missing_model_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_causal_lm(tmp_path / "nope")
    with pytest.raises(ModelError, match="does not exist"):
        load_tokenizer(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a model directory"):
        load_causal_lm(tmp_path / "empty")

"""The offload runtime passes token ids both ways: a small model that can write an id the large
model does not know (a larger vocabulary beyond the tags, or a tokenizer with more ids than the
large model has embedding rows) is refused in one line before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import assert_one_clean_error
from tests.offload_fixtures import run_cli

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def vocabularies(tmp_path_factory):
    """Two tiny models whose byte-level BPEs are trained on the same text: 500 and 300 ids, the
    smaller one a prefix of the larger (same ids for the tokens both know)."""
    from tests.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("vocabularies")
    return build_tiny_model(root / "v500", vocab_size=500), build_tiny_model(root / "v300", vocab_size=300)


def _tokenizer(path):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(path))


def test_extra_small_model_tokens_beyond_the_tags_are_refused(vocabularies):
    from splitreason.evaluate.handoff import VocabularyMismatch, check_shared_vocabulary
    from splitreason.models.tags import add_tag_tokens

    bigger, smaller = (_tokenizer(path) for path in vocabularies)
    with pytest.raises(VocabularyMismatch, match="knows 200 tokens the large model does not"):
        check_shared_vocabulary(bigger, smaller)
    # the tags `train sft` adds are the only difference: fine (the large model never sees them)
    tagged = _tokenizer(vocabularies[1])
    add_tag_tokens(tagged)
    check_shared_vocabulary(tagged, smaller)
    # the large model's tokenizer lists ids its embedding cannot read
    with pytest.raises(VocabularyMismatch, match="has 300 embedding rows"):
        check_shared_vocabulary(bigger, _tokenizer(vocabularies[0]), large_rows=300)
    check_shared_vocabulary(tagged, smaller, large_rows=300)


def test_evaluate_offload_refuses_a_large_model_with_a_smaller_vocabulary(vocabularies, tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"id": "q0", "problem": "What is 1 + 1?", "answer": "2"}) + "\n")
    out = tmp_path / "out"
    small, large = vocabularies
    result = run_cli("evaluate", "offload", "--small", small, "--large", large, "--eval-set", eval_file, "-o", out,
                     "--mode", "random", "--offload-share", "0.5", "--max-tokens", "40", "--no-progress", timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert_one_clean_error(result, "does not", "same tokenizer")
    assert not Path(out).exists()

"""`splitreason train sft`: the shared tiny model trained through the CLI, what OUT holds, and
the label mask on a real row. Other behaviours (bad input, resume, LoRA, text tags, several
processes) are in tests/test_train_runs.py and tests/test_train_input.py."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")

from splitreason import CLOSE_TAG, OPEN_TAG  # noqa: E402
from splitreason.schemas.training import TrainRecord  # noqa: E402
from tests.offload_fixtures import TRAIN_ROWS  # noqa: E402

pytestmark = pytest.mark.slow


def test_out_loads_as_a_plain_model_with_both_tags_as_single_kept_tokens(tagged_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tagged_model)
    tokenizer = AutoTokenizer.from_pretrained(tagged_model)
    ids = tokenizer.encode(f"so {OPEN_TAG}17 * 23 = 391{CLOSE_TAG} done", add_special_tokens=False)
    open_id, close_id = tokenizer.convert_tokens_to_ids([OPEN_TAG, CLOSE_TAG])
    assert ids.count(open_id) == 1 and ids.count(close_id) == 1
    assert OPEN_TAG in tokenizer.decode(ids, skip_special_tokens=True)
    assert CLOSE_TAG in tokenizer.decode(ids, skip_special_tokens=True)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert model.get_output_embeddings().weight.shape[0] == len(tokenizer)
    # The chat template it was trained with travels with the tokenizer.
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Problem 1"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt.endswith("Assistant: ")


def test_train_json_records_data_prompt_versions_losses_and_tag_metrics(tagged_model, offload_export):
    record = TrainRecord.read(tagged_model)
    assert record.status == "done"
    assert record.data[0]["path"] == str(offload_export.train)
    assert len(record.data[0]["sha256"]) == 64 and record.data[0]["rows"] == TRAIN_ROWS
    rows = record.rows
    assert rows.read == TRAIN_ROWS and rows.train + rows.eval == TRAIN_ROWS
    assert rows.too_long == rows.refused == rows.truncated == 0 and rows.eval > 0
    assert 0.1 < record.tag_token_share < 0.3
    assert record.prompt.chat_template_source == "bundled:plain"
    assert record.prompt.instruction.startswith("While reasoning, wrap the steps")
    assert record.prompt.tags == "special" and len(record.prompt.open_ids) == 1
    assert record.settings["learning_rate"] == 3e-3 and record.settings["epochs"] == 3
    assert {"torch", "transformers", "trl", "peft", "accelerate", "splitreason"} <= set(record.versions)
    assert record.git_revision is None or len(record.git_revision.split("+")[0]) == 40
    assert record.losses["train_final"] < record.losses["train"][0]["loss"]
    assert record.losses["eval_final"] is not None
    assert record.tag_metrics.rows == rows.eval and record.tag_metrics.open_f1 >= 0.8
    assert record.model["vocab_after"] == record.model["vocab_before"] + 2
    assert record.hardware["precision"] == "fp32" and record.steps > 0 and record.tokens_seen > 0
    log = [json.loads(line) for line in (tagged_model / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if "loss" in entry][:2] == [1, 5]
    assert all("tokens_per_second" in entry for entry in log)
    assert not (tagged_model / "checkpoints").exists()
    assert (tagged_model / "rejects.jsonl").read_text() == ""


def test_the_recorded_prompt_renders_like_training(tagged_model):
    from transformers import AutoTokenizer

    record = TrainRecord.read(tagged_model)
    tokenizer = AutoTokenizer.from_pretrained(tagged_model)
    text = record.prompt.render(tokenizer, "Problem 7: work out the value step by step.")
    assert text.startswith("<|startoftext|>User: Problem 7: work out the value step by step.\n\nWhile reasoning")
    assert text.endswith("Assistant: ")

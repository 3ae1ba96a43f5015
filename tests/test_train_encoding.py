"""What the model learns from a row: the label mask on a real row as TRL receives it, and the
chat template chosen for it (bundled when the model's drops the reasoning)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("trl")

from splitreason import CLOSE_TAG, OPEN_TAG  # noqa: E402
from splitreason.io.export_reader import read_exports  # noqa: E402
from splitreason.models import ModelError  # noqa: E402
from splitreason.models.chat import choose_chat_template, encode_row  # noqa: E402
from splitreason.schemas.training import SFTSettings  # noqa: E402
from splitreason.train.encode import encode_split, prepare_tokenizer, to_dataset  # noqa: E402

R1_STYLE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}"
            "{% else %}{% set c = m['content'] %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}"
            "{{ '<｜Assistant｜>' + c + eos_token }}{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}")
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def test_label_mask_on_a_real_row_as_the_trainer_sees_it(offload_export, tmp_path):
    settings = SFTSettings(data=[offload_export.train], model=str(offload_export.base_model), out=tmp_path / "out",
                           max_length=512)
    tokenizer, template, tags = prepare_tokenizer(settings)
    rows, _ = read_exports([offload_export.train])
    split = encode_split(tokenizer, template, rows[:4], max_length=512, truncate=False, path=tmp_path / "t.arrow")
    row = rows[0].row
    encoded = encode_row(tokenizer, template, row.prompt, row.completion, row.spans())

    # The dataset TRL gets, after TRL's own preparation (it must keep our labels as they are).
    from splitreason.train.model import load_base_model
    from splitreason.train.trainer import build_trainer

    model, _ = load_base_model(settings, tokenizer, tags)
    trainer = build_trainer(settings, model, tokenizer, to_dataset(split), None,
                            checkpoints=tmp_path / "ck", bf16=False, callbacks=[])
    prepared = trainer.train_dataset[0]
    assert prepared["input_ids"] == encoded.ids
    labels = prepared["labels"]

    prompt_text = tokenizer.decode(encoded.ids[:encoded.prompt_len])
    assert prompt_text.endswith("Assistant: ") and row.prompt[0].content in prompt_text
    assert all(label == -100 for label in labels[:encoded.prompt_len])  # every prompt position ignored
    learned = [label for label in labels if label != -100]
    assert learned == encoded.ids[encoded.prompt_len:]  # every reply token learned, nothing else
    assert tokenizer.decode(learned) == row.completion + tokenizer.eos_token
    spans = row.spans()
    assert learned.count(tags.open_id) == learned.count(tags.close_id) == len(spans) > 0  # both tags, as one id each
    assert learned[-1] == tokenizer.eos_token_id
    # The instruction in the prompt mentions both tags: there they are context, not targets.
    assert tags.open_id in encoded.ids[:encoded.prompt_len]
    for span, token_span in zip(spans, encoded.spans):
        assert encoded.ids[token_span.open_at] == tags.open_id and encoded.ids[token_span.close_at] == tags.close_id
        assert tokenizer.decode(encoded.ids[token_span.start:token_span.close_at]) == row.completion[span.start:span.end]


def test_text_tags_stay_several_tokens_and_are_still_learned(offload_export, tmp_path):
    settings = SFTSettings(data=[offload_export.train], model=str(offload_export.base_model), out=tmp_path / "o",
                           tags="text")
    tokenizer, template, tags = prepare_tokenizer(settings)
    assert tags.mode == "text" and len(tags.open_ids) > 1
    row = read_exports([offload_export.train])[0][0].row
    encoded = encode_row(tokenizer, template, row.prompt, row.completion, row.spans())
    labels = encoded.labels()
    for span in encoded.spans:
        assert tokenizer.decode(encoded.ids[span.open_at:span.start]).strip() == OPEN_TAG
        assert all(labels[i] != -100 for i in range(span.open_at, span.after))
    assert CLOSE_TAG in tokenizer.decode([label for label in labels if label != -100])


def test_templates_that_drop_the_reasoning_are_replaced(offload_export, tmp_path):
    from splitreason.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(offload_export.base_model)
    assert choose_chat_template(tokenizer).source == "bundled:plain"  # none of its own
    tokenizer.chat_template = R1_STYLE
    chosen = choose_chat_template(tokenizer)
    assert chosen.source == "bundled:r1_distill" and "drops or changes the assistant's reasoning" in chosen.reason
    tokenizer.chat_template = CHATML
    assert choose_chat_template(tokenizer).source == "model"
    reply = f"<think>\nsome {OPEN_TAG}hard{CLOSE_TAG} steps\n</think>\n\nThe answer is 4."
    tokenizer.chat_template = R1_STYLE
    r1 = choose_chat_template(tokenizer)
    row = encode_row(tokenizer, r1, [{"role": "user", "content": "2+2?"}], reply, [])
    text = tokenizer.decode(row.ids)
    assert "<｜User｜>2+2?<｜Assistant｜><think>\nsome" in text and text.endswith("The answer is 4.<｜end▁of▁sentence｜>")
    bad = Path(tmp_path / "cuts.jinja")
    bad.write_text(R1_STYLE, encoding="utf-8")
    with pytest.raises(ModelError, match="cannot be trained with: it drops"):
        choose_chat_template(tokenizer, bad)
    good = Path(tmp_path / "chatml.jinja")
    good.write_text(CHATML, encoding="utf-8")
    assert choose_chat_template(tokenizer, good).source == f"file:{good}"

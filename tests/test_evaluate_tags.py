"""`splitreason evaluate tags`: the shared tiny model places the tags on held-out problems; the
untrained base model does not; text tags work; bad input is one line."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")

from tests.offload_fixtures import HELDOUT_ROWS, run_cli  # noqa: E402

pytestmark = pytest.mark.slow


def test_trained_model_places_tags_on_held_out_problems(tagged_model, offload_export):
    result = run_cli("evaluate", "tags", "--model", tagged_model, "--data", offload_export.heldout, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["rows"] == HELDOUT_ROWS and metrics["tags"] == "special"
    assert metrics["open_f1"] >= 0.8 and metrics["close_f1"] >= 0.8
    assert metrics["open_gold"] > HELDOUT_ROWS  # at least one span per row, more on average
    assert metrics["open_prob_mean"] > 0.5
    assert abs(metrics["offload_share_predicted"] - metrics["offload_share_data"]) < 0.05


def test_untrained_base_model_does_not_and_text_tags_are_scored(offload_export):
    result = run_cli("evaluate", "tags", "--model", offload_export.base_model, "--data", offload_export.heldout,
                     "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["tags"] == "text"  # the base tokenizer has no tag tokens: the tags are text
    assert metrics["open_f1"] < 0.2 and metrics["open_prob_mean"] < 0.01
    assert metrics["rows"] == HELDOUT_ROWS and metrics["offload_share_data"] > 0.1


def test_table_and_bad_data(tagged_model, offload_export, tmp_path):
    table = run_cli("evaluate", "tags", "--model", tagged_model, "--data", offload_export.heldout, "--no-progress")
    assert table.returncode == 0, table.stderr
    assert "open tag" in table.stdout and "offload share: predicted" in table.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "hello"}\n', encoding="utf-8")
    result = run_cli("evaluate", "tags", "--model", tagged_model, "--data", bad)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {bad}:1: not an export row: no 'messages' and no "
                                     "'prompt'/'completion' (keys: id, text)")


def test_a_device_this_machine_lacks_and_a_missing_data_option_are_one_line(offload_export):
    base, heldout = offload_export.base_model, offload_export.heldout
    missing = run_cli("evaluate", "tags", "--model", base)
    assert (missing.returncode, missing.stderr.strip()) == (2, "error: evaluate tags: --data is required")
    import torch

    if torch.cuda.is_available():
        asked, why = f"cuda:{torch.cuda.device_count()}", f"it has {torch.cuda.device_count()} cuda device(s), numbered from 0"
    else:
        asked, why = "cuda", "(this torch is a CPU build)" if torch.version.cuda is None else ""
    result = run_cli("evaluate", "tags", "--model", base, "--data", heldout, "--device", asked, "--no-progress")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: device '{asked}' is not available on this machine"), lines
    assert why in lines[0]

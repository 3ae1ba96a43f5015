"""Every bad input to `train sft` is one line with exit code 2, found before torch or TRL is
imported and before OUT is created; rows left out are counted and listed with their reason."""

from __future__ import annotations

import json
import re

import pytest
import typer

pytest.importorskip("trl")

from splitreason import CLOSE_TAG, OPEN_TAG  # noqa: E402
from splitreason.schemas.training import TrainRecord  # noqa: E402
from tests.offload_fixtures import run_cli, synthetic_rows, write_export  # noqa: E402

HEAVY = ("torch", "transformers", "trl", "peft", "accelerate")
TINY_RUN = ("--epochs", "1", "--batch-size", "8", "--grad-accum", "1", "--learning-rate", "1e-3", "--max-length", "512",
            "--eval-fraction", "0", "--no-progress")


def refused(tmp_path, base, *args):
    """Run train sft expecting a usage error; check it is one line, OUT was not created and no
    heavy library was imported; return the message."""
    out = tmp_path / "out"
    existed = out.exists()
    result = run_cli("train", "sft", *args, "--model", base, "-o", out, python_flags=("-X", "importtime"))
    lines = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert not {name for name in imported if name.split(".")[0] in HEAVY}, "validated after a heavy import"
    assert out.exists() == existed
    return lines[0].removeprefix("error: ")


def test_data_that_is_not_an_export_names_file_and_line(offload_export, tmp_path):
    base = offload_export.base_model
    good = json.dumps(synthetic_rows(1)[0])
    cases = {
        "garbage.jsonl": (f"{good}\nnot json at all\n", "garbage.jsonl:2: not JSON (Expecting value at column 1); "
                                                         "an export has one JSON object per line"),
        "keys.jsonl": ('{"id": "x", "problem": "p", "generation": "g"}\n',
                       "keys.jsonl:1: not an export row: no 'messages' and no 'prompt'/'completion' "
                       "(keys: generation, id, problem)"),
        "role.jsonl": ('{"id": "x", "messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "a"}]}\n',
                       "role.jsonl:1: messages[0] has role 'bot' (system, user or assistant)"),
        "noreply.jsonl": ('{"id": "x", "prompt": [{"role": "user", "content": "p"}], "completion": []}\n',
                          "noreply.jsonl:1: completion must be one assistant turn"),
        "empty.jsonl": ("\n\n", "empty.jsonl: holds no rows"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        assert refused(tmp_path, base, path) == f"{tmp_path}/{message}"
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x80\x81\x82\n")
    assert refused(tmp_path, base, binary) == f"{binary}:1: not UTF-8 text; is this an export (JSONL)?"
    assert refused(tmp_path, base, tmp_path / "missing.jsonl") == f"{tmp_path}/missing.jsonl: no such file or directory"
    folder = tmp_path / "folder"
    folder.mkdir()
    assert refused(tmp_path, base, folder) == f"{folder}: a directory that is not a saved dataset"


def test_broken_tags_are_refused_with_a_count_and_the_first_bad_id(offload_export, tmp_path):
    rows = synthetic_rows(12)
    breakages = {3: f" {CLOSE_TAG}", 5: f" {OPEN_TAG}x {OPEN_TAG}y{CLOSE_TAG}{CLOSE_TAG}", 8: f" {OPEN_TAG} {CLOSE_TAG}"}
    for index, extra in breakages.items():
        rows[index]["messages"][1]["content"] += extra
    data = write_export(tmp_path / "tags.jsonl", rows)
    message = refused(tmp_path, offload_export.base_model, data)
    assert message.startswith(f"3 of 12 rows have broken tags (first: id {rows[3]['id']} at {data}:4: unbalanced tags: "
                              f"{CLOSE_TAG} with no {OPEN_TAG} before it")
    assert message.endswith("fix the export, or pass --skip-bad-rows to leave them out")


def test_bad_settings_and_outputs_are_one_line(offload_export, tmp_path):
    base, data = offload_export.base_model, offload_export.train
    assert "lr-scheduler" in refused(tmp_path, base, data, "--lr-scheduler", "bogus")
    assert refused(tmp_path, base, data, "--epochs", "0").startswith("train sft: epochs: Input should be greater than 0")
    # A closed set is a choice on the command line (its values in --help), refused there in one line.
    assert refused(tmp_path, base, data, "--tags", "both").startswith(
        "Invalid value for '--tags': 'both' is not one of 'special', 'text'.")
    assert refused(tmp_path, base, data, "--chat-template", tmp_path / "nope.jinja") == \
        f"--chat-template {tmp_path}/nope.jinja: no such file"
    assert refused(tmp_path, base, data, "--report-to", "wandb") == "--report-to wandb needs the wandb package: pip install wandb"
    config = tmp_path / "sft.toml"
    config.write_text('epochs = 2\nlearning_rat = 0.1\n', encoding="utf-8")
    assert "unknown setting 'learning_rat'" in refused(tmp_path, base, data, "--config", config)
    # OUT: a file, or a directory of something else, is never written into.
    (tmp_path / "out").write_text("x")
    assert refused(tmp_path, base, data) == f"{tmp_path}/out is a file; the output must be a directory"
    (tmp_path / "out").unlink()
    other = tmp_path / "other"
    (other / "notes").mkdir(parents=True)
    result = run_cli("train", "sft", data, "--model", base, "-o", other, "--overwrite")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {other} is not empty and holds no training run (no train.json); "
                                     "name a new or empty directory")
    assert sorted(p.name for p in other.iterdir()) == ["notes"]


def test_attention_and_lora_targets_are_checked_before_out_is_created(offload_export, tmp_path):
    """A wrong kernel or LoRA target used to fail after OUT held a "running" train.json (exit 3 for
    the LoRA one), which then refused a plain rerun."""
    base, data = offload_export.base_model, offload_export.train
    assert refused(tmp_path, base, data, "--attn-implementation", "bogus").startswith(
        "train sft: attn-implementation: unknown attention 'bogus' (one of eager, sdpa,")
    out = tmp_path / "out"
    result = run_cli("train", "sft", data, "--model", base, "-o", out, "--no-progress", "--lora-r", "4",
                     "--lora-targets", "nonexistent_mod")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == ("error: --lora-targets nonexistent_mod: no module of the model has that name (its "
                                     "linear layers: down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, "
                                     "v_proj; or all-linear)")
    assert not out.exists()
    # The same check, in this process: a module LoRA cannot wrap, a kernel that is not installed.
    from splitreason.schemas.training import SFTSettings
    from splitreason.train import TrainDataError
    from splitreason.train.model import check_model_build

    for extra, message in (({"lora_r": 4, "lora_targets": "q_proj,layers"},
                            "--lora-targets q_proj,layers: names a module LoRA cannot wrap (its linear layers: down_proj,"),
                           ({"attn_implementation": "flash_attention_2"},
                            f"--attn-implementation flash_attention_2: cannot build {base}: FlashAttention2")):
        with pytest.raises(TrainDataError) as caught:
            check_model_build(SFTSettings(data=[data], model=str(base), out=out, **extra))
        assert str(caught.value).startswith(message), caught.value


def test_a_missing_model_is_one_line(offload_export, tmp_path):
    data = offload_export.train
    assert refused(tmp_path, tmp_path / "no-model", data) == \
        f"--model {tmp_path}/no-model: no such directory (give a local model directory or a hub id)"
    assert refused(tmp_path, tmp_path, data) == f"--model {tmp_path} is not a model directory (no config.json)"


@pytest.mark.slow
def test_rows_left_out_are_counted_and_listed_with_their_reason(offload_export, tmp_path):
    rows = synthetic_rows(40, seed=5)
    rows[2]["messages"][1]["content"] += f" {OPEN_TAG}never closed"
    long_reply = "<think>\n" + "We add 2 and 3 to get 5. " * 200 + "\n</think>"
    for index in (10, 11):
        rows[index]["messages"][1]["content"] = long_reply
    data = write_export(tmp_path / "mixed.jsonl", rows)
    out = tmp_path / "out"
    result = run_cli("train", "sft", data, "--model", offload_export.base_model, "-o", out, *TINY_RUN,
                     "--skip-bad-rows")
    assert result.returncode == 0, result.stderr[-3000:]
    record = TrainRecord.read(out)
    assert (record.rows.read, record.rows.refused, record.rows.too_long, record.rows.train) == (40, 1, 2, 37)
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(r["trace_id"], r["row"], r["reason"]) for r in rejects] == [
        (rows[2]["id"], 3, "bad_tags"), (rows[10]["id"], 11, "too_long"), (rows[11]["id"], 12, "too_long")]
    assert rejects[0]["detail"].startswith("unbalanced tags") and "> --max-length 512" in rejects[1]["detail"]
    assert "rows: 37 train, 0 eval, 2 too long, 0 truncated, 1 refused (of 40)\n" in result.stdout


def test_too_long_rows_are_cut_with_truncate_and_all_too_long_is_an_error(offload_export, tmp_path):
    from splitreason.io.export_reader import read_exports
    from splitreason.models.chat import encode_row
    from splitreason.schemas.training import SFTSettings
    from splitreason.train.encode import encode_split, prepare_tokenizer, to_dataset

    settings = SFTSettings(data=[offload_export.train], model=str(offload_export.base_model), out=tmp_path / "o")
    tokenizer, template, _ = prepare_tokenizer(settings)
    rows = read_exports([offload_export.train])[0][:10]

    def encode(max_length, truncate):
        split = encode_split(tokenizer, template, rows, max_length=max_length, truncate=truncate,
                             path=tmp_path / f"{max_length}-{truncate}.arrow")
        return split, [len(ids) for ids in to_dataset(split)["input_ids"]]

    _, lengths = encode(10_000, False)
    limit = sorted(lengths)[5]
    longer = sum(n > limit for n in lengths)
    dropped, kept = encode(limit, False)
    cut, cut_lengths = encode(limit, True)
    assert len(dropped.too_long) == longer and len(kept) == 10 - longer and max(kept) <= limit
    assert [n for _, n in dropped.too_long] == [n for n in lengths if n > limit]
    assert cut.truncated == longer and len(cut_lengths) == 10 and max(cut_lengths) == limit
    # A span cut by the end is not a span: the tag share counts only whole spans.
    row = rows[0].row
    whole = encode_row(tokenizer, template, row.prompt, row.completion, row.spans())
    first = whole.spans[0]
    assert whole.truncated((first.start + first.close_at) // 2).spans == ()
    assert whole.truncated(first.after).spans == (first,)
    result = run_cli("train", "sft", offload_export.train, "--model", offload_export.base_model, "-o", tmp_path / "out",
                     "--max-length", "40", "--no-progress")
    assert result.returncode == 2
    assert re.match(r"error: all \d+ training rows are longer than --max-length 40 tokens \(they have \d+ to \d+\)",
                    result.stderr.strip())
    assert result.stderr.strip().endswith("); raise it or pass --truncate")
    assert not (tmp_path / "out").exists()


def test_options_typed_on_the_command_line_are_found():
    """typer >= 0.29 carries its own click: the sources must be compared by name."""
    from typer.testing import CliRunner

    from splitreason.commands.options import typed_on_command_line

    app, seen = typer.Typer(), []

    @app.command()
    def command(ctx: typer.Context, rate: float = 1.0, data: list[str] | None = typer.Argument(None)) -> None:
        seen.append(typed_on_command_line(ctx))

    CliRunner().invoke(app, ["x", "--rate", "2"])
    CliRunner().invoke(app, [])
    assert seen == [{"data", "rate"}, set()]


def test_the_bundled_recipe_is_valid_settings(tmp_path):
    from pathlib import Path

    from splitreason.schemas.training import SFTSettings

    root = Path(__file__).resolve().parents[1]
    settings = SFTSettings.build({"data": [tmp_path / "export.jsonl"], "model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
                                  "out": tmp_path / "out"}, explicit=set(),
                                 config_file=root / "recipes" / "sft_r1_distill_1p5b.yaml")
    assert (settings.learning_rate, settings.lr_scheduler, settings.min_lr_rate, settings.warmup_ratio) == \
        (5e-5, "cosine_with_min_lr", 0.1, 0.05)
    assert settings.epochs == 3 and settings.max_length == 16384 and settings.packing and settings.tags == "special"
    assert json.loads((root / "recipes" / "deepspeed_zero2.json").read_text())["zero_optimization"]["stage"] == 2

"""Training runs other than the shared one, each small (a few seconds of training): text tags
with a config file and a chat template file, LoRA on both export shapes and a saved dataset
with TensorBoard, a run killed and resumed, and two processes under `accelerate launch`."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys

import pytest

pytest.importorskip("trl")

from splitreason.models.tags import tag_tokens  # noqa: E402
from splitreason.schemas.training import SFTSettings, TrainRecord  # noqa: E402
from tests.helpers import REPO, cli_env, ok  # noqa: E402
from tests.offload_fixtures import as_prompt_completion, run_cli, synthetic_rows, write_export  # noqa: E402

pytestmark = pytest.mark.slow

SMALL = ("--batch-size", "8", "--grad-accum", "1", "--learning-rate", "2e-3", "--max-length", "512")
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def test_text_tags_from_a_config_file_with_a_chat_template_file(offload_export, tmp_path):
    from transformers import AutoTokenizer

    data = write_export(tmp_path / "rows.jsonl", synthetic_rows(48, seed=7))
    template = tmp_path / "chatml.jinja"
    template.write_text(CHATML, encoding="utf-8")
    config = tmp_path / "sft.yaml"
    config.write_text(f"tags: text\nepochs: 1\nchat-template: {template}\neval_fraction: 0.25\nlearning_rate: 1.0\n",
                      encoding="utf-8")
    out = tmp_path / "out"
    # The command line wins over the file (learning rate), the file over the defaults (the rest).
    ok(run_cli("train", "sft", data, "--model", offload_export.base_model, "-o", out, "--config", config, *SMALL,
               "--packing"))
    record = TrainRecord.read(out)
    assert record.rows.train == 36 and record.steps < 36 // 8  # packed: fewer, fuller blocks than rows
    assert record.settings["tags"] == "text" and record.settings["learning_rate"] == 2e-3
    assert record.settings["epochs"] == 1 and record.prompt.chat_template_source == f"file:{template}"
    tokenizer = AutoTokenizer.from_pretrained(out)
    base = AutoTokenizer.from_pretrained(offload_export.base_model)
    assert len(tokenizer) == len(base) and tag_tokens(tokenizer).mode == "text"
    assert record.prompt.tags == "text" and len(record.prompt.open_ids) > 1
    assert record.tag_metrics.tags == "text" and record.tag_metrics.rows == record.rows.eval > 0
    assert record.model["vocab_after"] == record.model["vocab_before"]
    assert tokenizer.apply_chat_template([{"role": "user", "content": "q"}], tokenize=False,
                                         add_generation_prompt=True) == "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
    # The effective config in OUT builds the same settings again.
    again = SFTSettings.build({}, config_file=out / "train_config.yaml")
    assert again.fingerprint() == SFTSettings.model_validate(record.settings).fingerprint()
    # A finished run resumed is left as it is.
    before = (out / "train.json").read_bytes()
    result = ok(run_cli("train", "sft", data, "--model", offload_export.base_model, "-o", out, "--config", config,
                        *SMALL, "--packing", "--resume"))
    assert "holds a finished run with these settings; nothing to resume" in result.stderr
    assert (out / "train.json").read_bytes() == before


def test_lora_on_both_shapes_and_a_saved_dataset_with_tensorboard(offload_export, tmp_path):
    import torch
    from datasets import Dataset
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = synthetic_rows(64, seed=9)
    pc = write_export(tmp_path / "pc.jsonl", rows[:32], fmt="prompt-completion")
    saved = tmp_path / "saved_ds"
    Dataset.from_list([as_prompt_completion(r) for r in rows[32:]]).save_to_disk(str(saved))
    out = tmp_path / "out"
    result = ok(run_cli("train", "sft", pc, saved, "--model", offload_export.base_model, "-o", out, *SMALL,
               "--epochs", "2", "--lora-r", "8", "--lora-targets", "q_proj,v_proj", "--eval-fraction", "0.2",
               "--report-to", "tensorboard", "--logging-steps", "2", "--weight-decay", "0.1"))
    # The progress bar's last state: steps, loss, tokens/s, time left.
    assert re.search(r"train sft .* (\d+)/\1 steps loss \d+\.\d{4} [\d,]+ tok/s .* ETA", result.stderr)
    record = TrainRecord.read(out)
    assert [d["format"] for d in record.data] == ["prompt-completion", "prompt-completion"]
    assert record.data[1]["path"] == str(saved) and record.rows.read == 64
    lora = record.model["lora"]
    assert lora["r"] == 8 and lora["alpha"] == 16 and lora["targets"] == ["q_proj", "v_proj"] and lora["merged"]
    assert lora["tag_rows_trained"] == list(record.prompt.open_ids + record.prompt.close_ids)
    assert record.model["trainable_parameters"] < 0.1 * record.model["parameters"]
    assert not (out / "adapter_config.json").exists()  # merged: a plain model directory
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    base = load_file(str(offload_export.base_model / "model.safetensors"))
    trained = model.state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(trained[name], base[name])  # the adapter is in the weights
    assert torch.equal(trained["model.layers.0.mlp.up_proj.weight"], base["model.layers.0.mlp.up_proj.weight"])
    # The tags' own rows were trained (peft trainable tokens): no longer the mean they started at.
    embeddings = trained["model.embed_tokens.weight"]
    tags = tag_tokens(tokenizer)
    old_rows = record.model["vocab_before"]
    mean = embeddings[:old_rows].mean(0)
    assert not torch.allclose(embeddings[tags.open_id], mean, atol=1e-4)
    assert not torch.allclose(trained["lm_head.weight"][tags.close_id], base["lm_head.weight"].mean(0), atol=1e-4)
    # ... and only those: every other row is as it was (no update, no weight decay).
    assert torch.equal(embeddings[:old_rows], base["model.embed_tokens.weight"])
    assert torch.equal(trained["lm_head.weight"][:old_rows], base["lm_head.weight"])
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))


def test_killed_run_resumes_from_its_last_checkpoint(offload_export, tmp_path):
    data = write_export(tmp_path / "rows.jsonl", synthetic_rows(40, seed=11))
    out = tmp_path / "out"
    args = ["train", "sft", data, "--model", offload_export.base_model, "-o", out, "--epochs", "3", "--batch-size", "4",
            "--grad-accum", "1", "--learning-rate", "1e-3", "--max-length", "512", "--eval-fraction", "0",
            "--save-steps", "5", "--logging-steps", "1", "--no-progress"]
    killed = subprocess.run([sys.executable, "-m", "tests.killed_at", "checkpoint:10", *map(str, args)], cwd=REPO,
                            env=cli_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    stopped_at = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    assert TrainRecord.read(out).status == "running" and max(stopped_at) == 10

    refused = run_cli(*args)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"error: {out} holds an unfinished training run (train.json); pass --resume to "
                                      "continue it or --overwrite to replace it")
    changed = run_cli(*args, "--resume", "--learning-rate", "5e-3")
    assert changed.returncode == 2 and "learning_rate: 0.001 -> 0.005" in changed.stderr

    ok(run_cli(*args, "--resume"))
    record = TrainRecord.read(out)
    checkpoint = int(record.resumed_from.rsplit("-", 1)[1])
    assert record.status == "done" and record.steps == 30 and checkpoint == 10
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    train_steps = [s for s in steps if s <= 30]
    assert train_steps[:checkpoint] == list(range(1, checkpoint + 1))  # the first run's lines up to the checkpoint
    assert sorted(set(train_steps)) == list(range(1, 31))  # each step logged; none twice past the checkpoint
    assert len([s for s in steps if s > checkpoint]) == len(set(s for s in steps if s > checkpoint)) + 1  # + the summary line
    assert not (out / "checkpoints").exists()


def test_a_run_stopped_before_its_first_checkpoint_is_replaced_by_a_plain_rerun(offload_export, tmp_path):
    """Nothing to resume from: the rerun starts over instead of asking for --resume."""
    data = write_export(tmp_path / "rows.jsonl", synthetic_rows(16, seed=3))
    out = tmp_path / "out"
    args = ["train", "sft", data, "--model", offload_export.base_model, "-o", out, "--epochs", "1", "--batch-size", "4",
            "--grad-accum", "1", "--max-length", "512", "--eval-fraction", "0", "--save-steps", "2",
            "--logging-steps", "1", "--no-progress"]
    killed = subprocess.run([sys.executable, "-m", "tests.killed_at", "checkpoint:2", *map(str, args)], cwd=REPO,
                            env=cli_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    shutil.rmtree(out / "checkpoints")  # as if killed before the trainer saved anything
    assert TrainRecord.read(out).status == "running"
    rerun = ok(run_cli(*args))
    assert f"{out} held an unfinished run that stopped before its first checkpoint; starting over" in rerun.stderr
    record = TrainRecord.read(out)
    assert record.status == "done" and record.steps == 4 and record.resumed_from is None
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()][:4] == [1, 2, 3, 4]


def test_two_processes_under_accelerate_launch(offload_export, tmp_path):
    """`accelerate launch --cpu --num_processes 2` runs ONE process in accelerate 1.16 (several CPU
    processes need MPI there); `--multi_gpu` on a machine without GPUs starts two processes through
    torchrun that train on the CPU over gloo, which is what this checks. DeepSpeed cannot run here
    (it needs CUDA); `--deepspeed` is passed to the trainer unchanged."""
    data = write_export(tmp_path / "rows.jsonl", synthetic_rows(40, seed=13))
    out = tmp_path / "out"
    env = cli_env(OMP_NUM_THREADS="1", ACCELERATE_LOG_LEVEL="error")
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "splitreason.cli",
         "train", "sft", str(data), "--model", str(offload_export.base_model), "-o", str(out), "--epochs", "1",
         "--batch-size", "4", "--grad-accum", "1", "--max-length", "512", "--eval-fraction", "0.2", "--no-progress",
         "--logging-steps", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained ") == 1  # one summary: the main process's
    record = TrainRecord.read(out)
    assert record.hardware["processes"] == 2 and record.rows.train == 32
    assert record.steps == 32 // (4 * 2)  # each step takes a batch on each process
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [entry["step"] for entry in log if "loss" in entry]
    assert steps == [1, 2, 3, 4]  # one writer
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)

"""`splitreason train grpo` on the tiny tagged model (real TRL GRPOTrainer, transformers generation,
real math-verify): a few steps finish and write a model that loads like the SFT output, with each
reward per step in log.jsonl, a rollout sample per step, decontamination with a count; resume after
a kill; bad input as one line. Tiny numbers show the mechanism, not learning."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, assert_one_clean_error, cli_env, read_jsonl
from tests.offload_fixtures import run_cli

pytestmark = pytest.mark.slow

FAST = ("--num-generations", "2", "--batch-size", "2", "--max-completion-length", "16", "--no-progress",
        "--seed", "0")


SUBJECTS = ("apples in a basket", "marbles in a jar", "birds on a wire", "coins in a purse", "books on a shelf",
            "cars in a lot")


def _problem(i: int) -> str:
    return f"Problem {i}: there are {10 + i} {SUBJECTS[i]}, and {3 + i} more arrive; work out the value step by step."


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grpo") / "problems.jsonl"
    rows = [{"id": f"q{i}", "problem": _problem(i), "answer": str(13 + 2 * i)} for i in range(len(SUBJECTS))]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def grpo_out(tagged_model, problems, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    eval_set = tmp_path_factory.mktemp("evalset") / "bench.jsonl"
    eval_set.write_text(json.dumps({"id": "b1", "problem": _problem(3), "answer": "19"}) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("grpo_out") / "out"
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", out, *FAST,
                     "--steps", "2", "--decontaminate-against", eval_set, "--rollouts-per-step", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_a_few_steps_write_a_model_that_loads_like_the_sft_output(grpo_out, tagged_model):
    from splitreason.models.loading import load_causal_lm
    from splitreason.models.tags import tag_tokens
    from splitreason.models.tokenizer import load_tokenizer
    from splitreason.schemas.training import TrainRecord

    out, result = grpo_out
    record = TrainRecord.read(out)
    sft = TrainRecord.read(tagged_model)
    assert record.kind == "grpo" and record.status == "done" and record.steps == 2
    assert record.prompt == sft.prompt  # prompted exactly as the SFT model was: evaluate offload reads this
    assert record.grpo["problems"] == {"read": 6, "contaminated": 1, "past_limit": 0, "trained": 5}
    tokenizer = load_tokenizer(out)
    assert tag_tokens(tokenizer).single
    model = load_causal_lm(out, device="cpu")
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert not (out / "checkpoints").exists()
    assert "2 GRPO steps" in result.stdout and "accuracy:" in result.stdout and "offload_share:" in result.stdout


def test_each_reward_is_logged_per_step_and_rollouts_are_sampled(grpo_out):
    out, _ = grpo_out
    steps = [entry for entry in read_jsonl(out / "log.jsonl") if "reward" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    for entry in steps:
        for name in ("correctness", "format", "offload", "latency"):
            assert isinstance(entry[f"rewards/{name}/mean"], float)
        assert 0 <= entry["offload_share"] <= 1 and 0 <= entry["accuracy"] <= 1
    rollouts = read_jsonl(out / "rollouts.jsonl")
    assert sorted({r["step"] for r in rollouts}) == [1, 2] and len(rollouts) == 4
    first = rollouts[0]
    assert set(first["rewards"]) == {"correctness", "format", "offload", "latency"}
    assert first["verdict"]["gold"] == first["gold"]
    assert "".join(s["text"] for s in first["segments"]) == first["text"].replace("<bigmodel>", "").replace("</bigmodel>", "")
    assert all(s["in_loss"] and s["written_by"] == "small" for s in first["segments"])  # the paper's setting
    assert first["tokens_in_loss"] == first["completion_tokens"]
    rejects = read_jsonl(out / "rejects.jsonl")
    assert [(r["trace_id"], r["reason"]) for r in rejects] == [("q3", "contaminated")]


@pytest.mark.parametrize("killed_at", [1, 2], ids=["mid-run", "at-the-last-step"])
def test_resume_after_a_kill(tagged_model, problems, tmp_path, killed_at):
    """Killed right after checkpoint-1 the resumed run trains step 2; killed right after the last
    step's checkpoint (before OUT's final save) it trains nothing more: Trainer.train resumed there
    would run a third step."""
    out = tmp_path / "out"
    args = ["train", "grpo", "--model", tagged_model, "--problems", problems, "-o", out, *FAST, "--steps", "2",
            "--save-steps", "1"]
    killed = subprocess.run([sys.executable, "-m", "tests.killed_at", f"checkpoint:{killed_at}", *map(str, args)],
                            cwd=REPO, env=cli_env(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false"),
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert json.loads((out / "train.json").read_text())["status"] == "running"
    result = run_cli(*args, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "train.json").read_text())
    assert record["status"] == "done" and record["steps"] == 2
    assert record["resumed_from"].endswith(f"checkpoint-{killed_at}")
    logged = [entry["step"] for entry in read_jsonl(out / "log.jsonl") if "reward" in entry]
    assert logged == [1, 2]  # each step once: the first run's up to the checkpoint, the resumed run's after it
    assert sorted({r["step"] for r in read_jsonl(out / "rollouts.jsonl")}) == [1, 2]
    assert "2 GRPO steps" in result.stdout
    from splitreason.models.loading import load_causal_lm

    load_causal_lm(out, device="cpu")  # the model OUT holds loads


def test_problems_without_answers_are_one_line(tagged_model, tmp_path):
    path = tmp_path / "no_answers.jsonl"
    path.write_text(json.dumps({"problem": "Problem 1: work out the value."}) + "\n", encoding="utf-8")
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", path, "-o", tmp_path / "out", *FAST)
    assert result.returncode == 2
    line = assert_one_clean_error(result, "error: problem set ", "no_answers.jsonl: no answer field", "--answer-field")
    assert "evaluation set" not in line  # these are the problems trained on
    assert not (tmp_path / "out").exists()


def test_an_unreachable_decontamination_set_names_this_commands_option(tagged_model, problems, tmp_path):
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "out", *FAST,
                     "--decontaminate-against", "aime24")
    line = assert_one_clean_error(result, "evaluation set aime24", "(--decontaminate-against takes that file or folder)")
    assert "--eval-set" not in line
    assert not (tmp_path / "out").exists()


def test_the_seed_help_names_what_grpo_seeds():
    result = run_cli("train", "grpo", "--help")
    seed = next(line for line in result.stdout.splitlines() if "--seed" in line)
    assert "rollouts' sampling" in seed and "split" not in seed


def test_a_model_without_tags_is_refused_and_text_tags_are_accepted(offload_export, problems, tmp_path):
    result = run_cli("train", "grpo", "--model", offload_export.base_model, "--problems", problems,
                     "-o", tmp_path / "out", *FAST, "--steps", "1")
    assert result.returncode == 2
    assert_one_clean_error(result, "has no offload tags", "--text-tags")
    result = run_cli("train", "grpo", "--model", offload_export.base_model, "--problems", problems,
                     "-o", tmp_path / "out", *FAST, "--steps", "1", "--text-tags", "--rollouts-per-step", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "train.json").read_text())
    assert record["prompt"]["tags"] == "text" and len(record["prompt"]["open_ids"]) > 1


def test_settings_that_cannot_work_are_one_line(tagged_model, problems, tmp_path):
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "o",
                     "--num-generations", "4", "--batch-size", "2")
    assert_one_clean_error(result, "multiple of --num-generations")
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "o",
                     "--true-offload")
    assert_one_clean_error(result, "--true-offload needs --large")
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "o",
                     "--reward-weights", "speed=1")
    assert_one_clean_error(result, "reward weights are NAME=NUMBER")
    config = tmp_path / "grpo.yaml"
    config.write_text("num-generations: 4\nbatch_size: 2\n", encoding="utf-8")  # --config is read, and checked
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "o",
                     "--config", config)
    assert_one_clean_error(result, "multiple of --num-generations (4)")
    config.write_text("kl: 0.1\n", encoding="utf-8")
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", tmp_path / "o",
                     "--config", config)
    assert_one_clean_error(result, "unknown setting 'kl'")


@pytest.mark.slow
def test_lora_settings_from_a_config_file_and_json_output(tagged_model, problems, tmp_path):
    # --config (the command line wins), LoRA merged into the saved weights, and --json: the record on stdout.
    from splitreason.models.loading import load_causal_lm

    config = tmp_path / "grpo.yaml"
    config.write_text("steps: 1\nlora_r: 4\nlearning_rate: 0.01\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli("train", "grpo", "--model", tagged_model, "--problems", problems, "-o", out, *FAST,
                     "--config", config, "--learning-rate", "0.02", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(result.stdout)  # stdout is the record alone
    assert record["kind"] == "grpo" and record["status"] == "done" and record["steps"] == 1
    assert record["model"]["lora"]["r"] == 4 and record["model"]["lora"]["merged"]
    saved = json.loads((out / "train.json").read_text())
    assert saved["settings"]["learning_rate"] == 0.02 and saved["settings"]["lora_r"] == 4
    model = load_causal_lm(out, device="cpu")  # a plain model: the adapter is merged in
    assert not any("lora" in name for name, _ in model.named_parameters())

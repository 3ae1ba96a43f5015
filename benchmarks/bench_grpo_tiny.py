"""`train grpo` on the tiny tagged model, with the small model writing everything (the paper's
setting) and with --true-offload (the tiny "large" model writes the tagged segments): wall time,
seconds per step, the share of completion tokens in the loss, and each reward over the run.

    python benchmarks/bench_grpo_tiny.py                 # ~6 min on 2 shared CPU cores
    python benchmarks/bench_grpo_tiny.py --steps 10 --model OUT_OF_TRAIN_SFT --large LARGE

What it does: builds the shared test fixtures (tests/offload_fixtures.py: the synthetic export, the
tiny Llama trained on it by `train sft`, and the evaluator's "large" model, the same weights with
seeded noise) unless --model/--large are given, writes 8 problems with answers, then runs one
subprocess per setting

    python -m splitreason.cli train grpo --model SFT_OUT --problems problems.jsonl -o OUT <settings>

and reads OUT/train.json, OUT/log.jsonl and OUT/rollouts.jsonl. Times are wall seconds of each
whole process (interpreter start, imports, model loading included) and the trainer's own time.

A 0.6M-parameter model on synthetic problems never answers correctly: these figures show that the
mechanism runs (rollouts, rewards, masks, checkpoints), never how well GRPO learns. Results go to
benchmarks/results/grpo_tiny.json (--output); a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = ("--num-generations", "4", "--batch-size", "4", "--max-completion-length", "64", "--chunk-tokens", "8",
            "--seed", "0", "--no-progress", "--rollouts-per-step", "4", "--save-steps", "1000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--model", type=Path, help="a train sft OUT (default: build the test fixture)")
    parser.add_argument("--large", type=Path, help="the large model (default: build the test fixture)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "grpo_tiny.json")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="bench-grpo-") as scratch:
        root = Path(scratch)
        model, large = args.model, args.large
        if model is None or large is None:
            from tests.offload_fixtures import build_large_model, make_offload_export, train_tagged_model

            export = make_offload_export(root / "fixtures")
            model = model or train_tagged_model(root / "sft", export.train, export.base_model)
            large = large or build_large_model(root / "large", model)
        problems = root / "problems.jsonl"
        problems.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"Problem {i}: work out the value step by step.",
                                                "answer": str(100 + i)}) + "\n" for i in range(8)), encoding="utf-8")
        results = []
        for name, extra in (("small writes all", ()), ("true offload", ("--true-offload", "--large", str(large)))):
            out = root / name.replace(" ", "_")
            command = [sys.executable, "-m", "splitreason.cli", "train", "grpo", "--model", str(model), "--problems",
                       str(problems), "-o", str(out), "--steps", str(args.steps), *SETTINGS, *extra]
            started = time.monotonic()
            finished = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
            wall = time.monotonic() - started
            if finished.returncode != 0:
                raise SystemExit(f"{name} failed:\n{finished.stderr[-3000:]}")
            results.append(_measure(name, out, wall))
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
              "threads": args.threads, "steps": args.steps, "settings": list(SETTINGS), "runs": results,
              "note": "tiny model on synthetic problems: mechanism only, not learning"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| setting | wall s | trainer s | s/step | completion tokens in the loss | offload share | accuracy | "
          "reward first -> last step |")
    print("|---|---|---|---|---|---|---|---|")
    for run in results:
        print(f"| {run['setting']} | {run['wall_s']} | {run['trainer_s']} | {run['s_per_step']} | "
              f"{run['loss_token_share']} | {run['offload_share']} | {run['accuracy']} | "
              f"{run['reward_first']} -> {run['reward_last']} |")


def _measure(name: str, out: Path, wall: float) -> dict:
    record = json.loads((out / "train.json").read_text(encoding="utf-8"))
    steps = [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    steps = [entry for entry in steps if "reward" in entry]
    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").read_text(encoding="utf-8").splitlines()]
    tokens = sum(r["completion_tokens"] for r in rollouts)
    in_loss = sum(r["tokens_in_loss"] for r in rollouts)

    def mean(key: str) -> float | None:
        values = [entry[key] for entry in steps if isinstance(entry.get(key), (int, float))]
        return round(sum(values) / len(values), 4) if values else None

    return {"setting": name, "wall_s": round(wall, 1), "trainer_s": record["seconds"], "steps": record["steps"],
            "s_per_step": round(record["seconds"] / max(1, record["steps"]), 2),
            "loss_token_share": round(in_loss / tokens, 3) if tokens else None,
            "offload_share": mean("offload_share"), "accuracy": mean("accuracy"),
            "reward_first": round(steps[0]["reward"], 4), "reward_last": round(steps[-1]["reward"], 4),
            "rewards_mean": {key.split("/")[1]: mean(key) for key in steps[0] if key.startswith("rewards/")
                             and key.endswith("/mean")},
            "over_training": record["grpo"]["over_training"]}


if __name__ == "__main__":
    main()

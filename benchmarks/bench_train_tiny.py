"""`train sft` and `evaluate tags` on the tiny model: time, steps, tokens/s and tag F1, with the
tags as added tokens (splitreason's default) and as text (the paper's choice), same recipe.

    python benchmarks/bench_train_tiny.py                # ~3 min on 2 CPU cores (two trainings, four evaluations)
    python benchmarks/bench_train_tiny.py --rows 400 --epochs 4

What it does: writes the synthetic export of tests/offload_fixtures.py (hard steps follow cue
sentences; every problem twice), builds the tiny random Llama (2 layers, hidden 128, a byte-level
BPE of ~1k tokens trained on the export's text, no chat template), then for each tag mode one
subprocess

    python -m splitreason.cli train sft train.jsonl --model BASE -o OUT --tags MODE <recipe>

and `evaluate tags --json` of OUT on held-out rows of other problems. Times are wall and CPU
seconds of each whole process (interpreter start and imports included) and the trainer's own
training time from train.json; torch runs on --threads threads (default 1: on a shared 2-core
machine two OpenMP threads made a step 20x slower).

Numbers from a 0.6M-parameter model on synthetic data show that the mechanism works (the tags
are learned and placed), never how good a real model is. Results go to
benchmarks/results/train_tiny.json (--output); a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.offload_fixtures import HELDOUT_ROWS, build_base_model, synthetic_rows, write_export  # noqa: E402


def run(args: list, threads: int) -> tuple[subprocess.CompletedProcess, float, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "splitreason.cli", *map(str, args)], capture_output=True, text=True,
                            env=env)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, args))}\n{result.stderr[-3000:]}")
    return result, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=240)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "train_tiny.json")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        train_rows = synthetic_rows(args.rows, seed=0)
        heldout_rows = synthetic_rows(HELDOUT_ROWS, seed=1, first_problem=10_000)
        train = write_export(work / "train.jsonl", train_rows)
        heldout = write_export(work / "heldout.jsonl", heldout_rows)
        base = build_base_model(work / "base", train_rows + heldout_rows)
        recipe = ["--epochs", args.epochs, "--learning-rate", args.learning_rate, "--batch-size", 8, "--grad-accum", 1,
                  "--max-length", 512, "--eval-fraction", 0.1, "--lr-scheduler", "cosine", "--warmup-ratio", 0.05,
                  "--seed", 0, "--no-progress"]
        for mode in ("special", "text"):
            out = work / f"out-{mode}"
            _, wall, cpu = run(["train", "sft", train, "--model", base, "-o", out, "--tags", mode, *recipe], args.threads)
            record = json.loads((out / "train.json").read_text())
            evaluation, eval_wall, eval_cpu = run(["evaluate", "tags", "--model", out, "--data", heldout, "--json"],
                                                  args.threads)
            held = json.loads(evaluation.stdout)
            base_eval, _, _ = run(["evaluate", "tags", "--model", base, "--data", heldout, "--json"], args.threads) \
                if mode == "text" else (None, 0, 0)
            results.append({
                "tags": mode,
                "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1), "trainer_s": record["seconds"],
                "steps": record["steps"], "tokens_seen": record["tokens_seen"],
                "tokens_per_trainer_s": round(record["tokens_seen"] / record["seconds"]),
                "rows": record["rows"], "loss_train": record["losses"]["train_final"],
                "loss_eval": record["losses"]["eval_final"],
                "eval_split": {k: record["tag_metrics"][k] for k in ("rows", "open_f1", "close_f1", "span_f1")},
                "heldout": {k: held[k] for k in ("rows", "open_precision", "open_recall", "open_f1", "close_f1",
                                                 "span_f1", "open_prob_mean",
                                                 "close_prob_mean", "offload_share_predicted", "offload_share_data")},
                "evaluate_wall_s": round(eval_wall, 1), "evaluate_cpu_s": round(eval_cpu, 1),
                **({"untrained_base_heldout": {k: json.loads(base_eval.stdout)[k] for k in ("open_f1", "close_f1")}}
                   if base_eval is not None else {}),
            })
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
              "threads": args.threads,
              "recipe": {"rows": args.rows, "epochs": args.epochs, "learning_rate": args.learning_rate, "batch_size": 8},
              "model": "tiny random Llama: 2 layers, hidden 128, 4 heads, byte-level BPE ~1k tokens, no chat template",
              "note": "a tiny model on synthetic data: shows that the mechanism works, not how good a real model is",
              "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{'tags':8} {'train wall/cpu s':>17} {'steps':>6} {'tok/s':>7} {'held-out open P/R/F1':>21} {'close F1':>9}")
    for r in results:
        print(f"{r['tags']:8} {r['train_wall_s']:>8} / {r['train_cpu_s']:<6} {r['steps']:>6} {r['tokens_per_trainer_s']:>7} "
              f"{r['heldout']['open_precision']:>9.3f}/{r['heldout']['open_recall']:.3f}/{r['heldout']['open_f1']:.3f} "
              f"{r['heldout']['close_f1']:>9.3f}")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()

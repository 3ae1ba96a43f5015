"""Which labelling teaches better offloading? Train the same small model on each of two labellings
of the same traces and evaluate both as offload models against the same large model.

    python scripts/compare_labellings.py RUN_A RUN_B --base-model SMALL --large LARGE \
        --eval-set aime24 -o compare/ [--train-arg=--epochs --train-arg=3 ...] [--eval-arg=--samples --eval-arg=4 ...]

RUN_A and RUN_B are `splitreason annotate` outputs over the same traces (e.g. an LLM judge and
`divergence:SMALL,LARGE`). For each: `splitreason export RUN -o OUT/NAME/train.jsonl`, then
`splitreason train sft` of --base-model on it (OUT/NAME/model), then `splitreason evaluate offload
--small OUT/NAME/model --large LARGE --eval-set SET --mode learned --mode random` (OUT/NAME/eval).
Every step whose output is complete is skipped on a re-run, so a stopped comparison resumes.
Finally OUT/compare.json and a table: accuracy (95 % interval), offload share and projected
speed-up of each labelling, with the random-offload baseline at the same share beside it.

The same script runs tiny models on a CPU (tests/test_compare_labellings.py) and real ones on a
GPU; with tiny models the numbers show that the comparison runs, not which labelling is better.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# What a step leaves when it finished: its presence means the step is skipped on a re-run.
DONE = {"export": "train.jsonl", "train": "model/train.json", "evaluate": "eval/summary.json"}


def splitreason(*args: str | Path) -> None:
    """Run one splitreason command; its own one-line error ends the comparison."""
    command = [sys.executable, "-m", "splitreason.cli", *map(str, args)]
    print("+ splitreason " + " ".join(map(str, args)), file=sys.stderr, flush=True)
    result = subprocess.run(command)
    if result.returncode != 0:
        raise SystemExit(f"compare_labellings: `splitreason {args[0]} {args[1] if len(args) > 1 else ''}` "
                         f"failed with exit {result.returncode}; fix it and run the same command again to resume")


def run_labelling(name: str, run: Path, out: Path, options: argparse.Namespace) -> dict:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / DONE["export"]).is_file():
        splitreason("export", run, "-o", folder / DONE["export"])
    if not (folder / DONE["train"]).is_file():
        splitreason("train", "sft", folder / DONE["export"], "--model", options.base_model, "-o", folder / "model",
                    "--no-progress", *options.train_arg)
    if not (folder / DONE["evaluate"]).is_file():
        modes = [arg for mode in options.mode for arg in ("--mode", mode)]
        splitreason("evaluate", "offload", "--small", folder / "model", "--large", options.large, "--eval-set",
                    options.eval_set, "-o", folder / "eval", *modes, "--no-progress", *options.eval_arg)
    return json.loads((folder / DONE["evaluate"]).read_text(encoding="utf-8"))


def row(name: str, mode: str, figures: dict) -> dict:
    projected = (figures.get("projected") or {}).get("pipelined") or {}
    return {"labelling": name, "mode": mode, "accuracy": figures.get("accuracy"),
            "accuracy_ci95": figures.get("accuracy_ci95"), "offload_share": figures.get("offload_share"),
            "handoffs_per_sample": figures.get("handoffs_per_sample"),
            "projected_speedup": projected.get("speedup")}


def show(rows: list[dict]) -> None:
    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(f"{'labelling':<24} {'mode':<8} {'accuracy':>9} {'95% interval':>16} {'offload':>8} {'handoffs':>9} "
          f"{'speed-up':>9}")
    for item in rows:
        interval = item["accuracy_ci95"]
        shown = f"{interval[0]:.3f}-{interval[1]:.3f}" if interval else "-"
        print(f"{item['labelling']:<24} {item['mode']:<8} {fmt(item['accuracy'], '.3f'):>9} {shown:>16} "
              f"{fmt(item['offload_share'], '.3f'):>8} {fmt(item['handoffs_per_sample'], '.2f'):>9} "
              f"{fmt(item['projected_speedup'], '.2f'):>9}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs=2, type=Path, help="two annotate outputs over the same traces")
    parser.add_argument("--names", nargs=2, default=None, help="what to call the two labellings (default: run names)")
    parser.add_argument("--base-model", required=True, help="the small model to train on each labelling")
    parser.add_argument("--large", required=True, help="the large model both offload to")
    parser.add_argument("--eval-set", required=True, help="aime24, aime25, math500 or a local file")
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder for both pipelines and compare.json")
    parser.add_argument("--mode", action="append", default=None,
                        help="evaluate offload modes (default: learned and random)")
    parser.add_argument("--train-arg", action="append", default=[], help="extra argument for train sft (repeat)")
    parser.add_argument("--eval-arg", action="append", default=[], help="extra argument for evaluate offload (repeat)")
    options = parser.parse_args(argv)
    options.mode = options.mode or ["learned", "random"]
    names = options.names or [run.name for run in options.runs]
    if names[0] == names[1]:
        names = [f"a-{names[0]}", f"b-{names[1]}"]
    for run in options.runs:
        if not (run / "annotations").is_dir():
            parser.error(f"{run} is not an annotate output (no annotations/ folder)")

    rows = []
    for name, run in zip(names, options.runs):
        summary = run_labelling(name, run, options.out, options)
        rows += [row(name, mode, figures) for mode, figures in summary["modes"].items()]
    (options.out / "compare.json").write_text(json.dumps({"runs": [str(run) for run in options.runs],
                                                          "names": names, "rows": rows}, indent=2) + "\n")
    show(rows)
    print(f"wrote {options.out / 'compare.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

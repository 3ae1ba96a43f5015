"""In-process vLLM judge at scale: one engine, continuous batching, throughput by concurrency.

Run from the repository root with the vLLM virtualenv's python (scripts/setup_vllm_cpu.sh):

    .venv-vllm/bin/python benchmarks/bench_vllm_inprocess.py            # ~5 min on 2 CPU cores
    .venv-vllm/bin/python benchmarks/bench_vllm_inprocess.py --quick    # ~1 min (two engine starts of ~20 s)

On a GPU machine, the same script with a real judge (no CPU settings are applied then; pass
the engine arguments your model needs):

    python benchmarks/bench_vllm_inprocess.py --model /models/Qwen2.5-32B-Instruct --traces 2000 \\
        --trace-chars 6000 20000 --max-tokens 2048 --max-model-len 32768 --concurrency 1 64 256 \\
        --vllm-arg tensor_parallel_size=2

What it does: writes N seeded R1-like traces (benchmarks/bench_alignment.py's generator) as an
OpenR1-schema JSONL file; without --model it builds the tiny random Llama of tests/tiny_model.py
into a temp dir. Then, for each concurrency, a fresh OUT and one subprocess

    python -m splitreason.cli annotate traces.jsonl -o OUT --judge vllm:MODEL --concurrency C \\
        --max-attempts 1 --max-tokens T --vllm-arg ...

(one answer per trace, so answers = requests = traces and the parse rate is per answer). From
run.json: the annotation loop's time (`elapsed_seconds`: engine start excluded), tokens, and the
judge's `batching` record (engines, requests with a JSON schema, engine steps, requests in the
engine per step = the batch size); from vLLM's log, how many engines it initialised; from the
annotation files, how many answers parsed and how many quotes aligned. Concurrency 1 runs on
fewer traces (--unbatched-traces): its per-trace rate does not depend on N.

The CPU figures are for a ~0.5M-parameter random model: they show how batching scales on one
engine, not how fast a 32B judge is. The random model writes nonsense inside the JSON schema,
so most answers are cut at --max-tokens and almost no quote aligns; that is reported, not hidden.

Results go to benchmarks/results/vllm_inprocess.json (--output); a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_alignment import make_trace  # noqa: E402

from tests.vllm_server import _child_env  # noqa: E402  (the venv's env, without PYTHONPATH leaks)

# ---------------------------------------------------------------------------- configuration

RESULTS = ROOT / "benchmarks" / "results" / "vllm_inprocess.json"
TRACES = 256
UNBATCHED_TRACES = 16
TRACE_CHARS = (2_000, 3_000)  # ~1.3-2k tokens with the tiny tokenizer, ~2.5-3k with the prompt
CONCURRENCIES = (1, 64, 256)
MAX_TOKENS = 256
MAX_SPANS, MAX_EXCERPT_CHARS = 2, 80  # a small answer schema: the tiny model closes it sometimes
TINY_MAX_MODEL_LEN = 4096
QUICK = {"traces": 64, "unbatched_traces": 4, "concurrency": [1, 64], "max_tokens": 64}
# CPU engine settings for the tiny model (see the shared notes, "vLLM on the CPU").
CPU_ENGINE_ARGS = ["enforce_eager=true", "dtype=float32", "seed=0"]
CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
ENGINE_LOG_LINE = "Initializing a V1 LLM engine"  # vLLM logs it once per engine

# ---------------------------------------------------------------------------- workload


def write_traces(path: Path, count: int, chars: tuple[int, int], seed: int) -> list[int]:
    rng = random.Random(seed)
    sizes = []
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            trace = make_trace(rng.randint(*chars), seed * 1_000_003 + i)
            sizes.append(len(trace))
            record = {
                "problem": f"Problem {i}. Find the value asked for, showing every step.", "solution": "See the trace.",
                "answer": trace.rsplit("boxed{", 1)[1].split("}")[0], "problem_type": "Algebra",
                "question_type": "math-word-problem", "source": "olympiads", "uuid": f"bench-{i:06d}",
                "is_reasoning_complete": [True], "generations": [trace], "correctness_math_verify": [True],
                "correctness_llama": None, "finish_reasons": ["stop"], "correctness_count": 1, "messages": [],
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return sizes


def build_tiny_model(dest: Path) -> Path:
    from tests.tiny_model import build_tiny_model as build

    return build(dest)


# ---------------------------------------------------------------------------- one run


def annotate(args: argparse.Namespace, model: str, source: Path, work: Path, concurrency: int, limit: int) -> dict:
    out = work / f"out-c{concurrency}"
    shutil.rmtree(out, ignore_errors=True)  # fresh OUT: the answer cache never short-circuits a request
    engine_args = [] if args.model else [*CPU_ENGINE_ARGS, f"max_model_len={TINY_MAX_MODEL_LEN}"]
    if args.max_model_len:
        engine_args.append(f"max_model_len={args.max_model_len}")
    engine_args += args.vllm_arg
    command = [sys.executable, "-m", "splitreason.cli", "annotate", str(source), "-o", str(out),
               "--judge", f"vllm:{model}", "--concurrency", str(concurrency), "--limit", str(limit),
               "--no-progress", "--max-attempts", "1", "--timeout", "36000", "--max-tokens", str(args.max_tokens),
               "--max-spans", str(MAX_SPANS), "--max-excerpt-chars", str(MAX_EXCERPT_CHARS)]
    for engine_arg in engine_args:
        command += ["--vllm-arg", engine_arg]
    env = _child_env({**(CPU_ENV if not args.model else {}), "VLLM_CACHE_ROOT": str(work / "vllm-cache"),
                      "TORCHINDUCTOR_CACHE_DIR": str(work / "vllm-cache"), "NO_COLOR": "1", "COLUMNS": "200"})
    print(f"concurrency {concurrency}: annotating {limit} traces ...", file=sys.stderr, flush=True)
    began = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.monotonic() - began
    log = result.stdout + result.stderr
    (work / f"annotate-c{concurrency}.log").write_text(log, encoding="utf-8")
    if result.returncode != 0:
        raise SystemExit(f"annotate at concurrency {concurrency} failed (exit {result.returncode}):\n{log[-4000:]}")
    return measure(out, model, concurrency, wall, log.count(ENGINE_LOG_LINE))


def measure(out: Path, model: str, concurrency: int, wall: float, engines_logged: int) -> dict:
    invocation = json.loads((out / "run.json").read_text(encoding="utf-8"))["invocations"][-1]
    batching = invocation["batching"][f"vllm:{model}"]
    records = [json.loads(line) for path in sorted((out / "annotations").glob("shard-*.jsonl"))
               for line in path.read_text(encoding="utf-8").splitlines()]
    reasons = Counter(record["status_reason"].split(":", 1)[0] for record in records)
    unusable = [r for r in records if r["status_reason"].startswith("judge_unusable_answer")]
    parsed = [r for r in records if not r["status_reason"].startswith("judge_")]
    quotes = sum(r["excerpts"] for r in parsed)
    hallucinated = sum(len(r["hallucinated"]) for r in parsed)
    seconds = invocation["elapsed_seconds"]
    return {
        "concurrency": concurrency, "traces": len(records), "loop_seconds": seconds, "wall_seconds": round(wall, 2),
        "traces_per_s": round(len(records) / seconds, 3),
        "traces_per_s_end_to_end": round(len(records) / wall, 3),
        "prompt_tokens": invocation["prompt_tokens"], "completion_tokens": invocation["completion_tokens"],
        "prompt_tokens_per_s": round(invocation["prompt_tokens"] / seconds, 1),
        "completion_tokens_per_s": round(invocation["completion_tokens"] / seconds, 1),
        "engines": batching["engines"], "engines_logged_by_vllm": engines_logged,
        "requests": batching["requests"], "structured_requests": batching["structured_requests"],
        "steps": batching["steps"], "mean_batch_size": batching["mean_batch_size"],
        "max_batch_size": batching["max_batch_size"], "errors": invocation.get("errors", {}),
        "answers_parsed": len(parsed), "answers_truncated": sum("truncated" in r["status_reason"] for r in unusable),
        "answers_unparseable": sum("truncated" not in r["status_reason"] for r in unusable),
        "quotes": quotes, "quotes_aligned": quotes - hallucinated, "reasons": dict(reasons),
    }


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="throughput of the in-process vLLM judge by concurrency")
    parser.add_argument("--model", help="model path or id (default: a tiny random Llama built here, on the CPU)")
    parser.add_argument("--traces", type=int, default=TRACES)
    parser.add_argument("--unbatched-traces", type=int, default=UNBATCHED_TRACES, help="traces at concurrency 1")
    parser.add_argument("--trace-chars", type=int, nargs=2, default=TRACE_CHARS, metavar=("MIN", "MAX"))
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCIES))
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--vllm-arg", action="append", default=[], help="KEY=VALUE engine argument; repeatable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="64 traces, concurrency 1 and 64, 64 tokens")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=None, help="keep inputs, outputs and logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.traces, args.unbatched_traces = QUICK["traces"], QUICK["unbatched_traces"]
        args.concurrency, args.max_tokens = QUICK["concurrency"], QUICK["max_tokens"]

    work = args.workdir or Path(tempfile.mkdtemp(prefix="splitreason-vllm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    try:
        model = args.model or str(build_tiny_model(work / "tiny-model"))
        source = work / "traces.jsonl"
        sizes = write_traces(source, args.traces, tuple(args.trace_chars), args.seed)
        runs = [annotate(args, model, source, work, concurrency,
                         args.unbatched_traces if concurrency == 1 else args.traces)
                for concurrency in args.concurrency]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    unbatched = next((run for run in runs if run["concurrency"] == 1), None)
    for run in runs:
        run["speedup_vs_concurrency_1"] = (round(run["traces_per_s"] / unbatched["traces_per_s"], 2)
                                           if unbatched else None)
    import torch
    import vllm

    result = {
        "benchmark": "vllm_inprocess",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": " ".join([".venv-vllm/bin/python", "benchmarks/bench_vllm_inprocess.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "config": {"model": args.model or "tiny random Llama (tests/tiny_model.py: hidden 128, 2 layers, vocab ~512)",
                   "traces": args.traces, "unbatched_traces": args.unbatched_traces,
                   "trace_chars": {"min": min(sizes), "mean": round(sum(sizes) / len(sizes)), "max": max(sizes)},
                   "max_tokens": args.max_tokens, "max_spans": MAX_SPANS, "max_excerpt_chars": MAX_EXCERPT_CHARS,
                   "vllm_args": args.vllm_arg, "seed": args.seed, "quick": args.quick},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "vllm": vllm.__version__, "torch": torch.__version__,
                    "device": "cpu" if not args.model else "as configured"},
        "note": ("CPU figures on a tiny random model: they show how one engine's throughput scales with batching, "
                 "not the speed of a real judge. The random model writes nonsense inside the JSON schema, so most "
                 "answers are cut at max_tokens and almost no quote aligns.") if not args.model else "",
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print_table(result)
    return 0


def _print_table(result: dict) -> None:
    cfg = result["config"]
    print(f"\nin-process vLLM judge: {cfg['model']}; traces of ~{cfg['trace_chars']['mean']:,} characters, "
          f"max_tokens {cfg['max_tokens']}, one answer per trace")
    header = (f"{'conc.':>5} | {'traces':>6} | {'loop s':>7} | {'traces/s':>8} | {'x c=1':>6} | {'prompt tok/s':>12} | "
              f"{'compl. tok/s':>12} | {'steps':>6} | {'batch mean/max':>14} | {'engines':>7} | {'schema':>7} | "
              f"{'parsed':>7} | {'quotes aligned':>14}")
    print(header)
    print("-" * len(header))
    for run in result["runs"]:
        speedup = f"{run['speedup_vs_concurrency_1']:.2f}" if run["speedup_vs_concurrency_1"] else "-"
        batch = f"{run['mean_batch_size']:g}/{run['max_batch_size']}"
        engines = f"{run['engines']} ({run['engines_logged_by_vllm']})"
        schema = f"{run['structured_requests']}/{run['requests']}"
        parsed = f"{run['answers_parsed']}/{run['traces']}"
        aligned = f"{run['quotes_aligned']}/{run['quotes']}"
        print(f"{run['concurrency']:>5} | {run['traces']:>6} | {run['loop_seconds']:>7.1f} | {run['traces_per_s']:>8.2f} | "
              f"{speedup:>6} | {run['prompt_tokens_per_s']:>12,.0f} | {run['completion_tokens_per_s']:>12,.0f} | "
              f"{run['steps']:>6} | {batch:>14} | {engines:>7} | {schema:>7} | {parsed:>7} | {aligned:>14}")
    print("engines: splitreason's count (vLLM's own log lines); schema: requests with a JSON schema / requests; "
          "loop s: run.json elapsed_seconds (engine start excluded)")
    if result["note"]:
        print(result["note"])


if __name__ == "__main__":  # vLLM may spawn workers that import this module
    raise SystemExit(main())

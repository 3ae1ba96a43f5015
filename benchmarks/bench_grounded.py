"""Cost of the model-grounded judges on the tiny pair: tokens/s and forward passes per trace of
`surprisal:` and `divergence:` (greedy and kl), at batch sizes 1 and 8.

    python benchmarks/bench_grounded.py                  # ~1-2 min on 2 CPU cores (builds and trains the pair)
    python benchmarks/bench_grounded.py --traces 64 --sentences 30

What it does: builds the two tiny models of tests/grounded_fixtures.py (2 layers, hidden 128, a
byte-level BPE of ~1k tokens; the "large" one is the small one trained further), then judges
--traces planted traces with each judge through the judge API (as `annotate` calls it, all traces
in flight at once), the models loaded once beforehand. Reported: tokens read per second (prompt +
trace, per model), forward passes (batches) per trace, and seconds. torch runs on --threads
threads (default 1).

Numbers from tiny models on a CPU show what the judges cost relative to each other (divergence
reads every token with two models; batching amortises the passes), never the speed of a real
pair: on a GPU, real models read tens of thousands of tokens per second. Results go to
benchmarks/results/grounded_judges.json (--output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.grounded_fixtures import build_pair, planted_share, planted_traces  # noqa: E402


def judge_all(judge, traces, target: float) -> dict:
    from splitreason.schemas import Trace

    async def go():
        await judge.start()
        began = time.perf_counter()
        await asyncio.gather(*[judge.judge(Trace(trace_id=str(i), uuid=str(i), generation_index=0, problem=problem,
                                                 text=text), target) for i, (problem, text, _) in enumerate(traces)])
        seconds = time.perf_counter() - began
        await judge.close()
        return seconds

    seconds = asyncio.run(go())
    stats = judge.batch_stats.as_dict()
    models = len(judge.model_names)
    return {"judge": judge.backend + (f" ({judge.settings.divergence})" if models > 1 else ""),
            "batch_size": judge.settings.batch_size, "traces": len(traces), "models": models,
            "tokens_per_model": stats["tokens"], "forward_passes": stats["forward_passes"] * models,
            "forward_passes_per_trace": round(stats["forward_passes"] * models / len(traces), 3),
            "seconds": round(seconds, 3), "tokens_per_second": round(stats["tokens"] / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "grounded_judges.json")
    args = parser.parse_args()

    import torch

    from splitreason.judges.divergence import DivergenceJudge
    from splitreason.judges.grounded import GroundedSettings
    from splitreason.judges.surprisal import SurprisalJudge

    torch.set_num_threads(args.threads)
    traces = planted_traces(args.traces, seed=99, sentences=args.sentences)
    target = planted_share(traces)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        pair = build_pair(Path(folder))
        torch.set_num_threads(args.threads)
        for batch in (1, 8):
            results.append(judge_all(SurprisalJudge("s", str(pair.small), GroundedSettings(batch_size=batch)),
                                     traces, target))
            for mode in ("greedy", "kl"):
                results.append(judge_all(DivergenceJudge("d", str(pair.small), str(pair.large),
                                                         GroundedSettings(batch_size=batch, divergence=mode)),
                                         traces, target))
    print(f"{'judge':<22} {'batch':>5} {'passes/trace':>12} {'tokens/s (per model)':>21} {'seconds':>8}")
    for row in results:
        print(f"{row['judge']:<22} {row['batch_size']:>5} {row['forward_passes_per_trace']:>12} "
              f"{row['tokens_per_second']:>21,.0f} {row['seconds']:>8}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": platform.platform(), "threads": args.threads,
                                       "traces": args.traces, "sentences": args.sentences,
                                       "mean_tokens_per_trace": round(results[0]["tokens_per_model"] / args.traces, 1),
                                       "results": results}, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the close check: one small-model forward pass per chunk against probing every prefix.

Run from the repository root:

    python benchmarks/bench_close_check.py                     # the tiny pair (trained here, ~2 min on 2 cores)
    python benchmarks/bench_close_check.py --small S --large L --device cuda --eval-set aime24 --problems 5 \
        --max-tokens 4096 --chunk-tokens 64                    # a real pair on a GPU

Step 1 runs the learned handoff (`splitreason.evaluate.handoff.run_trace`, transformers backend,
sampled at `--temperature`, default 0.7, so that the problems' contexts differ; the close check
itself is the greedy rule) on a few problems and records every close check it made: the small model's context and the
chunk the large model wrote. Step 2 replays each close check three ways, each on a session whose
cache already holds the context before the chunk (priming is not timed), and checks they agree:

    one-pass    the runtime's: the small model reads the whole chunk in ONE forward pass and the
                segment ends at the first position whose greedy next token is </bigmodel>
    per-prefix  one forward pass per chunk position (each prefix probed; the cache grows a token
                at a time), stopping at the first close
    anchor      the anchor's inference: for every prefix, generate 8 tokens greedily and look for
                the close tag in them (8 passes per prefix), stopping at the first close

Reported per method: forward passes and wall time per close check (mean), and their totals;
the speed-up of one-pass over the others. Step 3 times the whole traces (one-pass runtime) and
the slow reference (`handoff/reference.py`: no cache, per-prefix) and checks they wrote the same
tokens. Results go to benchmarks/results/close_check.json (or --out). Tiny-model timings show the
mechanism; the pass counts hold for any pair.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ANCHOR_PROBE_TOKENS = 8


def tiny_pair(root: Path) -> tuple[Path, Path, list[str]]:
    from tests.offload_fixtures import build_large_model, make_offload_export, train_tagged_model

    export = make_offload_export(root / "export")
    small = train_tagged_model(root / "small", export.train, export.base_model)
    large = build_large_model(root / "large", small)
    problems = [f"Problem {20000 + index}: work out the value step by step." for index in range(8)]
    return small, large, problems


def record_checks(small_runner, large_runner, problems, settings, small_prompt, large_prompt, *, record=True):
    """Run the traces; return them and every close check (context, chunk length) they made."""
    from splitreason.evaluate.handoff import run_trace, tag_ids_of
    from splitreason.evaluate.handoff.hf import HFSession

    checks: list[tuple[list[int], int]] = []
    original = HFSession.next_token_views

    def recording(self, context, start, watch):
        if record and self.model is small_runner.model:
            checks.append((list(context), len(context) - start))
        return original(self, context, start, watch)

    HFSession.next_token_views = recording
    traces = []
    began = time.perf_counter()
    try:
        for seed, problem in enumerate(problems):
            traces.append(run_trace(small_runner, large_runner, small_prompt_ids=small_prompt(problem),
                                    large_prompt_ids=large_prompt(problem), tags=tag_ids_of(small_runner.tokenizer),
                                    settings=settings, seed=seed))
    finally:
        HFSession.next_token_views = original
    return traces, checks, time.perf_counter() - began


def _sync(device) -> None:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize()


def replay(small_runner, checks, close_id: int) -> dict:
    """Each check three ways on a primed cache; passes, seconds and the close found."""
    results = {"one-pass": [], "per-prefix": [], "anchor": []}
    disagreements = 0
    for context, chunk in checks:
        start = len(context) - chunk
        found = {}
        for method in results:
            session = small_runner.session(0)
            session.next_token_views(context[:start], start - 1, watch=())  # prime: the context before the chunk
            passes_before = session.forward_passes
            _sync(session.device)
            began = time.perf_counter()
            close_at = None
            if method == "one-pass":
                views = session.next_token_views(context, start, watch=(close_id,))
                close_at = next((i for i, view in enumerate(views) if view.greedy_id == close_id), None)
            else:
                for index in range(chunk):
                    prefix = context[: start + index + 1]
                    if method == "per-prefix":
                        view = session.next_token_views(prefix, len(prefix) - 1, watch=(close_id,))[0]
                        hit = view.greedy_id == close_id
                    else:
                        from splitreason.evaluate.handoff import Sampling

                        written = session.generate(prefix, max_new_tokens=ANCHOR_PROBE_TOKENS, sampling=Sampling())
                        hit = close_id in written.ids
                    if hit:
                        close_at = index
                        break
            _sync(session.device)
            results[method].append((session.forward_passes - passes_before, time.perf_counter() - began))
            found[method] = close_at
            session.close()
        if found["one-pass"] != found["per-prefix"]:
            disagreements += 1
    summary = {}
    for method, values in results.items():
        passes = [value[0] for value in values]
        seconds = [value[1] for value in values]
        summary[method] = {"checks": len(values), "passes_total": sum(passes), "seconds_total": sum(seconds),
                           "passes_per_check": sum(passes) / len(values) if values else 0,
                           "ms_per_check": 1000 * sum(seconds) / len(values) if values else 0}
    summary["one_pass_vs_per_prefix_disagreements"] = disagreements
    for other in ("per-prefix", "anchor"):
        summary[f"speedup_vs_{other}"] = (summary[other]["seconds_total"] / summary["one-pass"]["seconds_total"]
                                          if summary["one-pass"]["seconds_total"] else None)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", help="small (tagged) model; default: train the tiny one here")
    parser.add_argument("--large", help="large model sharing the small one's vocabulary")
    parser.add_argument("--eval-set", help="problems for a real pair: aime24, math500, a .jsonl file")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=0.7,
                        help="sampling of the recorded traces (varied contexts; the reference check is greedy)")
    parser.add_argument("--chunk-tokens", type=int, default=16)
    parser.add_argument("--max-segment-tokens", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--skip-reference", action="store_true", help="skip the slow whole-trace reference")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/close_check.json"))
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from splitreason.evaluate.handoff import HandoffSettings, HFRunner, check_shared_vocabulary, tag_ids_of
    from splitreason.evaluate.handoff.reference import reference_trace
    from splitreason.evaluate.offload.prompts import PromptBuilder

    with tempfile.TemporaryDirectory() as scratch:
        if args.small and args.large:
            small_path, large_path = args.small, args.large
            if args.eval_set:
                from splitreason.io.eval_sets import load_eval_set

                problems = [problem.problem for problem in load_eval_set(args.eval_set).problems[: args.problems]]
            else:
                problems = [f"Problem {20000 + index}: work out the value step by step." for index in range(args.problems)]
        else:
            print("training the tiny pair (about a minute or two on 2 cores) ...", file=sys.stderr)
            small_path, large_path, problems = tiny_pair(Path(scratch))
            problems = problems[: args.problems]
        small = HFRunner.load(str(small_path), device=args.device, dtype=args.dtype, what="small model")
        large = HFRunner.load(str(large_path), device=args.device, dtype=args.dtype, what="large model")
        check_shared_vocabulary(small.tokenizer, large.tokenizer)
        small_prompt = PromptBuilder.for_small(small.tokenizer, str(small_path), None)
        large_prompt = PromptBuilder.for_large(large.tokenizer)
        tags = tag_ids_of(small.tokenizer)
        if not tags.single:
            print("the small model's tags are text; this benchmark replays single-token close checks only",
                  file=sys.stderr)
            return 2
        from splitreason.evaluate.handoff import Sampling

        settings = HandoffSettings(chunk_tokens=args.chunk_tokens, max_segment_tokens=args.max_segment_tokens,
                                   max_tokens=args.max_tokens, sampling=Sampling(temperature=args.temperature))
        traces, checks, traces_s = record_checks(small, large, problems, settings, small_prompt.ids, large_prompt.ids)
        replayed = replay(small, checks, tags.close_ids[0])
        report = {
            "machine": platform.processor() or platform.machine(), "device": str(small.model.device),
            "threads": args.threads, "small": str(small_path), "large": str(large_path),
            "settings": {"chunk_tokens": args.chunk_tokens, "max_segment_tokens": args.max_segment_tokens,
                         "max_tokens": args.max_tokens, "problems": len(problems),
                         "temperature": args.temperature, "close_rule": "greedy"},
            "traces": {"count": len(traces), "seconds": traces_s,
                       "tokens": sum(sum(trace.tokens_by_model().values()) for trace in traces),
                       "large_tokens": sum(trace.tokens_by_model()["large"] for trace in traces),
                       "handoffs": sum(trace.handoffs for trace in traces),
                       "close_checks": sum(trace.close_checks for trace in traces),
                       "forward_passes": {name: sum(trace.forward_passes[name] for trace in traces)
                                          for name in ("small", "large")}},
            "close_check": replayed,
        }
        if not args.skip_reference:
            greedy = HandoffSettings(chunk_tokens=args.chunk_tokens, max_segment_tokens=args.max_segment_tokens,
                                     max_tokens=args.max_tokens)
            greedy_traces, _, greedy_s = record_checks(small, large, problems, greedy, small_prompt.ids,
                                                       large_prompt.ids, record=False)
            began = time.perf_counter()
            same = 0
            passes = {"small": 0, "large": 0}
            for problem, trace in zip(problems, greedy_traces):
                slow = reference_trace(small.model, large.model, small_prompt_ids=small_prompt.ids(problem),
                                       large_prompt_ids=large_prompt.ids(problem), tags=tags, settings=greedy,
                                       small_eos=small.eos_ids, large_eos=large.eos_ids, large_banned=tags.all_ids)
                same += slow.completion_ids == trace.completion_ids
                passes = {name: passes[name] + slow.forward_passes[name] for name in passes}
            report["reference"] = {"greedy_runtime_seconds": greedy_s,
                                   "greedy_runtime_forward_passes": {
                                       name: sum(trace.forward_passes[name] for trace in greedy_traces)
                                       for name in ("small", "large")},
                                   "seconds": time.perf_counter() - began, "same_tokens": same,
                                   "forward_passes": passes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print(report)
    return 0


def _print(report: dict) -> None:
    traces = report["traces"]
    print(f"{traces['count']} traces, {traces['tokens']} tokens ({traces['large_tokens']} by the large model), "
          f"{traces['handoffs']} handoffs, {traces['close_checks']} close checks, {traces['seconds']:.2f} s")
    print(f"{'method':<12}{'passes/check':>14}{'ms/check':>10}{'passes':>8}{'seconds':>9}")
    for method in ("one-pass", "per-prefix", "anchor"):
        figures = report["close_check"][method]
        print(f"{method:<12}{figures['passes_per_check']:>14.1f}{figures['ms_per_check']:>10.2f}"
              f"{figures['passes_total']:>8}{figures['seconds_total']:>9.3f}")
    check = report["close_check"]
    print(f"one-pass speed-up: {check['speedup_vs_per-prefix']:.1f}x over per-prefix, "
          f"{check['speedup_vs_anchor']:.1f}x over the anchor's probes; disagreements one-pass vs per-prefix: "
          f"{check['one_pass_vs_per_prefix_disagreements']}")
    if "reference" in report:
        reference = report["reference"]
        print(f"whole greedy traces: runtime {reference['greedy_runtime_seconds']:.2f} s, "
              f"{reference['greedy_runtime_forward_passes']} passes; slow reference "
              f"{reference['seconds']:.2f} s, {reference['forward_passes']} passes; same tokens "
              f"{reference['same_tokens']}/{traces['count']}")


if __name__ == "__main__":
    raise SystemExit(main())

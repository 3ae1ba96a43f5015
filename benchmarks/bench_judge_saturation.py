"""Judge saturation: does `splitreason annotate` keep a slow judge as busy as a bare client can?

Run from the repository root:

    python benchmarks/bench_judge_saturation.py            # 2,000 traces, 5 rounds (about 3 minutes)
    python benchmarks/bench_judge_saturation.py --quick    # 400 traces, 2 rounds (about 30 s)
    python benchmarks/bench_judge_saturation.py --profile  # also one cProfile'd annotate run (top items)

Acceptance criterion: against a local judge server with a fixed 200 ms latency at concurrency
64, `splitreason annotate` reaches at least 0.9 of the throughput of a bare async `openai`
client loop sending the same requests to the same server in the same run.

Setup:

* ``benchmarks/judge_latency_server.py`` runs in its own process (so it does not share the
  client's CPU or GIL) on 127.0.0.1, a free port. Every chat request waits ``--latency``
  seconds, then quotes 3 sentences of the trace as {"spans": [...]}. Ideal throughput is
  concurrency / latency = 64 / 0.2 = 320 requests/s.
* N synthetic DeepSeek-R1-like traces (6-12k characters, LaTeX, ``<think>``, seeded) are written
  as an OpenR1-schema JSONL file, one generation per record.
* baseline: ``openai.AsyncOpenAI(base_url, api_key="x", max_retries=0)`` and 64 worker tasks,
  in this process, calling ``client.chat.completions.create(**payload)`` with, for each trace,
  the very payload splitreason sends (built with splitreason's own ``build_messages`` and the
  judge's ``build_payload``), after one ``models.list()`` like splitreason's preflight (not
  timed). Throughput = N / time of the loop.
* post-baseline (informational, not the criterion): the same loop with the SDK call
  splitreason's openai judge makes, ``client.post("/chat/completions", cast_to=ChatCompletion,
  body=payload)``, which skips the SDK's per-request walk of its typed params; the ratio to it
  (``ratio_vs_post``) is the overhead of splitreason's own pipeline alone.
* splitreason: ``python -m splitreason.cli annotate FILE -o OUT --judge openai:<model>
  --base-url URL --concurrency 64 --no-progress`` in a subprocess, a fresh OUT every time (so
  the answer cache never short-circuits a request). Two throughputs: in-process =
  annotated / ``run.json`` invocations[-1].elapsed_seconds (the annotation loop: reading,
  prompts, requests, cache, alignment, writing), which the ratio uses; and end-to-end =
  N / wall time from spawn to exit (interpreter start, imports, preflight, manifest, shard
  hashing, summary included).
* The server's /stats request count and order-independent digest of request bodies are
  compared before/after each run: both clients must send exactly N requests with identical
  bodies (``payloads_identical`` in the results).
* One warm-up of each client (128 traces) and one ``--limit 0`` annotate run (the fixed CPU
  of a process: interpreter, imports, preflight; subtracted in "ours CPU ms/trace") come first.
* Rounds run baseline, splitreason, post-baseline, then again, to cancel drift; the reported
  ratio is the median of the per-round ratios (splitreason in-process / baseline).

Results go to ``benchmarks/results/judge_saturation.json``; a table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid as uuidlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from openai.types.chat import ChatCompletion  # noqa: E402

from splitreason.io.inputs import plan_input  # noqa: E402
from splitreason.io.selection import Selection  # noqa: E402
from splitreason.judges.factory import JudgeSettings, create_judge  # noqa: E402
from splitreason.judges.llm import build_messages  # noqa: E402
from splitreason.judges.registry import resolve  # noqa: E402
from splitreason.schemas import Trace  # noqa: E402

SERVER = ROOT / "benchmarks" / "judge_latency_server.py"
RESULTS = ROOT / "benchmarks" / "results" / "judge_saturation.json"
MODEL = "bench-judge"
TARGET_COVERAGE = 0.15  # splitreason annotate's default --target-coverage
THRESHOLD = 0.9

# ---------------------------------------------------------------------------- synthetic traces

OPENERS = ["Okay, so", "Alright,", "Hmm,", "So", "Now,", "Wait,", "Let me see,", "OK,", "Actually,", "Then"]
THINGS = ["the smallest positive integer $n$", "all real solutions", "the number of ordered pairs $(a, b)$",
          "the maximum value of $f$", "the area of triangle $ABC$", "the remainder modulo ${m}$",
          "the sum of the roots", "the probability", "the length of $BC$", "the coefficient of $x^{{{k}}}$"]
SENTENCES = [
    "{o} I need to find {thing} such that ${v}^2 - {a}{v} + {b} = 0$.",
    "Let me think about this step by step, starting from the definition.",
    "First, note that ${a}^2 + {b}^2 = {c}$, so ${v} = \\frac{{{a}}}{{{b}}}$ must hold as well.",
    "{o} that doesn't seem right. Let me re-check the computation of ${v}_{{{n}}}$ from the recurrence.",
    "Maybe I should try substituting ${v} = {n}$ into the original equation and see what happens.",
    "Therefore $\\sqrt{{{n}}} \\approx {f}$, and the bound $|{v}| \\le {a}$ holds for every admissible ${v}$.",
    "But wait, if ${v} < {n}$, then the inequality flips and we need to recount {thing}.",
    "Alternatively, consider the function $f({v}) = {a}{v}^2 - {b}{v} + {c}$ on the interval $[0, {n}]$.",
    "Let's verify: $f({n}) = {c}$, which matches the value we expected from the symmetry argument.",
    "Since $\\gcd({a}, {b}) = 1$, we get ${a}^{{-1}} \\equiv {c} \\pmod{{{b}}}$ by the extended Euclidean algorithm.",
    "The derivative is $f'({v}) = {a}{v} - {b}$, and setting it to zero gives ${v} = \\frac{{{b}}}{{{a}}}$.",
    "That gives us {n} cases in total, so the count is ${a} \\cdot {b} = {c}$ before removing duplicates.",
    "Is that correct? I think so, but let me double-check with a small example like ${v} = {n}$.",
    "{o} by the triangle inequality, $|{v} - {a}| + |{v} + {b}| \\geq {c}$, with equality iff ${v} \\in [-{b}, {a}]$.",
    "Multiplying both sides by ${a}$ gives ${a}{v} = {c}$, hence ${v} = {f}$ after simplifying.",
    "Let me write $S_{{{n}}} = \\sum_{{i=1}}^{{{n}}} i^{{{a}}}$ and look for a pattern in the first few terms.",
    "{o} the answer should be {thing}, which I computed as ${c}$, but let me make sure nothing was missed.",
    "Expanding $({v} + {a})^2 = {v}^2 + {d}{v} + {e}$ and comparing coefficients with the right-hand side gives ${d} = {c}$.",
    "So the discriminant is $\\Delta = {b}^2 - 4 \\cdot {a} \\cdot {n}$, which is positive, so there are two real roots.",
    "Using Vieta's formulas, the product of the roots is $\\frac{{{c}}}{{{a}}}$ and their sum is $-\\frac{{{b}}}{{{a}}}$.",
]
DISPLAYS = [
    "\\[\n\\sum_{{k=1}}^{{{n}}} \\frac{{{a}k}}{{k + {b}}} = {c}\n\\]",
    "\\[\n\\int_0^{{{n}}} \\left({a}x^2 - {b}\\right)\\,dx = \\frac{{{a} \\cdot {n}^3}}{{3}} - {b} \\cdot {n}\n\\]",
    "\\[\n\\binom{{{n}}}{{{k}}} = \\frac{{{n}!}}{{{k}!\\,({n}-{k})!}}\n\\]",
]


def _fill(rng: random.Random, template: str) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 999)
    fields = dict(o=rng.choice(OPENERS), v=rng.choice(["x", "y", "n", "k", "t", "\\alpha", "\\theta"]), a=a, b=b,
                  c=rng.randint(-500, 9999), d=2 * a, e=a * a, n=rng.randint(3, 200), k=rng.randint(2, 9),
                  m=rng.randint(3, 97), f=f"{rng.uniform(0, 100):.3f}")
    fields["thing"] = rng.choice(THINGS).format(**fields)
    return template.format(**fields)


def make_trace(rng: random.Random) -> str:
    """An R1-like trace of 6-12k characters."""
    size = rng.randint(6_000, 12_000)
    answer = rng.randint(1, 999)
    tail = f"\n</think>\n\nThe answer is $\\boxed{{{answer}}}$."
    parts, length = ["<think>\n"], 8
    while length < size - len(tail):
        paragraph = " ".join(_fill(rng, rng.choice(SENTENCES)) for _ in range(rng.randint(2, 6)))
        if rng.random() < 0.25:
            paragraph += "\n" + _fill(rng, rng.choice(DISPLAYS)) + "\n" + _fill(rng, rng.choice(SENTENCES))
        parts.append(paragraph + "\n\n")
        length += len(paragraph) + 2
    return "".join(parts).rstrip() + tail


def write_openr1(path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            trace = make_trace(rng)
            record = {
                "problem": _fill(rng, "Problem {n}. Find {thing} given that ${a}x + {b} = {c}$."),
                "solution": "By the computation in the trace.", "answer": trace.rsplit("boxed{", 1)[1].split("}")[0],
                "problem_type": "Algebra", "question_type": "math-word-problem", "source": "olympiads",
                "uuid": str(uuidlib.UUID(int=rng.getrandbits(128))), "is_reasoning_complete": [True],
                "generations": [trace], "correctness_math_verify": [True], "correctness_llama": None,
                "finish_reasons": ["stop"], "correctness_count": 1, "messages": [],
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------- server


class Server:
    def __init__(self, latency: float):
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), "--latency", str(latency), "--model", MODEL],
            stdout=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"judge server did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1]
        self.root = self.base_url.rsplit("/v1", 1)[0]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.root + "/stats", timeout=10) as response:
            return json.loads(response.read())

    def close(self) -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(self.root + "/shutdown", method="POST"), timeout=5).read()
            self.process.wait(10)
        except Exception:
            self.process.kill()
            self.process.wait()


def _delta(before: dict, after: dict) -> dict:
    return {"requests": after["requests"] - before["requests"],
            "digest": f"{int(after['digest'], 16) ^ int(before['digest'], 16):032x}"}


# ---------------------------------------------------------------------------- the two clients


def build_payloads(input_path: Path, base_url: str) -> list[dict]:
    """The exact request bodies splitreason sends: its reader, its prompt, its judge's payload."""
    spec = resolve(f"openai:{MODEL}", {}, base_url=base_url)
    judge = create_judge(spec, JudgeSettings(), cache=None)  # the CLI's defaults
    plan = plan_input(str(input_path), num_shards=None, limit=None)
    traces = [item for _, item in plan.items(Selection(), hub_split="train", hub_config=None, shard_indices=None)
              if isinstance(item, Trace)]
    return [judge.build_payload(build_messages(t, TARGET_COVERAGE, judge.config.max_spans)) for t in traces]


async def _baseline(base_url: str, payloads: list[dict], concurrency: int, call: str = "create") -> dict:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    await client.models.list()  # like splitreason's preflight; not timed
    pending = iter(payloads)
    latencies: list[float] = []

    async def worker() -> None:
        for payload in pending:
            sent = time.perf_counter()
            if call == "create":
                response = await client.chat.completions.create(**payload)
            else:  # the SDK call splitreason's openai judge makes
                response = await client.post("/chat/completions", cast_to=ChatCompletion, body=payload)
            assert response.choices[0].message.content
            latencies.append(time.perf_counter() - sent)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await client.close()
    latencies.sort()
    return {"requests": len(latencies), "elapsed_s": round(elapsed, 3), "rate": round(len(payloads) / elapsed, 2),
            "cpu_s": round(cpu, 3), "cpu_ms_per_request": round(1000 * cpu / len(payloads), 3),
            "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "latency_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1)}


def run_baseline(server: Server, payloads: list[dict], concurrency: int, call: str = "create") -> dict:
    before = server.stats()
    result = asyncio.run(_baseline(server.base_url, payloads, concurrency, call))
    result["server"] = _delta(before, server.stats())
    return result


def annotate_command(input_path: Path, out: Path, base_url: str, concurrency: int) -> list[str]:
    return ["-m", "splitreason.cli", "annotate", str(input_path), "-o", str(out), "--judge", f"openai:{MODEL}",
            "--base-url", base_url, "--concurrency", str(concurrency), "--no-progress"]


def run_splitreason(server: Server, input_path: Path, work: Path, concurrency: int, count: int,
                    tag: str, extra: tuple[str, ...] = (), startup_cpu: float = 0.0) -> dict:
    out = work / f"out-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    before = server.stats()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *annotate_command(input_path, out, server.base_url, concurrency), *extra],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - started
    after_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"splitreason annotate failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    invocation = json.loads((out / "run.json").read_text(encoding="utf-8"))["invocations"][-1]
    elapsed = invocation["elapsed_seconds"]
    cpu = (after_usage.ru_utime - usage.ru_utime) + (after_usage.ru_stime - usage.ru_stime)
    result = {
        "annotated": invocation["annotated"], "status": invocation["status"], "requests": invocation["requests"],
        "cache_hits": invocation["cache_hits"], "elapsed_s": elapsed,
        "rate": round(invocation["annotated"] / elapsed, 2) if elapsed else 0.0, "wall_s": round(wall, 3),
        "rate_end_to_end": round(count / wall, 2), "cpu_s": round(cpu, 3),
        # CPU of the whole process less that of a run with no traces (interpreter, imports, preflight).
        "cpu_ms_per_trace": round(1000 * (cpu - startup_cpu) / count, 3) if count else None,
        "server": _delta(before, server.stats()),
    }
    shutil.rmtree(out, ignore_errors=True)
    return result


def profile_splitreason(server: Server, input_path: Path, work: Path, concurrency: int, top: int) -> dict:
    """One extra annotate run under cProfile (slower; not counted): where our process spends CPU."""
    import pstats

    out, prof = work / "out-profile", work / "annotate.prof"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof),
                    *annotate_command(input_path, out, server.base_url, concurrency)],
                   check=True, capture_output=True, text=True)
    stats = pstats.Stats(str(prof))
    total = stats.total_tt

    def rows(key: str) -> list[dict]:
        entries = sorted(stats.stats.items(), key=lambda kv: kv[1][3 if key == "cumulative" else 2], reverse=True)
        picked = []
        for (file, line, name), (_, calls, tottime, cumtime, _) in entries[:top]:
            where = file.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
            picked.append({"function": f"{where}:{line}({name})", "calls": calls,
                           "tottime_s": round(tottime, 3), "cumtime_s": round(cumtime, 3)})
        return picked

    return {"total_s": round(total, 3), "by_tottime": rows("tottime"), "by_cumulative": rows("cumulative"),
            "prof_file": str(prof)}


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="splitreason annotate vs a bare openai loop against a slow judge")
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of baseline, splitreason, post-baseline")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="judge latency in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="400 traces, 2 rounds")
    parser.add_argument("--profile", action="store_true", help="also one cProfile'd annotate run (top items)")
    parser.add_argument("--top", type=int, default=25, help="profile rows to keep")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=None, help="keep inputs/outputs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.quick:
        args.traces, args.rounds = min(args.traces, 400), min(args.rounds, 2)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="splitreason-saturation-"))
    work.mkdir(parents=True, exist_ok=True)
    input_path = work / "traces.jsonl"
    write_openr1(input_path, args.traces, args.seed)
    server = Server(args.latency)
    rounds: list[dict] = []
    profile = startup = None
    try:
        payloads = build_payloads(input_path, server.base_url)
        assert len(payloads) == args.traces, (len(payloads), args.traces)
        sizes = [len(p["messages"][1]["content"]) for p in payloads]
        # Warm-up (not counted): page cache, the server's first connections, both code paths.
        warm = payloads[: min(len(payloads), 2 * args.concurrency)]
        run_baseline(server, warm, args.concurrency)
        run_splitreason(server, input_path, work, args.concurrency, len(warm), tag="warmup",
                        extra=("--limit", str(len(warm))))
        # The fixed cost of one annotate process (interpreter start, imports, preflight, manifest).
        startup = run_splitreason(server, input_path, work, args.concurrency, 0, tag="startup", extra=("--limit", "0"))
        for index in range(args.rounds):
            baseline = run_baseline(server, payloads, args.concurrency)
            ours = run_splitreason(server, input_path, work, args.concurrency, args.traces, tag=str(index),
                                   startup_cpu=startup["cpu_s"])
            post = run_baseline(server, payloads, args.concurrency, call="post")
            ratio = ours["rate"] / baseline["rate"]
            rounds.append({"round": index, "baseline": baseline, "splitreason": ours, "baseline_post": post,
                           "ratio": round(ratio, 4),
                           "ratio_end_to_end": round(ours["rate_end_to_end"] / baseline["rate"], 4),
                           "ratio_vs_post": round(ours["rate"] / post["rate"], 4)})
            print(f"round {index}: baseline {baseline['rate']:.1f}/s, splitreason {ours['rate']:.1f}/s "
                  f"(end-to-end {ours['rate_end_to_end']:.1f}/s), ratio {ratio:.3f}; "
                  f"bare loop with client.post {post['rate']:.1f}/s", file=sys.stderr)
        if args.profile:
            profile = profile_splitreason(server, input_path, work, args.concurrency, args.top)
    finally:
        server.close()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    clients = ("baseline", "splitreason", "baseline_post")
    digests = {r[c]["server"]["digest"] for r in rounds for c in clients}
    counts = {r[c]["server"]["requests"] for r in rounds for c in clients}
    ideal = args.concurrency / args.latency
    median_ratio = statistics.median(r["ratio"] for r in rounds)
    summary = {
        "ideal_rate": ideal,
        "baseline_rate_median": statistics.median(r["baseline"]["rate"] for r in rounds),
        "splitreason_rate_median": statistics.median(r["splitreason"]["rate"] for r in rounds),
        "splitreason_end_to_end_rate_median": statistics.median(r["splitreason"]["rate_end_to_end"] for r in rounds),
        "ratio_median": round(median_ratio, 4),
        "ratio_end_to_end_median": round(statistics.median(r["ratio_end_to_end"] for r in rounds), 4),
        "baseline_post_rate_median": statistics.median(r["baseline_post"]["rate"] for r in rounds),
        "ratio_vs_post_median": round(statistics.median(r["ratio_vs_post"] for r in rounds), 4),
        "threshold": THRESHOLD,
        "passed": median_ratio >= THRESHOLD,
        "payloads_identical": len(digests) == 1 and counts == {args.traces},
        "splitreason_startup": {"wall_s": startup["wall_s"], "cpu_s": startup["cpu_s"]},
        "baseline_cpu_ms_per_request_median": statistics.median(r["baseline"]["cpu_ms_per_request"] for r in rounds),
        "baseline_post_cpu_ms_per_request_median": statistics.median(
            r["baseline_post"]["cpu_ms_per_request"] for r in rounds),
        "splitreason_cpu_ms_per_trace_median": statistics.median(r["splitreason"]["cpu_ms_per_trace"] for r in rounds),
    }
    result = {
        "benchmark": "judge_saturation",
        "command": " ".join(["python", "benchmarks/bench_judge_saturation.py", *(argv if argv is not None else sys.argv[1:])]),
        "config": {"traces": args.traces, "rounds": args.rounds, "concurrency": args.concurrency,
                   "latency_s": args.latency, "seed": args.seed, "model": MODEL,
                   "prompt_chars_mean": round(statistics.mean(sizes)), "quick": args.quick},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "openai": openai.__version__},
        "summary": summary, "rounds": rounds,
    }
    if profile is not None:
        if args.workdir is None:
            profile.pop("prof_file")  # removed with the temporary directory
        result["profile"] = profile
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print_table(result)
    return 0 if summary["passed"] and summary["payloads_identical"] else 1


def _print_table(result: dict) -> None:
    cfg, summary = result["config"], result["summary"]
    print(f"\njudge saturation: {cfg['traces']} traces (~{cfg['prompt_chars_mean']:,} prompt chars), "
          f"latency {cfg['latency_s'] * 1000:.0f} ms, concurrency {cfg['concurrency']}, "
          f"ideal {summary['ideal_rate']:.0f} req/s")
    header = f"{'round':>5} | {'baseline/s':>10} | {'ours/s':>8} | {'ours e2e/s':>10} | {'ratio':>6} | " \
             f"{'e2e ratio':>9} | {'post/s':>7} | {'vs post':>7} | {'CPU ms/req: base':>16} | {'post':>5} | {'ours*':>5}"
    print(header)
    print("-" * len(header))
    for r in result["rounds"]:
        b, s, p = r["baseline"], r["splitreason"], r["baseline_post"]
        print(f"{r['round']:>5} | {b['rate']:>10.1f} | {s['rate']:>8.1f} | {s['rate_end_to_end']:>10.1f} | "
              f"{r['ratio']:>6.3f} | {r['ratio_end_to_end']:>9.3f} | {p['rate']:>7.1f} | {r['ratio_vs_post']:>7.3f} | "
              f"{b['cpu_ms_per_request']:>16.2f} | {p['cpu_ms_per_request']:>5.2f} | {s['cpu_ms_per_trace']:>5.2f}")
    print(f"median ratio {summary['ratio_median']:.3f} (end-to-end {summary['ratio_end_to_end_median']:.3f}); "
          f"baseline {summary['baseline_rate_median']:.1f}/s = {summary['baseline_rate_median'] / summary['ideal_rate']:.0%} "
          f"of ideal; splitreason {summary['splitreason_rate_median']:.1f}/s = "
          f"{summary['splitreason_rate_median'] / summary['ideal_rate']:.0%} of ideal; "
          f"vs a bare client.post loop {summary['ratio_vs_post_median']:.3f}; "
          f"payloads identical: {summary['payloads_identical']}; "
          f"{'PASS' if summary['passed'] else 'FAIL'} (>= {summary['threshold']})")
    startup = summary["splitreason_startup"]
    print(f"* less the {startup['cpu_s']:.2f} s CPU of an annotate run with --limit 0 "
          f"({startup['wall_s']:.2f} s wall: interpreter, imports, preflight, manifest)")
    profile = result.get("profile")
    if profile:
        print(f"\ncProfile of one annotate run (total {profile['total_s']} s), top by own time:")
        for row in profile["by_tottime"][:15]:
            print(f"  {row['tottime_s']:>7.3f} s  {row['calls']:>8}  {row['function']}")


if __name__ == "__main__":
    sys.exit(main())

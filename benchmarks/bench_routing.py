"""Does routing put a person on the judge's failures? Targets (issue 3): at least 95 % of corrupted
annotations go to review or rejection, at most 10 % of clean ones do.

Run from the repository root:

    python benchmarks/bench_routing.py                    # 600 clean + 5 x 300 corrupted cases, ~45 s
    python benchmarks/bench_routing.py --quick            # 120 clean + 5 x 40 corrupted, a few seconds
    python benchmarks/bench_routing.py --semantic-rescue  # and again with SemanticRescuer ([embed]; minutes)
    python benchmarks/bench_routing.py --severity 0.05 0.3 --clean-spread 2   # probe the edges

Options: --seed, --clean, --per-corruption, --severity LO HI (share of bad quotes in paraphrased /
hallucinated cases), --clean-spread X (clean coverage within target/X .. target*X),
--semantic-threshold, --out.

The cases come from `benchmarks/routing_testset.py` (its docstring describes every kind). Each
case's raw judge answers go through splitreason's own `parse_answer`, then `build_annotation`
with the default `RoutingPolicy` (the production path of `splitreason annotate` after the HTTP
call): one `SampleOutcome` per sample. Reported per kind and variant: shares accepted / review /
rejected and the reasons; "flagged" = review or rejected. Targets are checked overall, per
corruption kind, and for clean cases per configuration (judged once / k times: a run is one or
the other, so the bound must hold for each). Also: the confidence distribution of clean vs
corrupted cases, what sends clean cases to review (reason, variant, coverage / target), how
often the aligner still placed an injected quote, and the catch rate by severity. Exit status 1
when a target is missed.

Results go to ``benchmarks/results/routing.json``; with --semantic-rescue the same cases are
routed a second time with the rescuer, and that run's figures go under "with_semantic_rescue".
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from routing_testset import CORRUPTIONS, Case, RoutingSetConfig, build_cases  # noqa: E402

from splitreason.annotator.align import Aligner  # noqa: E402
from splitreason.annotator.annotate import SampleOutcome, build_annotation  # noqa: E402
from splitreason.annotator.routing import RoutingPolicy  # noqa: E402
from splitreason.judges.base import Verdict  # noqa: E402
from splitreason.judges.parsing import parse_answer  # noqa: E402
from splitreason.schemas import JudgeInfo  # noqa: E402

CORRUPTED_FLAGGED_MIN = 0.95
CLEAN_FLAGGED_MAX = 0.10
QUICK = RoutingSetConfig(clean=120, per_corruption=40, generated=8)
JUDGE = JudgeInfo(name="bench-llm", backend="openai", model="simulated-llm-judge", prompt_hash="0" * 16,
                  params={"temperature": 0.7})


def annotate(case: Case, policy: RoutingPolicy, rescuer=None):
    outcomes = [SampleOutcome(judge=JUDGE, sample=i, verdict=Verdict(excerpts=parse_answer(answer)))
                for i, answer in enumerate(case.answers)]
    return build_annotation(case.trace, outcomes, None, policy, rescuer=rescuer)


def measure(cases: list[Case], policy: RoutingPolicy, rescuer=None) -> list[dict]:
    """One row per case: its label and what the router did with it."""
    rows = []
    aligners: dict[str, Aligner] = {}
    for case in cases:
        annotation = annotate(case, policy, rescuer)
        aligner = aligners.setdefault(case.trace.trace_id, Aligner(case.trace.text))
        placed = sum(aligner.align(quote) is not None for quote in case.corrupted_quotes)
        rows.append({
            "case": case.case_id, "kind": case.kind, "variant": case.variant, "severity": case.severity,
            "status": annotation.status, "reason": annotation.status_reason, "confidence": annotation.confidence,
            "coverage": annotation.coverage, "agreement": annotation.agreement, "excerpts": annotation.excerpts,
            "hallucinated": len(annotation.hallucinated), "injected": len(case.corrupted_quotes), "placed": placed,
            "semantic_spans": sum(span.match == "semantic" for span in annotation.spans),
        })
    return rows


def _shares(rows: list[dict]) -> dict:
    n = len(rows)
    statuses = Counter(row["status"] for row in rows)
    return {"n": n, **{s: round(statuses[s] / n, 4) if n else 0.0 for s in ("accepted", "review", "rejected")},
            "flagged": round((statuses["review"] + statuses["rejected"]) / n, 4) if n else 0.0,
            "reasons": dict(Counter(f"{row['status']}:{row['reason']}" for row in rows).most_common())}


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    cuts = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else [values[0]] * 19
    return {"min": min(values), "p05": round(cuts[0], 4), "p25": round(cuts[4], 4), "median": round(cuts[9], 4),
            "p75": round(cuts[14], 4), "p95": round(cuts[18], 4), "max": max(values)}


def _histogram(values: list[float]) -> list[int]:
    counts = [0] * 10
    for value in values:
        counts[min(9, int(value * 10))] += 1
    return counts


def _band(value: float, edges: list[float]) -> str:
    for lo, hi in zip(edges, edges[1:]):
        if lo <= value < hi:
            return f"{lo:g}-{hi:g}"
    return f">={edges[-1]:g}"


def summarize(rows: list[dict], policy: RoutingPolicy) -> dict:
    clean = [r for r in rows if r["kind"] == "clean"]
    corrupted = [r for r in rows if r["kind"] != "clean"]
    by_kind = {kind: _shares([r for r in rows if r["kind"] == kind]) for kind in ("clean", *CORRUPTIONS)}
    by_variant = {f"{k}/{v}": _shares([r for r in rows if (r["kind"], r["variant"]) == (k, v)])
                  for k, v in sorted({(r["kind"], r["variant"]) for r in rows})}
    ratio_edges = [0, 0.8, 1.2, 1.35, 1.5]
    clean_by_ratio = defaultdict(list)
    for row in clean:
        clean_by_ratio[_band(row["coverage"] / policy.target_coverage, ratio_edges)].append(row)
    severity = defaultdict(list)
    for row in corrupted:
        if row["kind"] in ("paraphrased", "hallucinated"):
            severity[f"{row['kind']} {_band(row['severity'], [0, 0.2, 0.4, 0.6, 0.8, 1.0])}"].append(row)
    injected = {kind: {"quotes": sum(r["injected"] for r in rows if r["kind"] == kind),
                       "placed_by_aligner": sum(r["placed"] for r in rows if r["kind"] == kind)}
                for kind in ("paraphrased", "hallucinated")}
    # A run judges every trace once or every trace k times: the clean bound must hold for each.
    clean_configs = {f"clean_flagged_{r['variant']}": _shares([x for x in clean if x["variant"] == r["variant"]])["flagged"]
                     for r in clean}
    targets = {"corrupted_flagged_overall": (_shares(corrupted)["flagged"], ">=", CORRUPTED_FLAGGED_MIN),
               "clean_flagged_overall": (by_kind["clean"]["flagged"], "<=", CLEAN_FLAGGED_MAX),
               **{name: (value, "<=", CLEAN_FLAGGED_MAX) for name, value in sorted(clean_configs.items())},
               **{f"{kind}_flagged": (by_kind[kind]["flagged"], ">=", CORRUPTED_FLAGGED_MIN) for kind in CORRUPTIONS}}
    present = {"corrupted_flagged_overall": bool(corrupted), "clean_flagged_overall": bool(clean),
               **{f"{kind}_flagged": by_kind[kind]["n"] > 0 for kind in CORRUPTIONS}}
    checks = {name: {"value": value, "bound": f"{op} {bound}", "met": value >= bound if op == ">=" else value <= bound}
              for name, (value, op, bound) in targets.items() if present.get(name, True)}
    return {
        "targets": checks,
        "all_met": all(check["met"] for check in checks.values()),
        "clean": _shares(clean), "corrupted": _shares(corrupted), "by_kind": by_kind, "by_variant": by_variant,
        "confidence": {"clean": _quantiles([r["confidence"] for r in clean]),
                       "corrupted": _quantiles([r["confidence"] for r in corrupted]),
                       "histogram_0.1_bins": {"clean": _histogram([r["confidence"] for r in clean]),
                                              "corrupted": _histogram([r["confidence"] for r in corrupted])}},
        "clean_flagged_by_coverage_over_target": {band: {"n": len(group), "flagged": _shares(group)["flagged"]}
                                                  for band, group in sorted(clean_by_ratio.items())},
        "clean_agreement_k_samples": _quantiles([r["agreement"] for r in clean if r["agreement"] is not None]),
        "caught_by_severity": {band: {"n": len(group), "flagged": _shares(group)["flagged"]}
                               for band, group in sorted(severity.items())},
        "injected_quotes": injected,
        "cases_with_semantic_spans": {kind: sum(r["semantic_spans"] > 0 for r in rows if r["kind"] == kind)
                                      for kind in ("clean", *CORRUPTIONS)},
        "missed_examples": [r for r in corrupted if r["status"] == "accepted"][:12],
        "clean_flagged_examples": [r for r in clean if r["status"] != "accepted"][:12],
    }


def print_table(summary: dict) -> None:
    print(f"{'kind / variant':26} {'n':>5} {'accept':>7} {'review':>7} {'reject':>7} {'flagged':>8}  top reasons")
    for name, shares in [*summary["by_kind"].items(), ("", None), *summary["by_variant"].items()]:
        if shares is None:
            print("-" * 90)
            continue
        reasons = ", ".join(f"{k} {v}" for k, v in list(shares["reasons"].items())[:3])
        print(f"{name:26} {shares['n']:5} {shares['accepted']:7.1%} {shares['review']:7.1%} {shares['rejected']:7.1%} "
              f"{shares['flagged']:8.1%}  {reasons}")
    conf = summary["confidence"]
    for label in ("clean", "corrupted"):
        q = conf[label]
        if not q:
            continue
        print(f"confidence {label:9}: p05 {q['p05']:.3f}  p25 {q['p25']:.3f}  median {q['median']:.3f}  "
              f"p75 {q['p75']:.3f}  p95 {q['p95']:.3f}   histogram(0.1) {conf['histogram_0.1_bins'][label]}")
    print("clean flagged by coverage/target:",
          ", ".join(f"{b}: {v['flagged']:.1%} of {v['n']}" for b, v in summary["clean_flagged_by_coverage_over_target"].items()))
    print("caught by severity:", ", ".join(f"{b}: {v['flagged']:.1%} of {v['n']}" for b, v in summary["caught_by_severity"].items()))
    for name, check in summary["targets"].items():
        print(f"  {'MET ' if check['met'] else 'MISS'} {name:28} {check['value']:.1%} (target {check['bound']})")


def load_rescuer(threshold: float | None):
    """The SemanticRescuer, or (None, why not)."""
    try:
        from splitreason.annotator.semantic import SemanticRescuer
    except ImportError as error:
        return None, f"splitreason.annotator.semantic not importable ({error})"
    rescuer = SemanticRescuer() if threshold is None else SemanticRescuer(threshold=threshold)
    try:
        rescuer.load()
    except Exception as error:  # noqa: BLE001 - any reason means the same here: measure without it
        return None, f"semantic rescue unavailable: {error}"
    return rescuer, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small set (120 clean, 40 per corruption)")
    parser.add_argument("--seed", type=int, default=RoutingSetConfig.seed)
    parser.add_argument("--clean", type=int, help="clean cases (default 600)")
    parser.add_argument("--per-corruption", type=int, help="cases per corruption kind (default 300)")
    parser.add_argument("--severity", type=float, nargs=2, metavar=("LO", "HI"),
                        help="share of bad quotes in paraphrased/hallucinated cases (default 0.3 1.0)")
    parser.add_argument("--clean-spread", type=float, help="clean coverage within target / X .. target * X (default 1.5)")
    parser.add_argument("--semantic-rescue", action="store_true",
                        help="measure a second time with SemanticRescuer for unaligned quotes")
    parser.add_argument("--semantic-threshold", type=float, help="rescue threshold (default: the rescuer's)")
    parser.add_argument("--out", type=Path, help="results JSON (default benchmarks/results/routing.json)")
    args = parser.parse_args()

    config = QUICK if args.quick else RoutingSetConfig()
    overrides = {"seed": args.seed, "clean": args.clean, "per_corruption": args.per_corruption,
                 "severity": tuple(args.severity) if args.severity else None, "clean_spread": args.clean_spread}
    config = RoutingSetConfig(**{**asdict(config), **{k: v for k, v in overrides.items() if v is not None}})
    policy = RoutingPolicy(target_coverage=config.target_coverage)
    started = time.perf_counter()
    cases = build_cases(config)
    built = time.perf_counter()
    summary = summarize(measure(cases, policy), policy)
    result = {
        "benchmark": "routing",
        "command": "python " + " ".join(["benchmarks/bench_routing.py", *sys.argv[1:]]),
        "testset": asdict(config), "policy": asdict(policy),
        "python": platform.python_version(), "machine": platform.machine(),
        "seconds": {"build": round(built - started, 2), "annotate": round(time.perf_counter() - built, 2)},
        **summary,
    }
    print_table(summary)
    all_met = summary["all_met"]
    if args.semantic_rescue:
        rescuer, note = load_rescuer(args.semantic_threshold)
        if rescuer is None:
            print(f"note: {note}; no semantic rescue run")
            result["with_semantic_rescue"] = {"skipped": note}
        else:
            started = time.perf_counter()
            rescued = summarize(measure(cases, policy, rescuer), policy)
            result["with_semantic_rescue"] = {"rescuer": rescuer.info, "seconds": round(time.perf_counter() - started, 2),
                                              **rescued}
            print(f"\nwith semantic rescue ({rescuer.info}):")
            print_table(rescued)
            all_met = all_met and rescued["all_met"]
    out = args.out or ROOT / "benchmarks" / "results" / "routing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"{len(cases)} cases, built in {result['seconds']['build']} s, routed in {result['seconds']['annotate']} s; "
          f"{'ALL TARGETS MET' if all_met else 'TARGET MISSED'}; results -> {shown}")
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())

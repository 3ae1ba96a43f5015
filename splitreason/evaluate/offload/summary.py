"""Per mode: accuracy with its 95 % interval and majority vote, tokens, offload share, handoffs,
forced closes, forward passes, measured wall time, and the projected latency of the answers as
written (evaluate simulate's model, rates from --profile).

Offload share is given two ways: `offload_share` pools tokens (all large tokens over all tokens),
`offload_share_mean` averages the samples' shares. Projected times are means per sample; the
speed-up is the mean large-alone time over the mean pair time, both on the same answers, and,
when mode large ran, against the large model's own answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from splitreason.evaluate.accuracy import summarize
from splitreason.evaluate.grading import Verdict
from splitreason.io.eval_sets import EvalSet
from splitreason.schemas.evaluate_offload import EvaluateOffloadSettings

__all__ = ["summarize_run"]


def _verdict(row: dict[str, Any]) -> Verdict:
    grading = row.get("grading") or {}
    return Verdict(grading.get("status", "correct" if row.get("correct") else "wrong"), row.get("answer"),
                   row.get("gold") or "", grading.get("canonical"), grading.get("detail"))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _projection(rows: Sequence[dict[str, Any]], rates, chunk_tokens: int) -> dict[str, Any]:
    from splitreason.evaluate.latency import project_latency, segments_from_records

    figures: dict[str, Any] = {}
    for schedule in ("pipelined", "sequential"):
        projections = [project_latency(segments_from_records(row["segments"]), rates,
                                       small_prompt_tokens=len(row["small_prompt_ids"]) or len(row["large_prompt_ids"]),
                                       large_prompt_tokens=len(row["large_prompt_ids"]) or len(row["small_prompt_ids"]),
                                       chunk_tokens=chunk_tokens, schedule=schedule) for row in rows]
        pair = _mean([projection.pair_s for projection in projections])
        large = _mean([projection.large_alone_s for projection in projections])
        figures[schedule] = {"pair_s": pair, "large_alone_s": large, "speedup": large / pair if pair else None}
    return figures


def summarize_run(rows: Sequence[dict[str, Any]], settings: EvaluateOffloadSettings, evaluation: EvalSet) -> dict[str, Any]:
    from splitreason.evaluate.rates import RatesError, load_profile

    try:
        rates = load_profile(settings.profile)
    except RatesError as error:
        rates, rates_note = None, str(error)
    else:
        rates_note = rates.source
    modes: dict[str, Any] = {}
    for mode in settings.modes:
        mine = [row for row in rows if row["mode"] == mode]
        if not mine:
            continue
        by_problem: dict[str, list[Verdict]] = {}
        for row in mine:
            by_problem.setdefault(row["problem_id"], []).append(_verdict(row))
        accuracy = summarize(by_problem).to_dict()
        small = sum(row["tokens"]["small"] for row in mine)
        large = sum(row["tokens"]["large"] for row in mine)
        figures: dict[str, Any] = {
            **accuracy,
            "tokens_mean": (small + large) / len(mine), "small_tokens_mean": small / len(mine),
            "large_tokens_mean": large / len(mine),
            "offload_share": large / (small + large) if small + large else 0.0,
            "offload_share_mean": _mean([row["offload_share"] for row in mine]),
            "handoffs_per_sample": _mean([row["handoffs"] for row in mine]),
            "forced_closes_per_sample": _mean([row["forced_closes"] for row in mine]),
            "ended_in_segment": sum(bool(row["ended_in_segment"]) for row in mine),
            "forward_passes_mean": {name: _mean([row["forward_passes"].get(name, 0) for row in mine])
                                    for name in ("small", "large")},
            "wall_s_mean": _mean([row["wall_s"]["generate"] for row in mine]),
        }
        if rates is not None:
            figures["projected"] = _projection(mine, rates, settings.chunk_tokens)
        modes[mode] = figures
    if rates is not None and "large" in modes:
        large_own = modes["large"]["projected"]["pipelined"]["pair_s"]
        for figures in modes.values():
            pair = figures["projected"]["pipelined"]["pair_s"]
            figures["projected"]["speedup_vs_large_runs"] = large_own / pair if pair else None
    return {"eval_set": evaluation.name, "source": evaluation.source, "problems": len(evaluation.problems),
            "samples_per_problem": settings.samples, "chunk_tokens": settings.chunk_tokens,
            "settings": settings.fingerprint(), "rates": rates_note, "modes": modes}

"""`evaluate simulate`'s work: project the latency of a synthetic answer, or of the real answers of
an evaluation run, under both schedules, with rates from a profile, the command line or a roofline.

An evaluation run (`evaluate offload -o OUT`) holds OUT/samples.jsonl, one row per (mode, problem,
sample); the rows read here carry

    mode                 learned | small | large | random
    small_prompt_ids     the prompt the small model saw, as token ids
    large_prompt_ids     the prompt the large model saw, as token ids
    segments             [{model: small|large, token_ids: [...], text, forced}, ...]

The run's chunk size is read from OUT/summary.json or OUT/manifest.json (`chunk_tokens`, at the
top or under `settings`) when there is one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitreason.errors import UsageError
from splitreason.evaluate.latency import (DEFAULT_CHUNK_TOKENS, SCHEDULES, Projection, Rates, Segment,
                                          project_latency, segments_from_records, synthetic_segments)
from splitreason.evaluate.rates import RatesError, load_profile, roofline_rates
from splitreason.schemas.evaluate_simulate import EvaluateSimulateSettings

__all__ = ["PAPER_CHUNK_TOKENS", "SampleShape", "SimulationError", "read_evaluation", "resolve_rates", "simulate"]

PAPER_CHUNK_TOKENS = 256  # the paper's simulation's chunk
SAMPLES_FILE = "samples.jsonl"
_RUN_FILES = ("summary.json", "manifest.json")


class SimulationError(UsageError):
    """An evaluation directory that cannot be projected."""


@dataclass(frozen=True)
class SampleShape:
    """What the latency model needs of one answer."""

    segments: list[Segment]
    small_prompt_tokens: int
    large_prompt_tokens: int


def resolve_rates(settings: EvaluateSimulateSettings) -> Rates:
    """Roofline (--gpu) or profile rates, each overridden by a rate given on its own."""
    base: Rates | None = None
    if settings.gpu is not None and settings.small_params and settings.large_params:
        base = roofline_rates(settings.gpu, small_params_b=settings.small_params,
                              large_params_b=settings.large_params, bytes_per_param=settings.bytes_per_param)
    elif settings.profile is not None:
        base = load_profile(settings.profile)
    names = ("small_prefill", "small_decode", "large_prefill", "large_decode")
    values = {name: getattr(settings, name) if getattr(settings, name) is not None
              else (getattr(base, name) if base else None) for name in names}
    missing = [f"--{name.replace('_', '-')}" for name, value in values.items() if value is None]
    if missing:
        raise RatesError(f"no rate for {', '.join(missing)}: give them, a --profile (such as a6000-paper), "
                         "or --gpu with --small-params and --large-params")
    overridden = [name for name in names if getattr(settings, name) is not None]
    source = base.source if base else "the command line"
    if base and overridden:
        source += f"; {', '.join(name.replace('_', ' ') for name in overridden)} from the command line"
    return Rates(**values, source=source)


def read_evaluation(out: Path, *, mode: str) -> tuple[list[SampleShape], list[SampleShape], int | None]:
    """(samples of `mode`, samples of mode `large`, the run's chunk size or None) of an evaluation OUT."""
    out = Path(out)
    if not out.is_dir():
        raise SimulationError(f"evaluation {out} not found: give the -o directory of `splitreason evaluate offload`")
    path = out / SAMPLES_FILE
    if not path.is_file():
        raise SimulationError(f"{out} holds no {SAMPLES_FILE}: not an `evaluate offload` output, or it has no "
                              "samples yet")
    from splitreason.io.jsonl import iter_jsonl

    chosen: list[SampleShape] = []
    large_runs: list[SampleShape] = []
    modes: set[str] = set()
    for line, row in enumerate(iter_jsonl(path), start=1):
        row_mode = str(row.get("mode", mode))
        modes.add(row_mode)
        if row_mode not in (mode, "large"):
            continue
        shape = _shape(row, path, line)
        if row_mode == mode:
            chosen.append(shape)
        if row_mode == "large":
            large_runs.append(shape)
    if not chosen:
        raise SimulationError(f"{path} has no samples of mode {mode!r} (it has: {', '.join(sorted(modes)) or 'none'}); "
                              "choose one with --mode")
    return chosen, large_runs, _run_chunk_tokens(out)


def _shape(row: dict[str, Any], path: Path, line: int) -> SampleShape:
    where = f"{path} row {line}"
    for key in ("small_prompt_ids", "large_prompt_ids", "segments"):
        if not isinstance(row.get(key), list):
            raise SimulationError(f"{where} has no {key} list")
    try:
        segments = segments_from_records(row["segments"])
    except (ValueError, AttributeError, TypeError) as error:
        raise SimulationError(f"{where}: a segment cannot be read ({error})") from None
    return SampleShape(segments, len(row["small_prompt_ids"]), len(row["large_prompt_ids"]))


def _run_chunk_tokens(out: Path) -> int | None:
    for name in _RUN_FILES:
        try:
            data = json.loads((out / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for holder in (data, data.get("settings") if isinstance(data, dict) else None):
            value = holder.get("chunk_tokens") if isinstance(holder, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def simulate(settings: EvaluateSimulateSettings) -> dict[str, Any]:
    """The projection as a JSON-ready report: the chosen schedule's figures at the top, both
    schedules' under their names (times are means over samples, the speed-up is their ratio)."""
    rates = resolve_rates(settings)
    large_runs: list[SampleShape] = []
    if settings.offload_share is not None:
        chunk = settings.chunk_tokens or PAPER_CHUNK_TOKENS
        segments = synthetic_segments(settings.decode_tokens, settings.offload_share,
                                      segment_tokens=settings.segment_tokens or chunk,
                                      round_to_chunks=chunk if settings.paper_rounding else None)
        samples = [SampleShape(segments, settings.prompt_tokens, settings.prompt_tokens)]
        source: dict[str, Any] = {"input": "synthetic", "offload_share_requested": settings.offload_share,
                                  "prompt_tokens": settings.prompt_tokens, "decode_tokens": settings.decode_tokens,
                                  "paper_rounding": settings.paper_rounding}
    else:
        assert settings.evaluation is not None  # the settings check that one input is given
        samples, large_runs, run_chunk = read_evaluation(settings.evaluation, mode=settings.mode)
        chunk = settings.chunk_tokens or run_chunk or DEFAULT_CHUNK_TOKENS
        source = {"input": "evaluation", "evaluation": str(settings.evaluation), "mode": settings.mode}
    schedules = {schedule: _mean([project_latency(sample.segments, rates, small_prompt_tokens=sample.small_prompt_tokens,
                                                  large_prompt_tokens=sample.large_prompt_tokens, chunk_tokens=chunk,
                                                  schedule=schedule) for sample in samples])
                 for schedule in SCHEDULES}
    chosen = schedules[settings.schedule]
    report: dict[str, Any] = {
        **source, "samples": len(samples), "schedule": settings.schedule, "chunk_tokens": chunk,
        "speedup": chosen["speedup"], "pair_s": chosen["pair_s"], "large_alone_s": chosen["large_alone_s"],
        "small_alone_s": chosen["small_alone_s"], "offload_share": chosen["offload_share"],
        "small_tokens": chosen["small_tokens"], "large_tokens": chosen["large_tokens"], "handoffs": chosen["handoffs"],
        "rates": {"small_prefill": rates.small_prefill, "small_decode": rates.small_decode,
                  "large_prefill": rates.large_prefill, "large_decode": rates.large_decode, "source": rates.source},
        **{schedule: {key: figures[key] for key in ("speedup", "pair_s", "prefill_s", "decode_s", "handoff_s")}
           for schedule, figures in schedules.items()},
    }
    if large_runs and settings.mode != "large":
        # the large model's own answers (mode large) have their own lengths: the speed-up a user sees
        large_s = sum(sample.large_prompt_tokens / rates.large_prefill
                      + sum(segment.tokens for segment in sample.segments) / rates.large_decode
                      for sample in large_runs) / len(large_runs)
        report["large_runs_s"] = large_s
        report["speedup_vs_large_runs"] = large_s / chosen["pair_s"]
    return report


def _mean(projections: list[Projection]) -> dict[str, float]:
    count = len(projections)
    keys = ("pair_s", "prefill_s", "decode_s", "handoff_s", "large_alone_s", "small_alone_s",
            "small_tokens", "large_tokens", "handoffs")
    means = {key: sum(getattr(projection, key) for projection in projections) / count for key in keys}
    total = means["small_tokens"] + means["large_tokens"]
    means["offload_share"] = means["large_tokens"] / total if total else 0.0
    means["speedup"] = means["large_alone_s"] / means["pair_s"]
    return means

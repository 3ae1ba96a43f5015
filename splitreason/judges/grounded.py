"""What the model-grounded judges (`surprisal:`, `divergence:`) share: reading a trace with a
model, turning a per-token signal into whole-step spans, batching, caching and provenance.

A model reads the problem (as its chat prompt) and the trace, teacher-forced, with
`models/scoring.py` (long traces in windows within the model's context). Each trace token gets a
signal (its loss, or how far the small model's prediction is from the large one's); each step of
the thinking part (`judges/steps.py`, the same steps the heuristic judge chooses from) scores the
mean signal of its tokens, and `judges/selection.py` fills the target coverage with the best
steps, merging neighbours exactly as for every judge. Token offsets come from the tokenizer's
offset mapping (code points, as every span). The strength of the signal goes into the span's
`signal` field, not into the alignment score: the spans quote the trace itself, so they align
exactly and their confidence says nothing about the signal.

Concurrent `judge()` calls are gathered into batches of `--batch-size` traces, one forward pass
per batch and model; the answer of every trace is cached by the models' fingerprints, the
settings and the trace, so a resumed run does not read a trace again.
"""

from __future__ import annotations

from abc import abstractmethod

import asyncio
import hashlib
import json
import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from splitreason.judges.base import Excerpt, Judge, JudgeFailed, Verdict
from splitreason.judges.cache import Completion, RequestCache, cache_key
from splitreason.judges.heuristic_rules import DEFAULTS
from splitreason.judges.registry import JudgeConfigError
from splitreason.judges.selection import DEFAULT_OVERSHOOT, fill_target
from splitreason.judges.steps import segment, think_bounds
from splitreason.schemas import JudgeInfo, Trace, Usage

__all__ = ["DIVERGENCES", "EncodedTrace", "GroundedJudge", "GroundedSettings", "check_same_vocabulary", "encode_trace",
           "model_fingerprint", "step_spans"]

#: Bump when the way signals become spans changes: it is part of the provenance and the cache key.
METHOD_VERSION = "grounded-v1"
DIVERGENCES = ("greedy", "kl")
ENGINES = ("hf", "vllm")


@dataclass(frozen=True)
class GroundedSettings:
    """Settings of a model-grounded judge (from `annotate`'s options)."""

    batch_size: int = 8  # traces per forward pass (not provenance: it does not change the spans)
    divergence: str = "greedy"  # divergence: greedy disagreement weighted by confidence, or "kl"
    overlap: int = 256  # tokens of context before each window of a long trace
    max_len: int | None = None  # tokens per window (default: the model's context)
    device: str = "auto"
    dtype: str = "auto"
    max_span_chars: int = DEFAULTS.max_span_chars
    min_span_chars: int = DEFAULTS.min_span_chars
    engine: str = "hf"  # hf: transformers in this process; vllm: prompt logprobs (judges/grounded_vllm.py)
    engine_args: dict = field(default_factory=dict, hash=False)  # vllm: engine arguments (--vllm-arg)


@dataclass
class EncodedTrace:
    """A trace as the model reads it: `ids` (prompt, then trace), `prompt_len`, and for trace token
    k its character range `starts[k]:ends[k]` in the trace (code points)."""

    ids: list[int]
    prompt_len: int
    starts: list[int]
    ends: list[int]


@dataclass
class BatchStats:
    """How the judge batched its forward passes: recorded in run.json under `batching`."""

    passes: int = 0  # forward passes (batches of traces), per model
    traces: int = 0
    tokens: int = 0  # tokens read, per model
    seconds: float = 0.0
    batch_max: int = 0
    windows: int = 0  # pieces of traces read, several for a trace longer than the context

    def as_dict(self) -> dict[str, Any]:
        return {"forward_passes": self.passes, "traces": self.traces, "windows": self.windows,
                "tokens": self.tokens,
                "mean_batch_size": round(self.traces / self.passes, 2) if self.passes else 0.0,
                "max_batch_size": self.batch_max, "seconds": round(self.seconds, 3),
                "tokens_per_second": round(self.tokens / self.seconds, 1) if self.seconds else 0.0}


def model_fingerprint(name: str) -> str:
    """What identifies a model's weights without reading them: a local directory's config and its
    weight files' names, sizes and modification times; a hub id as it is."""
    path = Path(name).expanduser()
    if not path.is_dir():
        return name
    digest = hashlib.sha256()
    for item in sorted(path.iterdir()):
        if item.name == "config.json" or item.name.startswith("tokenizer"):
            digest.update(item.name.encode() + b"\0" + item.read_bytes())
        elif item.suffix in (".safetensors", ".bin", ".pt"):
            stat = item.stat()
            digest.update(f"{item.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def check_same_vocabulary(small_tokenizer, large_tokenizer, small: str, large: str, *, what: str) -> None:
    """Refuse, in one line, two models whose next-token predictions cannot be compared token by token."""
    if small_tokenizer.get_vocab() != large_tokenizer.get_vocab():
        raise JudgeConfigError(
            f"{what}: {small} and {large} have different tokenizers; comparing next-token predictions needs one "
            "vocabulary (use surprisal:SMALL / evaluate labels without --large, or a large model of the same family)")


def encode_trace(tokenizer, prompt_text: str, text: str) -> EncodedTrace:
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts = [start for start, _ in encoded["offset_mapping"]]
    ends = [end for _, end in encoded["offset_mapping"]]
    return EncodedTrace(list(prompt_ids) + list(encoded["input_ids"]), len(prompt_ids), starts, ends)


def step_spans(text: str, encoded: EncodedTrace, signal: Sequence[float], target_coverage: float,
               settings: GroundedSettings, *, tie_break: Sequence[float] | None = None) -> list[tuple[int, int, int, int]]:
    """Whole-step spans `(start, end, first_token, last_token_exclusive)` of `text` covering about
    `target_coverage` of its characters: the steps whose trace tokens have the highest mean
    `signal` (one value per trace token). `tie_break` (per token, small) orders steps whose signal
    is equal, so that a sparse signal (most tokens 0) still fills the target."""
    lo, hi = think_bounds(text)
    target = target_coverage * len(text)
    if target <= 0 or hi - lo < settings.min_span_chars:
        return []
    steps = segment(text, lo, hi, settings.max_span_chars, settings.min_span_chars)
    if not len(steps):
        return []
    # A token belongs to the step holding its last character (a byte-level token starts with the
    # space before its word, which lies outside the step).
    lasts = [end - 1 if end > start else -1 for start, end in zip(encoded.starts, encoded.ends)]
    order = sorted(range(len(lasts)), key=lasts.__getitem__)
    sorted_lasts = [lasts[k] for k in order]

    def tokens_in(start: int, end: int) -> list[int]:
        return order[bisect_left(sorted_lasts, start):bisect_left(sorted_lasts, end)]

    scores = []
    for start, end in zip(steps.starts, steps.ends):
        members = tokens_in(start, end)
        if not members:
            scores.append(0.0)
            continue
        value = sum(signal[k] for k in members) / len(members)
        if tie_break is not None:
            value += 1e-6 * (1.0 + sum(tie_break[k] for k in members) / len(members))
        scores.append(value)
    runs = fill_target(steps, scores, target, max_span_chars=settings.max_span_chars, overshoot=DEFAULT_OVERSHOOT)
    out = []
    for first, last in runs:
        start, end = steps.starts[first], steps.ends[last]
        members = sorted(tokens_in(start, end))
        out.append((start, end, members[0] if members else 0, members[-1] + 1 if members else 0))
    return out


@dataclass
class _Pending:
    encoded: EncodedTrace
    future: asyncio.Future = field(repr=False)


class GroundedJudge(Judge):
    """Base of the model-grounded judges: subclasses name their models and turn scores into a
    per-token signal and a reason."""

    backend = ""
    concurrent = True  # several traces in flight, so that they can share a forward pass
    samples_differ = False  # the same models read the same trace the same way

    def __init__(self, name: str, models: Sequence[str], settings: GroundedSettings):
        super().__init__(name)
        from splitreason.models.tokenizer import looks_local

        if settings.batch_size < 1:
            raise JudgeConfigError(f"judge {name}: --batch-size must be at least 1")
        if settings.divergence not in DIVERGENCES:
            raise JudgeConfigError(f"judge {name}: --divergence must be one of {', '.join(DIVERGENCES)}")
        if settings.engine not in ENGINES:
            raise JudgeConfigError(f"judge {name}: --scoring-engine must be one of {', '.join(ENGINES)}")
        if settings.engine == "vllm" and settings.divergence == "kl" and len(models) > 1:
            raise JudgeConfigError(f"judge {name}: --divergence kl needs both models' full next-token distributions, "
                                   "which vLLM's prompt logprobs do not give; use --scoring-engine hf")
        for model in models:
            if looks_local(model) and not Path(model).expanduser().exists():
                raise JudgeConfigError(f"judge {name}: model {model} does not exist")
        self.model_names = list(models)
        self.settings = settings
        self.fingerprints = [model_fingerprint(model) for model in models]
        self.cache: RequestCache | None = None  # set by the pipeline
        self.batch_stats = BatchStats()
        self.tokenizer = None
        self.models: list = []
        self.scorer = None  # --scoring-engine vllm
        self.template = None
        self._pending: list[_Pending] = []
        self._worker: asyncio.Task | None = None

    # --- what a subclass says -------------------------------------------------------------
    def setting_params(self) -> dict[str, Any]:
        """The settings that change this judge's spans (provenance and cache key)."""
        return {"max_span_chars": self.settings.max_span_chars, "min_span_chars": self.settings.min_span_chars,
                "overlap": self.settings.overlap, "max_len": self.settings.max_len, "dtype": self.settings.dtype,
                "engine": self.settings.engine,
                **({"engine_args": self.settings.engine_args} if self.settings.engine == "vllm" else {})}

    @abstractmethod
    def token_signal(self, scores, positions: list[int]) -> tuple[list[float], list[float] | None]:
        """Per trace token: the signal spans are chosen by, and an optional tie-break."""

    @abstractmethod
    def describe(self, scores, positions: list[int], tokens: range) -> tuple[str, float]:
        """The reason of a span made of these trace tokens, and its signal strength."""

    # --- provenance -----------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        return {"method": METHOD_VERSION, "models": self.model_names, "fingerprints": self.fingerprints,
                **self.setting_params()}

    @property
    def info(self) -> JudgeInfo:
        blob = json.dumps(self.params, sort_keys=True)
        return JudgeInfo(name=self.name, backend=self.backend, model=",".join(self.model_names),
                         prompt_hash=hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16], params=self.params)

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        from splitreason.models.chat import choose_chat_template
        from splitreason.models.loading import load_causal_lm
        from splitreason.models.tokenizer import load_tokenizer

        tokenizers = [load_tokenizer(model, need_offsets=True, what=f"judge {self.name}: tokenizer of")
                      for model in self.model_names]
        if len(tokenizers) > 1:
            check_same_vocabulary(*tokenizers, *self.model_names, what=f"judge {self.name}")
        self.tokenizer = tokenizers[0]
        self.template = choose_chat_template(self.tokenizer)
        if self.settings.engine == "vllm":
            from splitreason.judges.grounded_vllm import VLLMScorer

            self.scorer = VLLMScorer(self.name, self.model_names, self.settings.engine_args)
            return
        self.models = [load_causal_lm(model, device=self.settings.device, dtype=self.settings.dtype,
                                      what=f"judge {self.name}: model") for model in self.model_names]

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self.models = []
        self.scorer = None

    # --- judging --------------------------------------------------------------------------
    def _key(self, trace: Trace, target_coverage: float) -> str:
        payload = {"judge": self.params, "problem": trace.problem, "trace": trace.text,
                   "target_coverage": target_coverage}
        return cache_key(payload, 0, self.info.prompt_hash)

    async def judge(self, trace: Trace, target_coverage: float, sample: int = 0) -> Verdict:
        key = self._key(trace, target_coverage)
        if self.cache is not None:
            cached = self.cache.get(key)
            if isinstance(cached, Completion):
                return Verdict(excerpts=_excerpts(trace.text, json.loads(cached.text)), requests=0, cache_hits=1,
                               usage=Usage(prompt_tokens=cached.prompt_tokens))
        from splitreason.models.chat import render_prompt

        prompt = render_prompt(self.tokenizer, self.template, [{"role": "user", "content": trace.problem}])
        encoded = encode_trace(self.tokenizer, prompt, trace.text)
        scores = await self._score(encoded)
        positions = [encoded.prompt_len + k - 1 for k in range(len(encoded.starts))]
        signal, tie_break = self.token_signal(scores, positions)
        spans = []
        for start, end, first, last in step_spans(trace.text, encoded, signal, target_coverage, self.settings,
                                                   tie_break=tie_break):
            reason, strength = self.describe(scores, positions, range(first, last))
            spans.append({"start": start, "end": end, "reason": reason, "signal": round(strength, 4)})
        tokens = len(encoded.ids) * len(self.model_names)
        if self.cache is not None:
            self.cache.put(key, trace.trace_id, Completion(text=json.dumps(spans), prompt_tokens=tokens))
        return Verdict(excerpts=_excerpts(trace.text, spans), usage=Usage(prompt_tokens=tokens), requests=1)

    async def _score(self, encoded: EncodedTrace):
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(encoded, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            for _ in range(3):  # let the other workers' traces arrive, so that they share the pass
                await asyncio.sleep(0)
            batch = self._pending[:self.settings.batch_size]
            del self._pending[:self.settings.batch_size]
            try:
                results = await asyncio.to_thread(self._score_batch, [item.encoded for item in batch])
            except Exception as error:  # torch raises many kinds (out of memory, a bad dtype): one line
                failure = JudgeFailed("judge_failed", f"scoring failed: {' '.join(str(error).split())[:200]}")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(failure)
                continue
            for item, result in zip(batch, results):
                if not item.future.done():
                    item.future.set_result(result)

    def _score_batch(self, batch: list[EncodedTrace]):
        from splitreason.models.scoring import context_length, score_sequences, windows

        began = time.perf_counter()
        stats = self.batch_stats
        sequences = [item.ids for item in batch]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        if self.scorer is not None:
            max_len = self.settings.max_len or self.scorer.context_length()
        else:
            max_len = self.settings.max_len or min(context_length(model) for model in self.models)
        # A short context keeps half of each window for new positions (else a window scores a few tokens).
        overlap = min(self.settings.overlap, max_len // 2)
        if self.scorer is not None:
            results = self.scorer.score(sequences, max_len=max_len, overlap=overlap)
        else:
            results = score_sequences(self.models[0], sequences, batch_size=self.settings.batch_size,
                                      max_len=max_len, overlap=overlap, pad_id=pad,
                                      reference=self.models[1] if len(self.models) > 1 else None)
        stats.windows += sum(len(windows(len(ids), max_len, overlap)) for ids in sequences)
        stats.passes += 1
        stats.traces += len(batch)
        stats.batch_max = max(stats.batch_max, len(batch))
        stats.tokens += sum(len(ids) for ids in sequences)
        stats.seconds += time.perf_counter() - began
        return results


def _excerpts(text: str, spans: list[dict]) -> list[Excerpt]:
    return [Excerpt(text=text[span["start"]:span["end"]], reason=span["reason"], start=span["start"],
                    signal=span["signal"]) for span in spans]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0

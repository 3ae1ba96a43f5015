"""Shared behaviour of LLM judges: prompt, payload, cache, retries, answer checks.

A backend only says how to send one payload (`_send`) and how to check it can reach its
model (`_preflight`); everything else -- what is cached, what is retried, when an answer is
asked again -- is decided here, once.

What an unusable answer costs is bounded:
- an answer cut at max_tokens keeps the spans it finished; when it finished none, it is asked
  again with twice the max_tokens (up to `max_tokens_ceiling`), never with the same payload;
- an answer that cannot be parsed, at temperature 0, is asked again once with a note quoting the
  parse error (a different payload: the identical one would only buy the same answer again), then
  the trace fails with its reason; above temperature 0 a retry is a new sample, but an answer that
  repeats -- the same payload, the same text -- ends the attempts.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

from splitreason import prompts
from splitreason.errors import one_line
from splitreason.io.redaction import redact
from splitreason.judges.base import Judge, JudgeFailed, Verdict
from splitreason.judges.cache import CachedFailure, Completion, RequestCache, cache_key
from splitreason.judges.registry import JudgeConfigError
from splitreason.judges.parsing import (MAX_EXCERPT_CHARS, MAX_SPANS, UnparseableAnswer, answer_schema,
                                        complete_spans, parse_answer)
from splitreason.judges.transport import PermanentError, Transport, TransientError
from splitreason.schemas import JudgeInfo, Trace, Usage
from splitreason.schemas.annotate import AnnotateSettings as _S

TEMPLATE = "judge_spans.jinja"
_USER_MARKER = "=====USER====="


@dataclass(frozen=True)
class SamplingParams:
    """Every parameter that shapes the judge's answer; all of them go into the cache key."""

    temperature: float = _S.default("temperature")
    top_p: float = _S.default("top_p")
    max_tokens: int = _S.default("max_tokens")
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        params = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        if self.seed is not None:
            params["seed"] = self.seed
        return params


@dataclass
class LLMJudgeConfig:
    model: str
    sampling: SamplingParams = field(default_factory=SamplingParams)
    # "json_schema" (bounded schema, for vLLM/SGLang), "json_schema_strict" (OpenAI), "json_object" or "none".
    response_format: str = "json_schema"
    max_spans: int = MAX_SPANS
    # Bound on each quoted excerpt in the answer schema (grammar-constrained backends need one).
    max_excerpt_chars: int = MAX_EXCERPT_CHARS
    # How many times an answer that is empty, truncated or unparseable is asked for again (in all).
    max_answer_attempts: int = 4
    # The most max_tokens a truncated answer is asked again with (doubling from sampling.max_tokens).
    max_tokens_ceiling: int = 32768


def _with_repair_note(payload: dict[str, Any], error: str) -> dict[str, Any]:
    """The payload with a note after its last user message saying why the answer was unusable."""
    messages = [dict(message) for message in payload["messages"]]
    messages[-1]["content"] += (f"\n\nYour previous answer could not be used ({error}). Answer again with ONLY "
                                "the JSON object described above.")
    return {**payload, "messages": messages}


def build_messages(trace: Trace, target_coverage: float, max_spans: int) -> list[dict[str, str]]:
    rendered = prompts.render(
        TEMPLATE,
        problem=trace.problem,
        trace=trace.text,
        target_percent=round(target_coverage * 100),
        max_spans=max_spans,
    )
    system, user = rendered.split(_USER_MARKER, 1)
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]


class LLMJudge(Judge):
    backend: str = "llm"

    def __init__(self, name: str, config: LLMJudgeConfig, *, transport: Transport, cache: RequestCache | None):
        super().__init__(name)
        self.config = config
        self.transport = transport
        self.cache = cache

    @property
    def info(self) -> JudgeInfo:
        params = {**self.config.sampling.as_dict(), "response_format": self.config.response_format,
                  "max_spans": self.config.max_spans, "max_excerpt_chars": self.config.max_excerpt_chars}
        return JudgeInfo(
            name=self.name,
            backend=self.backend,
            model=self.config.model,
            prompt_hash=prompts.template_hash(TEMPLATE),
            params=params,
        )

    def schema(self, *, bounded: bool = True) -> dict[str, Any]:
        return answer_schema(bounded=bounded, max_spans=self.config.max_spans,
                             max_excerpt_chars=self.config.max_excerpt_chars)

    @abstractmethod
    def build_payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """The exact request body (without credentials): what is sent and what is hashed."""

    @abstractmethod
    async def _send(self, payload: dict[str, Any]) -> Completion:
        """Send one request; raise TransientError or PermanentError on failure."""

    async def judge(self, trace: Trace, target_coverage: float, sample: int = 0) -> Verdict:
        payload = self.build_payload(build_messages(trace, target_coverage, self.config.max_spans))
        if sample and payload.get("seed") is not None:
            payload = {**payload, "seed": payload["seed"] + sample}  # a fixed seed would repeat sample 0
        usage = Usage()
        verdict = Verdict(excerpts=[], usage=usage)
        try:
            return await self._judge(trace.trace_id, payload, verdict, sample)
        except JudgeFailed as failure:
            failure.usage, failure.requests, failure.cache_hits = verdict.usage, verdict.requests, verdict.cache_hits
            raise

    async def _judge(self, trace_id: str, payload: dict[str, Any], verdict: Verdict, sample: int) -> Verdict:
        usage = verdict.usage
        problem = ""
        answers_seen: set[tuple[str, str]] = set()  # (payload, answer text) pairs already paid for
        repaired = False  # at temperature 0, asked again once with the parse error quoted
        for attempt in range(self.config.max_answer_attempts):
            completion = await self._answer(trace_id, payload, attempt, verdict, sample)
            usage.add(Usage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens))
            if completion.finish_reason in ("length", "max_tokens"):
                finished = complete_spans(completion.text)
                if finished:  # the quotes it completed are as good as any: keep them, pay nothing more
                    verdict.excerpts, verdict.truncated = finished, True
                    return verdict
                budget = payload.get("max_tokens")
                problem = f"answer truncated at {completion.completion_tokens} tokens (max_tokens {budget})"
                payload = self._larger_budget(payload)
                if payload is None:
                    problem += f", the ceiling ({self.config.max_tokens_ceiling}); not asked again"
                    break
                continue
            try:
                verdict.excerpts = parse_answer(completion.text)
            except UnparseableAnswer as error:
                problem = f"unusable answer ({error})"
                if self.config.sampling.temperature <= 0:
                    # Deterministic: the same payload would buy the same answer again. Ask once more
                    # with the error quoted (a different request), then stop.
                    if repaired:
                        problem += "; asked again once with the error quoted, not asked again"
                        break
                    payload, repaired = _with_repair_note(payload, str(error)), True
                    continue
                seen = (cache_key(payload, 0), completion.text)  # above 0 a retry is a new sample
                if seen in answers_seen:
                    problem += "; the same answer twice to the same request, not asked again"
                    break
                answers_seen.add(seen)
                continue
            return verdict
        raise JudgeFailed(
            "judge_unusable_answer",
            f"no usable answer in {attempt + 1} attempt{'s' if attempt else ''}; last: {problem}",
        )

    def _larger_budget(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The payload with twice its max_tokens (at most the ceiling); None at the ceiling already."""
        budget = payload.get("max_tokens")
        if not isinstance(budget, int) or budget >= self.config.max_tokens_ceiling:
            return None
        return {**payload, "max_tokens": min(2 * budget, self.config.max_tokens_ceiling)}

    async def _answer(self, trace_id: str, payload: dict[str, Any], attempt: int, verdict: Verdict,
                      sample: int) -> Completion:
        key = cache_key(payload, attempt, prompts.template_hash(TEMPLATE), sample)
        cached = self.cache.get(key) if self.cache else None
        if isinstance(cached, Completion):
            verdict.cache_hits += 1
            return cached
        if isinstance(cached, CachedFailure):
            raise JudgeFailed("judge_request_refused", f"HTTP {cached.status}: {cached.message}")
        async def send() -> Completion:
            verdict.requests += 1
            return await self._send(payload)

        try:
            completion = await self.transport.call(send)
        except PermanentError as error:
            if error.status in (401, 403):
                # A refused key refuses every trace: stop the run instead of rejecting them one by one.
                raise JudgeConfigError(
                    f"judge {self.name}: the server refused the credentials (HTTP {error.status}); "
                    "check the API key variable."
                ) from error
            # Whatever a judge sends back is redacted before it is stored or shown: a server may echo the key.
            message = one_line(redact(str(error)))
            if self.cache and error.status is not None and 400 <= error.status < 500:
                self.cache.put(key, trace_id, CachedFailure(status=error.status, message=message))
            raise JudgeFailed("judge_request_refused", f"HTTP {error.status}: {message}") from error
        except TransientError as error:
            raise JudgeFailed(
                "judge_failed",
                f"{error.kind} after {self.transport.policy.max_attempts} attempts: {one_line(redact(str(error)))}",
            ) from error
        completion = dataclasses.replace(completion, text=redact(completion.text))
        if self.cache:
            self.cache.put(key, trace_id, completion)
        return completion

"""Build a ready-to-start judge from a resolved spec and the run's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from splitreason.io.redaction import redact, register_url_credentials
from splitreason.judges.base import Judge
from splitreason.judges.cache import RequestCache
from splitreason.judges.grounded import GroundedSettings
from splitreason.judges.llm import LLMJudgeConfig, SamplingParams
from splitreason.judges.parsing import MAX_EXCERPT_CHARS, MAX_SPANS
from splitreason.judges.registry import JudgeConfigError, JudgeSpec
from splitreason.judges.transport import RetryPolicy, Transport
from splitreason.schemas.annotate import AnnotateSettings as _S


@dataclass
class JudgeSettings:
    """What a judge takes from a command's settings (annotate: `executors.local.judge_settings`)."""

    sampling: SamplingParams = field(default_factory=SamplingParams)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = _S.default("timeout")
    requests_per_minute: float | None = None
    response_format: str | None = None  # overrides the alias's
    max_spans: int = MAX_SPANS
    max_excerpt_chars: int = MAX_EXCERPT_CHARS
    vllm_engine_args: dict[str, Any] = field(default_factory=dict)
    grounded: GroundedSettings = field(default_factory=GroundedSettings)  # surprisal:, divergence:


def _is_local(url: str | None) -> bool:
    host = urlparse(url or "").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def create_judge(spec: JudgeSpec, settings: JudgeSettings, cache: RequestCache | None) -> Judge:
    if spec.backend == "heuristic":
        from splitreason.judges.heuristic import HeuristicJudge

        return HeuristicJudge(spec.name)
    if spec.backend == "surprisal":
        from splitreason.judges.surprisal import SurprisalJudge

        return SurprisalJudge(spec.name, spec.model, settings.grounded)
    if spec.backend == "divergence":
        from splitreason.judges.divergence import DivergenceJudge

        small, _, large = spec.model.partition(",")
        return DivergenceJudge(spec.name, small.strip(), large.strip(), settings.grounded)

    config = LLMJudgeConfig(
        model=spec.model,
        sampling=settings.sampling,
        response_format=settings.response_format or spec.response_format,
        max_answer_attempts=settings.retry.max_attempts,
        max_spans=settings.max_spans,
        max_excerpt_chars=settings.max_excerpt_chars,
    )
    transport = Transport(policy=settings.retry, timeout=settings.timeout,
                          requests_per_minute=settings.requests_per_minute)
    base_url = spec.effective_base_url()
    api_key = spec.effective_api_key()
    register_url_credentials(base_url)  # an HTTP client sends them as a Basic header a server may echo

    if spec.backend == "openai":
        from splitreason.judges.openai_judge import OpenAIJudge

        if not api_key and not _is_local(base_url):
            where = base_url or "the OpenAI API"
            raise JudgeConfigError(
                f"judge {spec.name}: no API key for {redact(where)}. Set {spec.api_key_env or 'OPENAI_API_KEY'} "
                "in the environment (or api_key in your judges file)."
            )
        return OpenAIJudge(spec.name, config, base_url=base_url, api_key=api_key, transport=transport,
                           cache=cache, start_hint=spec.start_hint)
    if spec.backend == "anthropic":
        from splitreason.judges.anthropic_judge import AnthropicJudge

        return AnthropicJudge(spec.name, config, base_url=base_url, api_key=api_key, transport=transport, cache=cache)
    if spec.backend == "vllm":
        from splitreason.judges.vllm_judge import VLLMJudge

        return VLLMJudge(spec.name, config, transport=transport, cache=cache, engine_args=settings.vllm_engine_args)
    raise JudgeConfigError(f"judge {spec.name}: unknown backend {spec.backend!r}")

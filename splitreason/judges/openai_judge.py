"""`openai:<model>`: any OpenAI-compatible endpoint (vLLM, SGLang, OpenAI, DeepSeek) via the openai SDK."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion

from splitreason.io.redaction import redact
from splitreason.judges.base import JudgeUnavailable
from splitreason.judges.cache import Completion, RequestCache
from splitreason.judges.llm import LLMJudge, LLMJudgeConfig
from splitreason.judges.registry import JudgeConfigError
from splitreason.judges.transport import Transport, sdk_error


def models_url(base_url: str) -> str:
    """The model-list URL under `base_url`: `/models` joins the path, any query stays after it
    (`http://h/v1?k=v` gives `http://h/v1/models?k=v`, not `http://h/v1?k=v/models`)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/models"))


class OpenAIJudge(LLMJudge):
    backend = "openai"

    def __init__(
        self,
        name: str,
        config: LLMJudgeConfig,
        *,
        base_url: str | None,
        api_key: str | None,
        transport: Transport,
        cache: RequestCache | None,
        start_hint: str = "",
    ):
        super().__init__(name, config, transport=transport, cache=cache)
        self.base_url = base_url
        self.start_hint = start_hint
        # The SDK's own retries are off: the transport is the one place that retries.
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "EMPTY", max_retries=0, timeout=transport.timeout
        )

    def build_payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.config.model, "messages": messages, **self.config.sampling.as_dict()}
        mode = self.config.response_format
        if mode in ("json_schema", "json_schema_strict"):
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "difficult_spans", "strict": True,
                                "schema": self.schema(bounded=mode == "json_schema")},
            }
        elif mode == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    async def start(self) -> None:
        where = redact(self.base_url) if self.base_url else "the OpenAI API"
        try:
            models = await self._client.models.list(timeout=min(self.transport.timeout, 15))
        except openai.AuthenticationError as error:
            raise JudgeConfigError(f"judge {self.name}: {where} refused the API key ({error.status_code}); check "
                                   "the API key variable.") from error
        except (openai.APIConnectionError, openai.APITimeoutError) as error:
            hint = f" Start one with: {self.start_hint}." if self.start_hint else ""
            raise JudgeUnavailable(
                f"judge {self.name}: cannot reach {where} (tried GET {models_url(where)} "
                f"-> {type(error).__name__}).{hint} Or point to a running server with --base-url."
            ) from error
        except openai.NotFoundError as error:
            raise JudgeConfigError(
                f"judge {self.name}: {where} answered 404 for GET /models; an OpenAI-compatible base URL "
                "usually ends in /v1 (e.g. http://127.0.0.1:8000/v1)."
            ) from error
        except openai.APIStatusError:
            return  # Some compatible servers refuse to list models; the first request will tell.
        served = [model.id for model in models.data]
        if served and self.config.model not in served and len(served) < 50:
            raise JudgeConfigError(
                f"judge {self.name}: {where} serves {', '.join(served)}, not {self.config.model}. "
                "Use the served name, e.g. --judge openai:" + served[0]
            )

    async def close(self) -> None:
        await self._client.close()

    async def _send(self, payload: dict[str, Any]) -> Completion:
        # The payload is already the exact JSON body, so it is posted as is with the SDK's public
        # `post` (the same request path as `chat.completions.create`: auth, errors, response model);
        # `create(**payload)` would walk the whole prompt and schema against its typed params on
        # every request, about a third of the SDK's CPU per request (benchmarks/bench_judge_saturation.py).
        try:
            response = await self._client.post("/chat/completions", cast_to=ChatCompletion, body=payload)
        except openai.APIError as error:
            raise sdk_error(error, openai) from error
        if not response.choices:
            return Completion(text="", finish_reason="empty")
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

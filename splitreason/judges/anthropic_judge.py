"""`anthropic:<model>`: Claude models through the anthropic SDK's Messages API."""

from __future__ import annotations

from typing import Any

import anthropic

from splitreason.io.redaction import redact
from splitreason.judges.base import JudgeUnavailable
from splitreason.judges.cache import Completion, RequestCache
from splitreason.judges.llm import LLMJudge, LLMJudgeConfig
from splitreason.judges.registry import JudgeConfigError
from splitreason.judges.transport import Transport, sdk_error


class AnthropicJudge(LLMJudge):
    backend = "anthropic"

    def __init__(
        self,
        name: str,
        config: LLMJudgeConfig,
        *,
        base_url: str | None,
        api_key: str | None,
        transport: Transport,
        cache: RequestCache | None,
    ):
        super().__init__(name, config, transport=transport, cache=cache)
        if not api_key:
            raise JudgeConfigError(
                f"judge {name}: no Anthropic API key. Set ANTHROPIC_API_KEY (or api_key_env in your judges file)."
            )
        # The SDK appends /v1/messages itself; a base URL written OpenAI-style (".../v1") would
        # make every request a 404, so the trailing /v1 is dropped.
        if base_url and base_url.rstrip("/").endswith("/v1"):
            base_url = base_url.rstrip("/")[: -len("/v1")]
        self.base_url = base_url
        self._client = anthropic.AsyncAnthropic(
            base_url=base_url, api_key=api_key, max_retries=0, timeout=transport.timeout
        )

    def build_payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        system, user = messages[0]["content"], messages[1:]
        sampling = self.config.sampling
        # The Messages API has no response_format; the prompt asks for JSON and parsing is robust.
        # Recent Claude models refuse temperature and top_p together, so only temperature is sent.
        return {
            "model": self.config.model,
            "system": system,
            "messages": user,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
        }

    async def start(self) -> None:
        where = redact(self.base_url) if self.base_url else "the Anthropic API"
        try:
            await self._client.models.list(timeout=min(self.transport.timeout, 15))
        except anthropic.AuthenticationError as error:
            raise JudgeConfigError(f"judge {self.name}: {where} refused the API key.") from error
        except (anthropic.APIConnectionError, anthropic.APITimeoutError) as error:
            raise JudgeUnavailable(
                f"judge {self.name}: cannot reach {where} ({type(error).__name__}); check the network or --base-url."
            ) from error
        except anthropic.APIStatusError:
            return

    async def close(self) -> None:
        await self._client.close()

    async def _send(self, payload: dict[str, Any]) -> Completion:
        # anthropic>=1.0 dropped the sampling keywords (temperature, top_p, top_k) from
        # messages.create(); extra_body sends the same JSON with every SDK version.
        body = dict(payload)
        sampling = {key: body.pop(key) for key in ("temperature", "top_p", "top_k") if key in body}
        try:
            message = await self._client.messages.create(**body, extra_body=sampling or None)
        except anthropic.APIError as error:
            raise sdk_error(error, anthropic) from error
        text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
        return Completion(
            text=text,
            finish_reason=message.stop_reason,
            prompt_tokens=message.usage.input_tokens,
            completion_tokens=message.usage.output_tokens,
        )

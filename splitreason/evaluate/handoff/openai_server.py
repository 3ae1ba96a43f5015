"""The OpenAI-compatible-server backend: each model behind its own server (vLLM's `api_server`,
started by the user with prefix caching on, which vLLM's V1 engine has by default), spoken to
through `/v1/completions` with prompts as token ids.

    generation    one completion request per call: the context's ids as the prompt, the stop
                  tag as a stop token id, banned ids by logit_bias, the new ids back
                  (`return_token_ids`); the server's prefix cache spares re-reading the shared prefix
    close check   ONE request per chunk: the context as the prompt with `prompt_logprobs`, which
                  gives the greedy token (rank 1) after every prompt position; the prediction after
                  the chunk's last token comes from the one token generated. It asks only as many
                  top tokens as the rule needs (`top_logprobs_needed`): 1 under the greedy rule; with
                  `--close-threshold t`, floor(1/t) (a token of probability >= t ranks at most
                  there), capped at vLLM's 20 (below t = 0.05 a tag outside the top 20 counts as
                  probability 0).
                  Cost: vLLM (0.32) does not READ its prefix cache for a request with prompt
                  logprobs (`SamplingParams.skip_reading_prefix_cache`): every close check
                  prefills the whole context again, prompt and answer so far, on the small
                  model's server. Cheap for a small model and short answers, not free.

Tags must be single tokens here (the hf backend handles tags that are text). Connection errors,
timeouts and 5xx answers are retried a few times with backoff; a server that cannot be reached
is one `ServerUnavailable` line.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from typing import Any

from splitreason.errors import ServiceUnavailable
from splitreason.evaluate.handoff.backend import Generation, PositionView
from splitreason.evaluate.handoff.types import Sampling

__all__ = ["OpenAIServerRunner", "ServerUnavailable"]

_ATTEMPTS = 4
_TOP = 20  # vLLM's default cap on logprobs


def top_logprobs_needed(close_threshold: float | None) -> int:
    """How many top tokens per position the close check must ask for: the greedy rule reads rank 1
    only; a threshold t needs every token that can have probability >= t, and such a token ranks at
    most floor(1/t) (k tokens ranked above it each have at least its probability)."""
    if close_threshold is None:
        return 1
    return max(1, min(_TOP, math.floor(1 / close_threshold)))


class ServerUnavailable(ServiceUnavailable):
    """A model server cannot be reached or does not answer as an OpenAI-compatible vLLM server."""


class OpenAIServerRunner:
    def __init__(self, base_url: str, tokenizer: Any, *, what: str = "model", timeout_s: float = 600.0,
                 close_threshold: float | None = None):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.close_top = top_logprobs_needed(close_threshold)  # the close check's logprobs per position
        self.tokenizer = tokenizer
        self.what = what
        self.client = httpx.Client(timeout=timeout_s)
        models = self._request("GET", "/models")
        try:
            self.model_name = models["data"][0]["id"]
        except (KeyError, IndexError, TypeError):
            raise ServerUnavailable(f"the {what}'s server at {self.base_url} lists no model") from None
        self.eos_ids = frozenset({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
        self.vocab_size = len(tokenizer)

    def _request(self, method: str, path: str, payload: dict | None = None) -> dict:
        import httpx

        delay = 0.5
        for attempt in range(_ATTEMPTS):
            try:
                response = self.client.request(method, self.base_url + path, json=payload)
            except (httpx.ConnectError, httpx.TimeoutException, httpx.RemoteProtocolError) as error:
                problem = f"{type(error).__name__}: {' '.join(str(error).split())[:120]}"
            else:
                if response.status_code < 500:
                    if response.status_code >= 400:
                        raise ServerUnavailable(f"the {self.what}'s server at {self.base_url} refused a request "
                                                f"(HTTP {response.status_code}: {response.text[:200]})")
                    return response.json()
                problem = f"HTTP {response.status_code}"
            if attempt + 1 < _ATTEMPTS:
                time.sleep(delay)
                delay *= 2
        raise ServerUnavailable(f"the {self.what}'s server at {self.base_url} cannot be reached ({problem}); "
                                "start it (python -m vllm.entrypoints.openai.api_server --model ...) or fix "
                                f"--{'small' if 'small' in self.what else 'large'}-url")

    def session(self, seed: int) -> OpenAIServerSession:
        return OpenAIServerSession(self, seed)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def close(self) -> None:
        self.client.close()


class OpenAIServerSession:
    def __init__(self, runner: OpenAIServerRunner, seed: int):
        self.runner = runner
        self.seed = int(seed) % (2**62)
        self.forward_passes = 0
        self.requests = 0

    def _complete(self, payload: dict) -> dict:
        self.requests += 1
        answer = self.runner._request("POST", "/completions", {"model": self.runner.model_name, **payload})
        try:
            return answer["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise ServerUnavailable(f"the {self.runner.what}'s server answered without a choice") from None

    def generate(self, context: Sequence[int], *, max_new_tokens: int, sampling: Sampling,
                 stop_sequences: Sequence[Sequence[int]] = (), banned_ids: Collection[int] = ()) -> Generation:
        stops = [list(stop) for stop in stop_sequences if stop]
        if any(len(stop) != 1 for stop in stops):
            raise ValueError("the openai backend needs tags that are single tokens")
        payload: dict[str, Any] = {
            "prompt": list(context), "max_tokens": max_new_tokens, "temperature": sampling.temperature,
            "top_p": sampling.top_p, "seed": (self.seed + len(context)) % (2**62), "return_token_ids": True,
            "skip_special_tokens": False, "stop_token_ids": [stop[0] for stop in stops],
        }
        if banned_ids:
            payload["logit_bias"] = {str(token): -100 for token in banned_ids}
        choice = self._complete(payload)
        ids = list(choice.get("token_ids") or [])
        self.forward_passes += max(1, len(ids))
        stop_reason = choice.get("stop_reason")
        if choice.get("finish_reason") == "length":
            return Generation(ids, "length")
        if isinstance(stop_reason, int) and [stop_reason] in stops:
            if not ids or ids[-1] != stop_reason:
                ids.append(stop_reason)
            return Generation(ids, "stop")
        eos_id = ids.pop() if ids and ids[-1] in self.runner.eos_ids else None
        return Generation(ids, "eos", eos_id)

    def next_token_views(self, context: Sequence[int], start: int, watch: Collection[int]) -> list[PositionView]:
        top = self.runner.close_top
        choice = self._complete({"prompt": list(context), "max_tokens": 1, "temperature": 0.0,
                                 "prompt_logprobs": top, "logprobs": top, "return_tokens_as_token_ids": True,
                                 "return_token_ids": True, "skip_special_tokens": False})
        self.forward_passes += 1
        prompt_logprobs = choice.get("prompt_logprobs") or []
        if len(prompt_logprobs) != len(context):
            raise ServerUnavailable(f"the {self.runner.what}'s server gave {len(prompt_logprobs)} prompt logprobs for "
                                    f"{len(context)} prompt tokens (is it vLLM?)")
        views = []
        for position in range(start, len(context) - 1):
            entry = prompt_logprobs[position + 1] or {}
            ranked = {int(token): value for token, value in entry.items()}
            greedy = min(ranked, key=lambda token: ranked[token].get("rank", math.inf))
            views.append(PositionView(greedy, {token: math.exp(ranked[token]["logprob"]) for token in watch
                                               if token in ranked}))
        last = (choice.get("logprobs") or {}).get("top_logprobs") or [{}]
        tops = {int(str(key).split(":")[-1]): value for key, value in (last[0] or {}).items()}
        greedy_last = (choice.get("token_ids") or [max(tops, key=tops.get)])[0]
        views.append(PositionView(int(greedy_last), {token: math.exp(tops[token]) for token in watch if token in tops}))
        return views

    def close(self) -> None:
        pass

"""The openai/vllm backend's close check asks the server for only as many top logprobs per position
as the handoff rule needs (greedy: 1), checked on the request bodies a test double of a vLLM
completions server records (the server is a network boundary we do not own)."""

from __future__ import annotations

import math

import pytest
from aiohttp import web

from tests.local_server import ThreadedServer

pytest.importorskip("transformers")

CLOSE = 7  # the close tag's id in the double's answers


class RecordingCompletionsServer(ThreadedServer):
    """Test double of vLLM's OpenAI-compatible server: /v1/models, and /v1/completions answering a
    prompt-logprobs request with the close tag ranked first after the prompt's third token."""

    server_name = "recording completions server (test double)"

    def __init__(self):
        self.requests: list[dict] = []

    def add_routes(self, app: web.Application) -> None:
        async def models(request):
            return web.json_response({"data": [{"id": "tiny"}]})

        async def completions(request):
            body = await request.json()
            self.requests.append(body)
            top = body["prompt_logprobs"]
            prompt = body["prompt"]
            entries = [None]
            for position in range(1, len(prompt)):
                best = CLOSE if position == 3 else 1
                entry = {str(best): {"logprob": math.log(0.6), "rank": 1}}
                entry[str(prompt[position])] = entry.get(str(prompt[position]), {"logprob": math.log(0.1), "rank": 5})
                entries.append(entry)
            return web.json_response({"choices": [{
                "prompt_logprobs": entries, "token_ids": [1],
                "logprobs": {"top_logprobs": [{f"token_id:{1 + rank}": math.log(0.5) for rank in range(top)}]}}]})

        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/completions", completions)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import PreTrainedTokenizerFast

    from tests.tiny_model import build_tiny_model

    return PreTrainedTokenizerFast.from_pretrained(str(build_tiny_model(tmp_path_factory.mktemp("tok") / "m")))


@pytest.mark.parametrize(("threshold", "top"), [(None, 1), (0.5, 2), (0.3, 3), (0.01, 20)])
def test_the_close_check_asks_only_the_top_logprobs_the_rule_needs(tokenizer, threshold, top):
    from splitreason.evaluate.handoff.openai_server import OpenAIServerRunner

    with RecordingCompletionsServer() as server:
        runner = OpenAIServerRunner(f"{server.root_url}/v1", tokenizer, what="small model", close_threshold=threshold)
        try:
            views = runner.session(0).next_token_views([5, 9, 2, 4, 6, 8], 2, watch=(CLOSE,))
        finally:
            runner.close()
    (request,) = server.requests
    assert request["prompt_logprobs"] == top and request["logprobs"] == top
    # the views still read the rule's figures: position 2's prediction (after prompt[2]) is the close tag
    assert [view.greedy_id for view in views[:3]] == [CLOSE, 1, 1]
    assert views[0].probs[CLOSE] == pytest.approx(0.6)

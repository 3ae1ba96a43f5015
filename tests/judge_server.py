"""A scripted judge: a real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions and
Anthropic Messages subsets that our judges use. It is a test double at a network boundary we
do not own (an LLM server); everything on our side of the socket is the real code.

Each trace's problem statement carries a tag `[case:NAME]`; `script[NAME]` lists what to do
on the 1st, 2nd, ... request for that case (the last action repeats). Actions:

    ok            quote sentences of the trace (valid JSON)
    ok_fenced     the same answer inside ```json fences with prose around it
    latex         JSON whose strings hold unescaped LaTeX (\\frac, \\sqrt) as models write it
    overlap       two overlapping quotes
    hallucinate   one quote that is not in the trace, one that is
    paraphrase    a quote with a typo and changed spacing
    nonjson       prose only
    empty         empty content
    truncated     finish_reason "length" with half a JSON object
    429:SECONDS   HTTP 429 with Retry-After
    500 / 503     server errors
    400           a bad request (not retried)
    hang          never answers (the client's timeout must fire)
    reset         the connection is reset mid-request

Added for the judge tests:

    NNN           any other HTTP status (401, 404, 422, 529, ...) with an error body
    429ms:MILLIS  HTTP 429 with only a retry-after-ms header
    empty_spans   a valid answer with no spans: {"spans": []}
    mixed_latex   two quotes, the first plain, the second with unescaped LaTeX (\\sqrt)
    list          a top-level JSON list of quotes (no "spans" object)
    strings       {"spans": ["quote", ...]}: items as plain strings
    pick:I,J,...  quotes of sentences(trace)[I], [J], ... (samples that agree or differ at will)
    say:TEXT      one quote, TEXT as given (e.g. a paraphrase that is not in the trace)

Added for the judge-cost tests (answers cut at max_tokens, as a real server cuts them):

    cut_after:K   finish reason "length" after K complete quotes and half of the next one
    needs:N       the whole answer when the request allows N tokens or more (max_tokens), else cut
                  inside its first quote; a cut answer reports max_tokens completion tokens

Added for the secrets tests (a server that repeats the request's credentials, as some do):

    echo_key:NNN  HTTP NNN whose error message quotes the request's Authorization and x-api-key headers
    echo_key      a usable answer that also quotes those headers, as if the model had seen them

`base_url` ends in /v1 (what the openai SDK wants); `root_url` is the bare origin, which is
what the anthropic SDK wants (it appends /v1/messages itself).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import struct
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.local_server import ThreadedServer

_CASE = re.compile(r"\[case:([A-Za-z0-9_.-]+)\]")
_TRACE = re.compile(r"<<<TRACE\n(.*)\nTRACE>>>", re.DOTALL)


def sentences(trace: str) -> list[str]:
    """Sentence-like pieces of the trace worth quoting (deterministic)."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", trace)]
    return [p for p in parts if 40 <= len(p) <= 400 and "<think>" not in p and "</think>" not in p]


def quote_answer(trace: str, count: int = 3) -> dict[str, Any]:
    picked = sentences(trace)[1 : 1 + count]
    return {"spans": [{"text": s, "reason": "multi-step computation"} for s in picked]}


@dataclass
class LoggedRequest:
    case: str
    payload_sha: str
    action: str
    answered: bool = False
    at: float = 0.0  # time.monotonic() when the request arrived
    payload: dict | None = None  # the JSON body as received
    headers: dict[str, str] = field(default_factory=dict)
    tokens: tuple[int, int] = (0, 0)  # (prompt, completion) tokens reported in the answer


@dataclass
class ScriptedJudgeServer(ThreadedServer):
    script: dict[str, list[str]] = field(default_factory=dict)
    model: str = "scripted-judge"
    latency: float = 0.0
    default_action: str = "ok"
    log: list[LoggedRequest] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Most requests in flight at once (answered or not), for concurrency checks.
    max_in_flight: int = 0
    _in_flight: int = 0

    server_name = "scripted judge server"

    # -- lifecycle -------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)

    def start(self) -> str:
        super().start()
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    # -- behaviour -------------------------------------------------------------
    def requests_for(self, case: str) -> list[LoggedRequest]:
        return [entry for entry in self.log if entry.case == case]

    def actions_for(self, case: str) -> list[str]:
        return [entry.action for entry in self.requests_for(case)]

    def _next_action(self, case: str) -> str:
        actions = self.script.get(case, [self.default_action])
        index = self._counts[case]
        self._counts[case] += 1
        return actions[min(index, len(actions) - 1)]

    async def _models(self, request: web.Request) -> web.Response:
        if "anthropic-version" in request.headers:
            return web.json_response({"data": [{"id": self.model, "type": "model", "display_name": self.model,
                                                "created_at": "2025-01-01T00:00:00Z"}],
                                      "has_more": False, "first_id": self.model, "last_id": self.model})
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model", "created": 0,
                                                              "owned_by": "tests"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        prompt = "\n".join(m["content"] for m in payload["messages"])
        return await self._respond(request, payload, prompt, flavour="openai")

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        prompt = payload.get("system", "") + "\n" + "\n".join(m["content"] for m in payload["messages"])
        return await self._respond(request, payload, prompt, flavour="anthropic")

    async def _respond(self, request: web.Request, payload: dict, prompt: str, flavour: str) -> web.StreamResponse:
        case_match = _CASE.search(prompt)
        case = case_match.group(1) if case_match else "default"
        trace_match = _TRACE.search(prompt)
        trace = trace_match.group(1) if trace_match else ""
        action = self._next_action(case)
        entry = LoggedRequest(case=case, payload_sha=_sha(payload), action=action, at=time.monotonic(),
                              payload=payload, headers=dict(request.headers))
        self.log.append(entry)
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return await self._act(request, entry, action, trace, prompt, flavour)
        finally:
            self._in_flight -= 1

    async def _act(self, request: web.Request, entry: LoggedRequest, action: str, trace: str, prompt: str,
                   flavour: str) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)

        if action.startswith("429ms:"):
            return web.json_response({"error": {"message": "rate limited", "type": "rate_limit"}}, status=429,
                                     headers={"retry-after-ms": action.split(":", 1)[1]})
        if action.startswith("429"):
            retry_after = action.split(":", 1)[1] if ":" in action else "1"
            return web.json_response({"error": {"message": "rate limited", "type": "rate_limit"}}, status=429,
                                     headers={"Retry-After": retry_after})
        if action.startswith("echo_key:"):
            return web.json_response({"error": {"message": f"bad request from {_credentials(request)}",
                                                "type": "server"}}, status=int(action.split(":", 1)[1]))
        if re.fullmatch(r"[1-5][0-9][0-9]", action):
            return web.json_response({"error": {"message": f"scripted {action}", "type": "server"}}, status=int(action))
        if action == "hang":
            try:
                await asyncio.wait_for(self._stopping.wait(), 3600)
            except asyncio.TimeoutError:
                pass
            return web.Response(status=503)
        if action == "reset":
            transport = request.transport
            sock = transport.get_extra_info("socket") if transport else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if transport is not None:
                transport.abort()
            return web.Response(status=500)

        payload = entry.payload or {}
        text, finish = self._content(action, trace, payload)
        if action == "echo_key":
            text = json.dumps({"spans": [*json.loads(text)["spans"], {"text": _credentials(request),
                                                                      "reason": _credentials(request)}]})
        prompt_tokens, completion_tokens = len(prompt) // 4, max(1, len(text) // 4)
        if finish == "length" and action.startswith(("needs:", "cut_after:")):
            completion_tokens = payload.get("max_tokens", completion_tokens)  # cut at the budget, all of it spent
        if flavour == "openai":
            body = {
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": self.model,
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            }
        else:
            body = {
                "id": "msg_test", "type": "message", "role": "assistant", "model": self.model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "max_tokens" if finish == "length" else "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
            }
        response = web.json_response(body)
        entry.tokens = (prompt_tokens, completion_tokens)
        entry.answered = True
        return response

    def _content(self, action: str, trace: str, payload: dict) -> tuple[str, str]:
        answer = quote_answer(trace)
        quotes = [span["text"] for span in answer["spans"]]
        if action == "ok":
            return json.dumps(answer, ensure_ascii=False), "stop"
        if action == "ok_fenced":
            return "Here are the spans:\n```json\n" + json.dumps(answer, ensure_ascii=False) + "\n```\nDone.", "stop"
        if action == "latex":
            latex = [s for s in sentences(trace) if "\\" in s][:2] or quotes[:1]
            raw = ", ".join('{"text": "' + s.replace('"', '\\"') + '", "reason": "latex"}' for s in latex)
            return '{"spans": [' + raw + "]}", "stop"
        if action == "overlap":
            first = quotes[0]
            return json.dumps({"spans": [{"text": first, "reason": "a"},
                                         {"text": first[len(first) // 2 :], "reason": "b"}]}), "stop"
        if action == "hallucinate":
            return json.dumps({"spans": [{"text": "This sentence was never written anywhere in the trace at all.",
                                          "reason": "invented"}, {"text": quotes[0], "reason": "real"}]}), "stop"
        if action == "paraphrase":
            first = quotes[0]
            typo = first[:10] + first[11:]  # one character dropped
            return json.dumps({"spans": [{"text": "  ".join(typo.split(" ")), "reason": "typo"}]}), "stop"
        if action == "empty_spans":
            return json.dumps({"spans": []}), "stop"
        if action == "mixed_latex":
            plain = [s for s in sentences(trace) if "\\" not in s][1]
            latex = [s for s in sentences(trace) if "\\" in s][1]
            raw = '{"text": "' + latex.replace('"', '\\"') + '", "reason": "latex"}'
            return '{"spans": [' + json.dumps({"text": plain, "reason": "plain"}) + ", " + raw + "]}", "stop"
        if action == "list":
            return json.dumps([{"text": q, "reason": "listed"} for q in quotes]), "stop"
        if action == "strings":
            return json.dumps({"spans": quotes}), "stop"
        if action == "echo_key":
            return json.dumps(answer, ensure_ascii=False), "stop"
        if action.startswith("say:"):
            return json.dumps({"spans": [{"text": action[4:], "reason": "said"}]}), "stop"
        if action.startswith("pick:"):
            picked = [sentences(trace)[int(i)] for i in action[5:].split(",") if i]
            return json.dumps({"spans": [{"text": q, "reason": f"pick {q[:8]}"} for q in picked]}), "stop"
        if action == "nonjson":
            return "The hardest part is clearly the algebra in the middle.", "stop"
        if action == "empty":
            return "", "stop"
        if action == "truncated":
            return json.dumps(answer)[:40], "length"
        if action.startswith("cut_after:"):
            kept = int(action.split(":", 1)[1])
            whole = json.dumps({"spans": answer["spans"][:kept]}, ensure_ascii=False)[:-2]
            return whole + (", " if kept else "") + '{"text": "' + quotes[kept][:20], "length"
        if action.startswith("needs:"):
            if payload.get("max_tokens", 0) >= int(action.split(":", 1)[1]):
                return json.dumps(answer, ensure_ascii=False), "stop"
            return json.dumps(answer)[:40], "length"
        raise ValueError(f"unknown scripted action {action!r}")


def _credentials(request: web.Request) -> str:
    return f"Authorization: {request.headers.get('Authorization')}; x-api-key: {request.headers.get('x-api-key')}"


def _sha(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# -- helpers for tests that run `annotate` against this server ---------------------------------

def case_rows(cases: list[str] | str, *, paragraphs: int = 12) -> list[dict]:
    """One OpenR1 record per case name; trace ids are "u<i>:0", problems carry "[case:NAME]"."""
    from tests.helpers import openr1_record, reasoning_trace

    return [openr1_record(f"u{i}", [reasoning_trace(i, paragraphs)], problem=f"Problem {i} [case:{case}]")
            for i, case in enumerate(cases)]


def read_annotations(out) -> list[dict]:
    """Every annotation record in OUT (all shard files), checked against the record contract."""
    from pathlib import Path

    from splitreason.schemas import Annotation

    records = []
    for path in sorted((Path(out) / "annotations").glob("shard-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            Annotation.model_validate(record)  # offsets inside the trace, sorted, non-overlapping
            for span in record["spans"]:
                assert span["text"] == record["trace"][span["start"] : span["end"]]
                for marker in ("Error code", "scripted", "rate limited", "Traceback", "judge_"):
                    assert marker not in span["text"] and marker not in span["reason"]
            if record["status_reason"].startswith("judge_"):
                assert record["status"] == "rejected" and record["spans"] == [] and record["coverage"] == 0.0
            records.append(record)
    return records


def by_case(records: list[dict]) -> dict[str, dict]:
    """Records keyed by their case name (exactly one record per case)."""
    found: dict[str, dict] = {}
    for record in records:
        case = _CASE.search(record["problem"]).group(1)
        assert case not in found, f"two records for case {case}"
        found[case] = record
    return found

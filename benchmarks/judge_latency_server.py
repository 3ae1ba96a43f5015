"""A stand-in LLM judge with a fixed latency, for throughput benchmarks (standalone: no splitreason import).

    python benchmarks/judge_latency_server.py --latency 0.2 --model bench-judge [--port 0]

Serves on 127.0.0.1 (a free port unless --port is given) and prints one line
``READY http://127.0.0.1:PORT/v1`` on stdout once it accepts connections. Endpoints:

    GET  /v1/models             the one served model (OpenAI list format)
    POST /v1/chat/completions   waits --latency seconds (asyncio.sleep, so any number of requests
                                wait at once), then answers with 3 sentences quoted from the trace
                                found between ``<<<TRACE\\n`` and ``\\nTRACE>>>`` in the prompt, as the
                                JSON object {"spans": [{"text", "reason"}]}, with usage counts
    GET  /stats                 {"requests": n, "digest": "..."}: chat requests answered so far and
                                the XOR of the sha256 of every request body (canonical JSON, sorted
                                keys), so two clients can be checked to have sent the very same
                                requests, in any order
    POST /shutdown              stops the server

The server is meant to run in its own process so its CPU use does not compete with the
client's interpreter (GIL) being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import signal
import socket
import sys
import time

from aiohttp import web

_TRACE = re.compile(r"<<<TRACE\n(.*)\nTRACE>>>", re.DOTALL)
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
QUOTES = 3


def sentences(trace: str) -> list[str]:
    """Sentence-like pieces of the trace worth quoting (deterministic)."""
    parts = [p.strip() for p in _SPLIT.split(trace)]
    return [p for p in parts if 40 <= len(p) <= 400 and "<think>" not in p and "</think>" not in p]


def answer_for(prompt: str) -> str:
    match = _TRACE.search(prompt)
    picked = sentences(match.group(1) if match else "")[1: 1 + QUOTES]
    return json.dumps({"spans": [{"text": s, "reason": "multi-step computation"} for s in picked]},
                      ensure_ascii=False)


class LatencyJudge:
    def __init__(self, model: str, latency: float):
        self.model = model
        self.latency = latency
        self.requests = 0
        self.digest = 0
        self.stopped = asyncio.Event()

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.model, "object": "model", "created": 0, "owned_by": "benchmark"}]})

    async def chat(self, request: web.Request) -> web.Response:
        payload = await request.json()
        canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        self.digest ^= int.from_bytes(hashlib.sha256(canonical).digest()[:16], "big")
        prompt = "\n".join(m.get("content") or "" for m in payload.get("messages", []))
        await asyncio.sleep(self.latency)
        text = answer_for(prompt)
        prompt_tokens, completion_tokens = len(prompt) // 4, max(1, len(text) // 4)
        self.requests += 1
        return web.json_response({
            "id": f"chatcmpl-bench-{self.requests}", "object": "chat.completion", "created": int(time.time()),
            "model": payload.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "digest": f"{self.digest:032x}"})

    async def shutdown(self, request: web.Request) -> web.Response:
        self.stopped.set()
        return web.json_response({"ok": True})


async def serve(host: str, port: int, model: str, latency: float) -> None:
    judge = LatencyJudge(model, latency)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/v1/models", judge.models)
    app.router.add_post("/v1/chat/completions", judge.chat)
    app.router.add_get("/stats", judge.stats)
    app.router.add_post("/shutdown", judge.shutdown)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, judge.stopped.set)
    print(f"READY http://{host}:{sock.getsockname()[1]}/v1", flush=True)
    await judge.stopped.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds every chat request waits")
    parser.add_argument("--model", default="bench-judge")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.model, args.latency))
    sys.exit(0)


if __name__ == "__main__":
    main()

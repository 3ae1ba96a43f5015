"""OUT/run.json: the typed manifest of an annotation run, written by a local run, the Ray driver
and `merge` alike.

    RunManifest
      config       RunConfig: what the run's AnnotateSettings resolved to (the judges' provenance,
                   the input, the shard count); what a resume or a merge compares
      settings     the AnnotateSettings as given (JSON), so a run can be repeated (absent in runs
                   written before it was recorded)
      state        running | interrupted | failed | complete | incomplete | merging
      invocations  one entry per invocation that finished (counts, selection, retries, its settings)
      totals       what the sealed shards hold

Runs written before this model existed have the same keys; they read and resume unchanged.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from splitreason.errors import UsageError
from splitreason.schemas.annotate import AnnotateSettings as _S
from splitreason.schemas.annotation import JudgeInfo
from splitreason.schemas.provenance import package_versions

__all__ = ["INPUT_SETTINGS", "RUN_FORMAT", "RunConfig", "RunConfigError", "RunManifest", "RunState",
           "check_compatible", "environment_versions", "now"]

RUN_FORMAT = "splitreason-run"
_VERSIONED_PACKAGES = ("openai", "anthropic", "rapidfuzz", "pydantic", "datasets", "pyarrow", "vllm", "transformers")

RunState = Literal["running", "interrupted", "failed", "complete", "incomplete", "merging"]


class RunConfigError(UsageError, ValueError):
    """The run's configuration conflicts with what OUT already holds."""


def _field(name: str) -> Any:
    """The same description as the settings field (and its default, for run.json files older than it)."""
    field = _S.model_fields[name]
    return Field(default=_S.default(name), description=field.description)


class RunConfig(BaseModel):
    """The settings of a run as resolved: compared on resume and merge (see `fingerprint`)."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(description="Input path, shard directory or hub id (the bundled sample's path when none).")
    judge: JudgeInfo
    other_judges: list[JudgeInfo] = Field(default_factory=list, description="Judges after the first (several --judge).")
    samples: int = _field("samples")
    min_agreement: float = _field("min_agreement")
    semantic_rescue: dict[str, Any] | None = Field(default=None, description="Embedding model and threshold, if on.")
    target_coverage: float = Field(description=_S.help("target_coverage"))
    min_coverage: float = Field(description=_S.help("min_coverage"))
    max_coverage: float = Field(description=_S.help("max_coverage"))
    accept_threshold: float = Field(description=_S.help("accept_threshold"))
    reject_threshold: float = Field(description=_S.help("reject_threshold"))
    fuzzy_threshold: float = Field(description=_S.help("fuzzy_threshold"))
    require_correct: bool
    require_stop: bool
    require_complete: bool
    limit: int | None
    num_shards: int = Field(description="Shards of the input (1 unless --num-shards or a shard directory).")
    shard_index: int | None
    hub_config: str | None = _field("hub_config")
    hub_split: str = _field("hub_split")
    # Operational settings: free to change between resumes.
    concurrency: int
    requests_per_minute: float | None
    timeout: float
    max_attempts: int

    @classmethod
    def resolved(cls, settings: _S, *, source: str, num_shards: int, judges: list[JudgeInfo],
                 semantic_rescue: dict[str, Any] | None) -> RunConfig:
        """The run config of `settings` once its input and judges are resolved."""
        return cls(input=source, judge=judges[0], other_judges=judges[1:], samples=settings.samples,
                   min_agreement=settings.min_agreement, semantic_rescue=semantic_rescue,
                   target_coverage=settings.target_coverage, min_coverage=settings.min_coverage,
                   max_coverage=settings.max_coverage, accept_threshold=settings.accept_threshold,
                   reject_threshold=settings.reject_threshold, fuzzy_threshold=settings.fuzzy_threshold,
                   require_correct=settings.require_correct, require_stop=settings.require_stop,
                   require_complete=settings.require_complete, limit=settings.limit, num_shards=num_shards,
                   shard_index=settings.shard_index, hub_config=settings.hub_config, hub_split=settings.hub_split,
                   concurrency=settings.concurrency, requests_per_minute=settings.rpm, timeout=settings.timeout,
                   max_attempts=settings.max_attempts)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that shape the annotations themselves."""
        return self.model_dump(
            include={"judge", "other_judges", "samples", "min_agreement", "semantic_rescue", "target_coverage",
                     "min_coverage", "max_coverage", "accept_threshold", "reject_threshold", "fuzzy_threshold",
                     "require_correct", "require_stop", "require_complete", "num_shards"}
        )


# Settings that decide which traces a run sees. A local run may resume with others (say, a larger
# --limit); runs merged into one (`merge`, `annotate --engine ray`) must share them.
INPUT_SETTINGS = ("limit", "hub_config", "hub_split")


def check_compatible(previous: dict[str, Any] | RunConfig, current: RunConfig, *, also: tuple[str, ...] = ()) -> None:
    """Refuse to add to a run made with other settings: the fingerprint, and the settings in `also`."""
    try:
        earlier = previous if isinstance(previous, RunConfig) else RunConfig.model_validate(previous)
    except ValueError as error:
        raise RunConfigError(f"run.json in the output directory is not a splitreason run config ({error})") from error
    old, new = earlier.fingerprint(), current.fingerprint()
    for key in also:
        old[key], new[key] = getattr(earlier, key), getattr(current, key)
    changed = [key for key in new if old.get(key) != new.get(key)]
    if changed:
        detail = ", ".join(f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in changed[:3])
        raise RunConfigError(
            f"the output directory was made with different settings ({detail}). "
            "Resume with the same settings, or write to a new directory with -o."
        )


class RunManifest(BaseModel):
    """OUT/run.json."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["splitreason-run"] = RUN_FORMAT
    format_version: Literal[1] = 1
    config: RunConfig
    settings: dict[str, Any] | None = Field(None, description="The AnnotateSettings as given (JSON; keys and "
                                            "URL credentials never: the judges read them from the environment).")
    versions: dict[str, str] = Field(default_factory=dict, description="splitreason, Python and library versions.")
    started: str = Field(description="When the first invocation started (UTC, ISO 8601).")
    state: RunState = "running"
    invocations: list[dict[str, Any]] = Field(default_factory=list, description="One entry per finished invocation.")
    finished: str | None = None
    stopped: str | None = Field(None, description="When an invocation stopped early (state interrupted or failed).")
    error: str | None = Field(None, description="The kind of error that stopped it.")
    totals: dict[str, Any] | None = Field(None, description="What the sealed shards hold.")
    failed_shards: dict[str, str] | None = Field(None, description="--engine ray: the shards whose task failed.")
    merges: list[dict[str, Any]] | None = Field(None, description="`merge`: the parts merged in, per merge.")

    @classmethod
    def start(cls, config: RunConfig, *, settings: dict[str, Any] | None = None,
              previous: RunManifest | None = None) -> RunManifest:
        """The manifest of an invocation that starts now; one that continues `previous` keeps its
        invocations. `settings` are the AnnotateSettings as JSON, credentials redacted by the caller."""
        return cls(config=config, settings=settings, versions=environment_versions(), started=now(),
                   invocations=list(previous.invocations) if previous is not None else [])

    @classmethod
    def load(cls, data: dict[str, Any], *, where: str = "run.json") -> RunManifest:
        """A run.json read back; one `RunConfigError` line when it is not a splitreason run manifest."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problem = error.errors()[0]
            at = ".".join(str(part) for part in problem["loc"]) or "manifest"
            raise RunConfigError(f"{where} is not a splitreason run manifest ({at}: {problem['msg']})") from None

    def to_json(self) -> dict[str, Any]:
        """run.json's content: keys that were never set stay out, as before this model."""
        return {key: value for key, value in self.model_dump(mode="json").items() if value is not None}


def environment_versions() -> dict[str, str]:
    from splitreason import __version__

    return {"splitreason": __version__, **package_versions(_VERSIONED_PACKAGES, with_platform=True)}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

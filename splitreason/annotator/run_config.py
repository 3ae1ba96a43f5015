"""The full configuration of an annotation run, saved in OUT/run.json and checked on resume.

Resuming into an OUT made with a different judge, prompt, sampling or routing would mix
incomparable annotations in one dataset, so it is refused with a clear message. Settings that
only change how fast the run goes (concurrency, rate limit, timeouts) may change freely.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from splitreason import __version__
from splitreason.schemas import JudgeInfo
from splitreason.errors import UsageError

_VERSIONED_PACKAGES = ("openai", "anthropic", "rapidfuzz", "pydantic", "datasets", "pyarrow", "vllm", "transformers")


class RunConfigError(UsageError, ValueError):
    """The run's configuration conflicts with what OUT already holds."""


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(description="Input path, shard directory or hub id.")
    judge: JudgeInfo
    other_judges: list[JudgeInfo] = Field(default_factory=list, description="Judges after the first (several --judge).")
    samples: int = Field(default=1, description="Requests per judge and trace (--samples).")
    min_agreement: float = 0.5
    semantic_rescue: dict[str, Any] | None = Field(default=None, description="Embedding model and threshold, if on.")
    target_coverage: float
    min_coverage: float
    max_coverage: float
    accept_threshold: float
    reject_threshold: float
    fuzzy_threshold: float
    require_correct: bool
    require_stop: bool
    require_complete: bool
    limit: int | None
    num_shards: int
    shard_index: int | None
    hub_config: str | None = None
    hub_split: str = "train"
    # Operational settings: free to change between resumes.
    concurrency: int
    requests_per_minute: float | None
    timeout: float
    max_attempts: int

    def fingerprint(self) -> dict[str, Any]:
        """The settings that shape the annotations themselves."""
        return self.model_dump(
            include={"judge", "other_judges", "samples", "min_agreement", "semantic_rescue", "target_coverage", "min_coverage", "max_coverage", "accept_threshold",
                     "reject_threshold", "fuzzy_threshold", "require_correct", "require_stop",
                     "require_complete", "num_shards"}
        )


# Settings that decide which traces a run sees. A local run may resume with others (say, a larger
# --limit); runs merged into one (`merge`, `annotate --engine ray`) must share them.
INPUT_SETTINGS = ("limit", "hub_config", "hub_split")


def check_compatible(previous: dict[str, Any], current: RunConfig, *, also: tuple[str, ...] = ()) -> None:
    """Refuse to add to a run made with other settings: the fingerprint, and the settings in `also`."""
    try:
        earlier = RunConfig.model_validate(previous)
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


def environment_versions() -> dict[str, str]:
    versions = {"splitreason": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions

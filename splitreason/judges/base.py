"""The judge protocol: given a trace and a target coverage, return quoted excerpts.

A judge never writes files and never aligns: it returns what the model (or the heuristic)
quoted, and the annotator maps those quotes back onto the trace.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from splitreason.schemas import JudgeInfo, Trace, Usage
from splitreason.errors import ServiceUnavailable


@dataclass(frozen=True)
class Excerpt:
    """One passage the judge marked as difficult, as it quoted it."""

    text: str
    reason: str = ""
    # Other readings of the same quote, tried in order when `text` is not found verbatim
    # (e.g. the LaTeX-repaired reading of a JSON string whose "\frac" became a form feed).
    alternatives: tuple[str, ...] = ()
    # Offsets the judge already knows (the heuristic judge does); the aligner checks them.
    start: int | None = None
    # How strongly a model-grounded judge's signal marked this passage (e.g. mean excess loss in
    # nats); None for judges that quote. Kept apart from the alignment score.
    signal: float | None = None


@dataclass
class Verdict:
    """The judge's answer for one trace."""

    excerpts: list[Excerpt]
    usage: Usage = field(default_factory=Usage)
    requests: int = 0  # HTTP requests actually sent (0 when every answer came from the cache)
    cache_hits: int = 0
    # Cut at max_tokens: the spans it finished are kept, but a person should see what was cut.
    truncated: bool = False


class JudgeFailed(Exception):
    """The judge gave no usable answer for this trace within its attempts.

    `reason` is a short code (judge_failed, judge_bad_request, judge_unparseable, ...); `detail`
    is one human-readable line. The trace is recorded as rejected with them, never as data.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        # What the failed attempts cost; filled in by the judge so the run's totals stay honest.
        self.usage = Usage()
        self.requests = 0
        self.cache_hits = 0


class JudgeUnavailable(ServiceUnavailable):
    """The judge cannot be reached or started (a server down, an engine that cannot load or died, a
    missing extra): the same command works once it is back. A judge that is set up wrong (no key,
    a refused key, a model the server does not serve) is a `JudgeConfigError` instead.

    The message is the whole user-facing explanation, including how to fix it.
    """


class Judge(ABC):
    """Base of every judge backend."""

    #: True for judges that make network calls (so the pipeline runs many at once).
    concurrent: bool = True
    #: False for judges whose every sample is the same answer (so --samples > 1 is refused).
    samples_differ: bool = True

    def __init__(self, name: str):
        self.name = name

    @property
    @abstractmethod
    def info(self) -> JudgeInfo:
        """Provenance written into every annotation."""

    async def start(self) -> None:
        """Open clients and check the judge is reachable; raise JudgeUnavailable if not."""

    async def close(self) -> None:
        """Release clients."""

    @abstractmethod
    async def judge(self, trace: Trace, target_coverage: float, sample: int = 0) -> Verdict:
        """Return the judge's excerpts for one trace, or raise JudgeFailed.

        `sample` numbers repeated requests for the same trace (--samples): each is its own
        request and its own cache entry.
        """

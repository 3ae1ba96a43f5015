"""Stratified sampling to a target size, seeded and reproducible.

Strata are combinations of the chosen keys (source, problem type, length bucket). Each stratum
gets a quota proportional to its size (largest remainders, ties by stratum name), so the sample
keeps the mix of the input. Inside a stratum the traces with the smallest
sha256(f"{seed}:{trace_id}") are taken: the same seed gives the same sample whatever order the
input arrives in, and a larger target only adds traces to a smaller one's sample.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
from collections import defaultdict
from dataclasses import dataclass, field

from splitreason.schemas import Trace
from splitreason.schemas.curate import CurateSettings, StrataKey

STRATA_KEYS = tuple(key.value for key in StrataKey)
DEFAULT_LENGTH_BUCKETS: tuple[int, ...] = tuple(CurateSettings.default("length_buckets"))  # characters


def _bucket_names(edges: tuple[int, ...]) -> list[str]:
    def short(n: int) -> str:
        return f"{n // 1000}k" if n % 1000 == 0 else str(n)

    names = [f"<{short(edges[0])}"] if edges else ["all"]
    names += [f"{short(lo)}-{short(hi)}" for lo, hi in zip(edges, edges[1:])]
    if edges:
        names.append(f">={short(edges[-1])}")
    return names


@dataclass
class StratifiedSampler:
    target: int
    seed: int = 0
    by: tuple[str, ...] = STRATA_KEYS
    length_buckets: tuple[int, ...] = DEFAULT_LENGTH_BUCKETS
    # stratum -> (rank, trace id) of every candidate; 100k candidates take ~20 MB.
    _candidates: dict[tuple[str, ...], list[tuple[bytes, str]]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        unknown = [key for key in self.by if key not in STRATA_KEYS]
        if unknown or not self.by:
            raise ValueError(f"stratify by {', '.join(STRATA_KEYS)} (got {', '.join(self.by) or 'nothing'})")
        if self.target < 0 or list(self.length_buckets) != sorted(set(self.length_buckets)):
            raise ValueError("the target must be >= 0 and length buckets increasing")
        self._bucket_names = _bucket_names(self.length_buckets)

    def stratum(self, trace: Trace) -> tuple[str, ...]:
        values = {"source": trace.source or "(none)", "problem_type": trace.problem_type or "(none)",
                  "length": self._bucket_names[bisect.bisect_right(self.length_buckets, len(trace.text))]}
        return tuple(values[key] for key in self.by)

    def rank(self, trace_id: str) -> bytes:
        return hashlib.sha256(f"{self.seed}:{trace_id}".encode("utf-8", "surrogatepass")).digest()[:12]

    def add(self, trace: Trace) -> None:
        self._candidates[self.stratum(trace)].append((self.rank(trace.trace_id), trace.trace_id))

    @property
    def available(self) -> int:
        return sum(len(group) for group in self._candidates.values())

    def quotas(self) -> dict[tuple[str, ...], int]:
        """Largest-remainder proportional allocation; everything when the target is not smaller."""
        total = self.available
        if self.target >= total:
            return {stratum: len(group) for stratum, group in self._candidates.items()}
        shares = {stratum: len(group) * self.target / total for stratum, group in self._candidates.items()}
        quotas = {stratum: int(share) for stratum, share in shares.items()}
        left = self.target - sum(quotas.values())
        by_remainder = sorted(shares, key=lambda s: (-(shares[s] - quotas[s]), s))
        for stratum in by_remainder[:left]:
            quotas[stratum] += 1
        return quotas

    def chosen(self) -> tuple[set[str], list[dict]]:
        """The trace ids in the sample, and per stratum what was available and taken."""
        picked: set[str] = set()
        report = []
        for stratum, quota in sorted(self.quotas().items()):
            group = self._candidates[stratum]
            picked.update(trace_id for _, trace_id in heapq.nsmallest(quota, group))
            report.append({"key": dict(zip(self.by, stratum)), "available": len(group), "taken": quota})
        return picked, report

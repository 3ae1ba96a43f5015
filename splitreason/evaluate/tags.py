"""`splitreason evaluate tags`: how well a model places the offload tags on held-out annotated
rows, teacher-forced (one forward pass per row, no generation). The figures are defined in
evaluate/tag_counts.py; `train sft` runs the same code on its eval split.

    read and check the rows (no torch)  ->  load model + tokenizer  ->  chat template  ->
    encode each row (prompt | reply, spans in tokens)  ->  score  ->  count  ->  TagMetrics
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from splitreason.evaluate.tag_counts import TagCounts, count_row, f1
from splitreason.io.export_reader import LocatedRow, read_exports, without_bad_tags
from splitreason.schemas.tag_eval import TagMetrics, TagsEvalSettings

__all__ = ["encode_rows", "evaluate_tags", "load_rows", "metrics_of", "score_rows"]

_ROWS_PER_STEP = 32  # rows scored between progress updates


def load_rows(data: Sequence[Path], *, skip_bad_rows: bool) -> tuple[list[LocatedRow], int]:
    """Rows to evaluate (no torch needed), and how many were left out for broken tags."""
    rows, _files = read_exports(data)
    good, faults = without_bad_tags(rows, skip=skip_bad_rows)
    return good, len(faults)


def encode_rows(tokenizer, template, rows: Sequence[LocatedRow]) -> list:
    from splitreason.models.chat import encode_row

    return [encode_row(tokenizer, template, located.row.prompt, located.row.completion, located.row.spans())
            for located in rows]


def score_rows(model, tokenizer, encoded: Sequence, *, window: int = 5, batch_size: int = 8,
               max_length: int | None = None, skipped: int = 0, progress=None) -> TagMetrics:
    """Score encoded rows (`models.chat.EncodedRow`) and count the figures. `progress(n)` is
    called with the number of rows done after each step."""
    from splitreason.models.scoring import score_sequences
    from splitreason.models.tags import tag_tokens

    tags = tag_tokens(tokenizer)
    open_ids = {row.ids[span.open_at] for row in encoded for span in row.spans} or {tags.open_id}
    close_ids = {row.ids[span.close_at] for row in encoded for span in row.spans} or {tags.close_id}
    if tags.single:
        open_ids, close_ids = {tags.open_id}, {tags.close_id}
    counts = TagCounts()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(encoded), _ROWS_PER_STEP):
            chunk = encoded[start:start + _ROWS_PER_STEP]
            scores = score_sequences(model, [row.ids for row in chunk], batch_size=batch_size,
                                     max_len=max_length, pad_id=pad)
            for row, score in zip(chunk, scores):
                count_row(counts, row, score.greedy_id, score.target_logprob, open_ids, close_ids, window)
            if progress is not None:
                progress(start + len(chunk))
    finally:
        model.train(was_training)
    return metrics_of(counts, mode=tags.mode, window=window, skipped=skipped)


def metrics_of(counts: TagCounts, *, mode: str, window: int, skipped: int = 0) -> TagMetrics:
    open_p, open_r, open_f = f1(counts.open_hits, counts.open_predicted, counts.open_gold)
    close_p, close_r, close_f = f1(counts.close_hits, counts.close_predicted, counts.close_gold)
    span_p, span_r, span_f = f1(counts.span_found, counts.span_predicted, counts.span_gold)
    mean_span = (sum(counts.predicted_span_tokens) / len(counts.predicted_span_tokens)
                 if counts.predicted_span_tokens else None)
    tokens = counts.reply_tokens or None
    return TagMetrics(
        rows=counts.rows, skipped_bad_tags=skipped, positions=counts.positions, tags=mode,
        open_gold=counts.open_gold, open_predicted=counts.open_predicted, open_hits=counts.open_hits,
        open_precision=open_p, open_recall=open_r, open_f1=open_f,
        close_gold=counts.close_gold, close_predicted=counts.close_predicted, close_hits=counts.close_hits,
        close_precision=close_p, close_recall=close_r, close_f1=close_f,
        span_window=window, span_precision=span_p, span_recall=span_r, span_f1=span_f,
        offload_share_data=counts.inside_tokens / tokens if tokens else None,
        offload_share_predicted=_predicted_share(counts.open_predicted, mean_span, tokens),
        open_prob_mean=_mean(counts.open_probs), close_prob_mean=_mean(counts.close_probs),
    )


def evaluate_tags(settings: TagsEvalSettings, *, progress_factory=None) -> TagMetrics:
    """The command: check the data first (no torch), then load the model and score every row."""
    rows, skipped = load_rows(settings.data, skip_bad_rows=settings.skip_bad_rows)
    from splitreason.models.chat import ChatTemplate, choose_chat_template
    from splitreason.models.loading import load_causal_lm
    from splitreason.models.tokenizer import load_tokenizer
    from splitreason.schemas.training import TrainRecord

    tokenizer = load_tokenizer(settings.model, need_offsets=True, what="model's tokenizer")
    record = TrainRecord.read(settings.model) if Path(settings.model).is_dir() else None
    if record is not None and settings.chat_template is None:
        template = ChatTemplate(record.prompt.chat_template, record.prompt.chat_template_source, "recorded in train.json")
    else:
        template = choose_chat_template(tokenizer, settings.chat_template)
    encoded = encode_rows(tokenizer, template, rows)
    model = load_causal_lm(settings.model, device=settings.device, dtype=settings.dtype)
    if progress_factory is None:
        return score_rows(model, tokenizer, encoded, window=settings.window, batch_size=settings.batch_size,
                          max_length=settings.max_length, skipped=skipped)
    with progress_factory(len(encoded)) as advance:
        return score_rows(model, tokenizer, encoded, window=settings.window, batch_size=settings.batch_size,
                          max_length=settings.max_length, skipped=skipped, progress=advance)


def _predicted_share(opens: int, mean_span: float | None, tokens: int | None) -> float | None:
    if not tokens:
        return None
    if opens == 0:
        return 0.0
    return None if mean_span is None else min(1.0, opens * mean_span / tokens)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None

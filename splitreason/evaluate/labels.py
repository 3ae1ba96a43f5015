"""`evaluate labels`: how well each labelling's spans pick out where the small model struggles.

For the traces every run annotated (same text), with each run's spans as export would train on
them (tables.load_run: a trace rejected by its judge or in review is left out, a reviewed trace
counts with its reconciled reviewed spans), the small model reads the problem and the trace once
(the large one too with `--large`), exactly as the model-grounded judges read it
(judges/grounded.py). Per trace token: the small model's loss, and
with a large model its *excess* loss, max(0, loss_small - loss_large). A token is inside a run's
spans when its last character is. For each run:

    loss_share   = loss inside spans / all loss          token_share = tokens inside / all tokens
    loss_lift    = loss_share / token_share              (1.0: the spans are no better than chance)
    excess_lift  = excess_share / token_share

summed over all shared traces (micro-averaged), and the mean character F1 between every two runs.
The lift is not neutral (LIFT_CAVEAT): report it with what the labels teach.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import combinations

from splitreason.errors import UsageError
from splitreason.schemas.label_eval import LabelMetrics, LabelsEvalSettings, LabelsReport, RunAgreement

__all__ = ["LabelsEvalError", "evaluate_labels", "inside_mask", "print_labels"]


class LabelsEvalError(UsageError, ValueError):
    """Runs that cannot be compared (no shared trace, not a run directory)."""


def inside_mask(starts: list[int], ends: list[int], spans: list[tuple[int, int]]) -> list[bool]:
    """Per token (character range starts[k]:ends[k]): is its last character inside a span?"""
    ordered = sorted(spans)
    span_starts = [start for start, _ in ordered]
    mask = []
    for start, end in zip(starts, ends):
        last = end - 1
        index = bisect_right(span_starts, last) - 1
        mask.append(end > start and index >= 0 and ordered[index][0] <= last < ordered[index][1])
    return mask


def _read_runs(settings: LabelsEvalSettings):
    """Per run: its path, its judges, and per trace the annotation and the spans it is scored with,
    read through the loader export uses (tables.load_run) so that reviews apply as they do there: a
    trace rejected by its judge or in review is left out, a reviewed one is scored on the reconciled
    reviewed spans (what export would train on, with --include-review for traces awaiting review)."""
    from splitreason.judges.kinds import judge_kind
    from splitreason.schemas.review import spans_after_review
    from splitreason.tables.run import load_run

    runs = []
    for path in settings.runs:
        loaded = load_run(path)  # not a run: one line (RunTablesError)
        annotations, spans, reviewed = {}, {}, 0
        for annotation, outcome in loaded.iter_with_outcomes():
            kept = spans_after_review(annotation, outcome, statuses=frozenset({"accepted", "review"}))
            if kept is None:
                continue
            annotations[annotation.trace_id] = annotation
            spans[annotation.trace_id] = [(span.start, span.end) for span in kept]
            reviewed += outcome is not None
        judges = " + ".join(sorted({f"{a.judge.name} ({judge_kind([a.judge, *a.other_judges])})"
                                    for a in annotations.values()})) or "-"
        runs.append((str(path), judges + (f", {reviewed} reviewed" if reviewed else ""), annotations, spans))
    return runs


def evaluate_labels(settings: LabelsEvalSettings, *, progress_factory=None) -> LabelsReport:
    runs = _read_runs(settings)
    first = runs[0][2]
    shared = [trace_id for trace_id in sorted(first)
              if all(trace_id in annotations and annotations[trace_id].trace == first[trace_id].trace
                     for _, _, annotations, _ in runs[1:])]
    if not shared:
        raise LabelsEvalError("the runs share no annotated trace (same trace id and text, not rejected): "
                              "evaluate labels compares labellings of the same traces")
    left_out = {path: len(annotations) - len(shared) for path, _, annotations, _ in runs
                if len(annotations) > len(shared)}

    losses, excesses, masks = _score(settings, [first[trace_id] for trace_id in shared], runs, shared,
                                     progress_factory)
    metrics = []
    for index, (path, judge, _, _) in enumerate(runs):
        tokens = sum(len(mask) for mask in masks[index])
        inside = sum(sum(mask) for mask in masks[index])
        token_share = inside / tokens if tokens else 0.0

        def share(values):
            total = sum(sum(row) for row in values)
            within = sum(v for row, mask in zip(values, masks[index]) for v, m in zip(row, mask) if m)
            return within / total if total > 0 else 0.0

        loss_share = share(losses)
        excess_share = share(excesses) if excesses is not None else None
        lift = (lambda value: round(value / token_share, 4) if token_share > 0 and value is not None else None)
        metrics.append(LabelMetrics(run=path, judge=judge, traces=len(shared), tokens=tokens,
                                    token_share=round(token_share, 4), loss_share=round(loss_share, 4),
                                    loss_lift=lift(loss_share),
                                    excess_share=None if excess_share is None else round(excess_share, 4),
                                    excess_lift=lift(excess_share)))
    agreement = []
    if len(runs) > 1:
        from splitreason.agreement import char_f1

        for (a_path, _, _, a), (b_path, _, _, b) in combinations(runs, 2):
            scores = [char_f1(a[t], b[t]) for t in shared]
            agreement.append(RunAgreement(a=a_path, b=b_path, char_f1=round(sum(scores) / len(scores), 4)))
    return LabelsReport(small=settings.small, large=settings.large, traces=len(shared), left_out=left_out,
                        runs=metrics, agreement=agreement)


def _score(settings, annotations, runs, shared, progress_factory):
    """Per shared trace: the small model's per-token loss, the excess loss (or None), and per run
    the inside mask of every trace."""
    from splitreason.judges.grounded import check_same_vocabulary, encode_trace
    from splitreason.models.chat import choose_chat_template, render_prompt
    from splitreason.models.loading import load_causal_lm
    from splitreason.models.scoring import context_length, score_sequences
    from splitreason.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(settings.small, need_offsets=True, what="small model's tokenizer")
    if settings.large is not None:
        check_same_vocabulary(tokenizer, load_tokenizer(settings.large, need_offsets=True,
                                                        what="large model's tokenizer"),
                              settings.small, settings.large, what="evaluate labels --large")
    small = load_causal_lm(settings.small, device=settings.device, dtype=settings.dtype, what="small model")
    large = (load_causal_lm(settings.large, device=settings.device, dtype=settings.dtype, what="large model")
             if settings.large is not None else None)
    template = choose_chat_template(tokenizer)
    max_len = settings.max_length or min(context_length(m) for m in (small, large) if m is not None)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    losses, excesses = [], [] if large is not None else None
    masks = [[] for _ in runs]
    step = max(1, settings.batch_size)
    with (progress_factory(len(annotations)) if progress_factory else _nothing()) as advance:
        for begin in range(0, len(annotations), step):
            batch = annotations[begin:begin + step]
            encoded = [encode_trace(tokenizer, render_prompt(tokenizer, template, [{"role": "user", "content": a.problem}]),
                                    a.trace) for a in batch]
            scores = score_sequences(small, [e.ids for e in encoded], batch_size=step, max_len=max_len,
                                     overlap=min(256, max_len // 2), pad_id=pad, reference=large)
            for annotation, item, score in zip(batch, encoded, scores):
                positions = [item.prompt_len + k - 1 for k in range(len(item.starts))]
                losses.append([-score.target_logprob[p] for p in positions])
                if excesses is not None:
                    excesses.append([max(0.0, score.reference.target_logprob[p] - score.target_logprob[p])
                                     for p in positions])
                for index, (_, _, _, spans) in enumerate(runs):
                    masks[index].append(inside_mask(item.starts, item.ends, spans[annotation.trace_id]))
            if advance:
                advance(min(len(annotations), begin + step))
    return losses, excesses, masks


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def print_labels(result, out) -> None:
    """The table, as `evaluate labels` and `report --labels` print it (`out`: a rich Console)."""
    from rich.table import Table

    def num(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    against = f"excess loss over {result.large}" if result.large else "loss"
    table = Table(title=f"evaluate labels: {result.traces} shared traces, small model {result.small} ({against})")
    columns = ["run", "judge", "token share", "loss share", "loss lift"]
    if result.large:
        columns += ["excess share", "excess lift"]
    for column in columns:
        table.add_column(column, overflow="fold", justify="left" if column in ("run", "judge") else "right")
    for run in result.runs:
        row = [run.run, run.judge, num(run.token_share), num(run.loss_share), num(run.loss_lift)]
        if result.large:
            row += [num(run.excess_share), num(run.excess_lift)]
        table.add_row(*row)
    out.print(table)
    for pair in result.agreement:
        out.print(f"agreement {pair.a} ~ {pair.b}: character F1 {pair.char_f1:.3f}", highlight=False)
    for path, count in result.left_out.items():
        out.print(f"{path}: {count} annotated traces not in every run were left out", highlight=False)
    out.print(f"lift 1.0 is chance; note: {result.caveat}", highlight=False, soft_wrap=True)

"""The report's figures: matplotlib (Agg canvas, no pyplot and no global state) rendered to PNG bytes.

Each function returns the PNG, or None when there is nothing to draw (the page then says so).
Labels that come from the data pass through `_label`: matplotlib reads `$…$` as mathtext.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

STATUS_COLORS = {"accepted": "#2e7d32", "review": "#f9a825", "rejected": "#c62828"}
STATUSES = ("accepted", "review", "rejected")
ACCENT = "#3f51b5"
MAX_GROUPS = 15  # bars per offload panel; the tables list every group


def _label(text: str, limit: int = 40) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _figure(width: float = 7.5, height: float = 3.2, columns: int = 1):
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", alpha=0.3)
    return figure, axes


def _counts(axis) -> None:
    """An axis that counts traces or spans: integer ticks only."""
    axis.set_major_locator(MaxNLocator(integer=True))


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def status_reasons(reasons: Mapping[tuple[str, str], int]) -> bytes | None:
    if not reasons:
        return None
    items = sorted(reasons.items(), key=lambda item: (STATUSES.index(item[0][0]) if item[0][0] in STATUSES else 9,
                                                      -item[1]))
    figure, (ax,) = _figure(height=0.9 + 0.32 * len(items))
    labels = [_label(f"{status} / {reason}") for (status, reason), _ in items]
    ax.barh(labels, [count for _, count in items],
            color=[STATUS_COLORS.get(status, "#777") for (status, _), _ in items])
    ax.invert_yaxis()
    ax.grid(axis="y", alpha=0)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("traces")
    _counts(ax.xaxis)
    return _png(figure)


def coverage(coverages: Sequence[float], target: float | None, min_coverage: float | None,
             max_coverage: float | None) -> bytes | None:
    if not coverages:
        return None
    figure, (ax,) = _figure()
    top = max(max(coverages), (max_coverage or 0) * 1.05, (target or 0) * 2, 0.05)
    ax.hist(coverages, bins=min(200, max(20, round(top / 0.005))), range=(0, top), color=ACCENT, alpha=0.85)
    if target is not None:
        ax.axvline(target, color="black", linewidth=2, label=f"target {target:.0%}")
    for value, name in ((min_coverage, "min"), (max_coverage, "max")):
        if value is not None:
            ax.axvline(value, color="#c62828", linestyle="--", linewidth=1, label=f"{name} {value:.0%}")
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.set_xlabel("coverage (share of trace characters inside spans)")
    ax.set_ylabel("traces")
    _counts(ax.yaxis)
    ax.legend(frameon=False)
    return _png(figure)


def spans_per_trace(counts: Sequence[int]) -> bytes | None:
    if not counts:
        return None
    figure, (ax,) = _figure()
    values = range(0, max(counts) + 1)
    tally = [sum(1 for n in counts if n == value) for value in values]
    ax.bar(list(values), tally, color=ACCENT, width=0.8)
    ax.set_xlabel("spans in the trace")
    ax.set_ylabel("traces")
    _counts(ax.xaxis)
    _counts(ax.yaxis)
    return _png(figure)


def span_lengths(chars: Sequence[int], tokens: Sequence[int] | None) -> bytes | None:
    if not chars:
        return None
    import numpy as np

    # As numpy arrays (an array("q") converts without copying): handed a sequence, matplotlib builds
    # a Python object per value, ~500 MB for the 1.8 M spans of a 100k-trace run.
    panels = [("characters", np.asarray(chars))] + ([("tokens", np.asarray(tokens))] if tokens else [])
    figure, axes = _figure(columns=len(panels))
    for ax, (unit, values) in zip(axes, panels, strict=True):
        ax.hist(values, bins=30, color=ACCENT, alpha=0.85)
        ax.set_xlabel(f"span length ({unit})")
        ax.set_ylabel("spans")
        _counts(ax.yaxis)
    return _png(figure)


def confidence(by_status: Mapping[str, Sequence[float]], accept: float | None, reject: float | None) -> bytes | None:
    present = [status for status in STATUSES if by_status.get(status)]
    if not present:
        return None
    # Zoom on where the confidences and thresholds lie: a judge whose traces all score 0.99+
    # would otherwise show a single bar at the right edge.
    low = min([min(by_status[status]) for status in present] + [t for t in (accept, reject) if t is not None])
    low = max(0.0, low - 0.05 * (1 - low)) if low < 0.999 else 0.99
    figure, (ax,) = _figure()
    ax.hist([by_status[status] for status in present], bins=30, range=(low, 1), stacked=True,
            color=[STATUS_COLORS[status] for status in present], label=present)
    for value, name, style in ((accept, "accept", "--"), (reject, "reject", ":")):
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, linewidth=1.2, label=f"{name} threshold {value:g}")
    ax.set_xlabel("confidence")
    ax.set_ylabel("traces")
    _counts(ax.yaxis)
    ax.legend(frameon=False, loc="upper left")
    return _png(figure)


def review(waiting: int, decisions: Mapping[str, int], judge_agreement: Sequence[float]) -> bytes | None:
    if not waiting and not decisions:
        return None
    figure, axes = _figure(columns=2 if judge_agreement else 1)
    bars = [("waiting", waiting, "#9e9e9e"), ("accepted", decisions.get("accepted", 0), STATUS_COLORS["accepted"]),
            ("rejected", decisions.get("rejected", 0), STATUS_COLORS["rejected"])]
    axes[0].bar([name for name, _, _ in bars], [n for _, n, _ in bars], color=[c for _, _, c in bars])
    axes[0].set_ylabel("traces")
    axes[0].set_title("review progress (reconciled decision)", fontsize=10)
    _counts(axes[0].yaxis)
    if judge_agreement:
        axes[1].hist(judge_agreement, bins=10, range=(0, 1), color=ACCENT)
        axes[1].set_xlabel("reviewed spans vs judge spans (character F1)")
        axes[1].set_ylabel("accepted traces")
        _counts(axes[1].yaxis)
    return _png(figure)


def offload(by_source: Mapping[str, tuple[int, int]], by_problem_type: Mapping[str, tuple[int, int]],
            overall: float | None, unit: str) -> bytes | None:
    """Share of `unit` inside spans per group; the groups are (inside, total) sums."""
    if overall is None:
        return None
    panels = [("by source", by_source), ("by problem type", by_problem_type)]
    rows = max(min(len(groups), MAX_GROUPS) for _, groups in panels)
    figure, axes = _figure(width=9, height=1.2 + 0.3 * rows, columns=2)
    for ax, (title, groups) in zip(axes, panels, strict=True):
        biggest = sorted(groups.items(), key=lambda item: -item[1][1])[:MAX_GROUPS]
        ax.barh([_label(name, 28) for name, _ in biggest],
                [inside / total if total else 0 for _, (inside, total) in biggest], color=ACCENT)
        ax.axvline(overall, color="black", linewidth=1, linestyle="--")
        ax.invert_yaxis()
        ax.grid(axis="y", alpha=0)
        ax.grid(axis="x", alpha=0.3)
        ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
        ax.set_title(f"{title} (dashed: all, {overall:.1%})", fontsize=10)
        ax.set_xlabel(f"share of {unit} inside spans")
    return _png(figure)


def curation_steps(steps: Sequence[tuple[str, int, int]]) -> bytes | None:
    """(step, in, out) for each curation step, in order."""
    if not steps:
        return None
    figure, (ax,) = _figure(height=1.0 + 0.45 * len(steps))
    names = [_label(step) for step, _, _ in steps]
    ax.barh(names, [count_in for _, count_in, _ in steps], color="#c5cae9", label="in")
    ax.barh(names, [count_out for _, _, count_out in steps], color=ACCENT, label="out")
    ax.invert_yaxis()
    ax.grid(axis="y", alpha=0)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("traces")
    _counts(ax.xaxis)
    ax.legend(frameon=False, loc="lower right")
    return _png(figure)


def tokens_per_trace(per_judge: Mapping[str, Sequence[int]]) -> bytes | None:
    spent = {name: values for name, values in per_judge.items() if any(values)}
    if not spent:
        return None
    figure, (ax,) = _figure()
    ax.hist(list(spent.values()), bins=30, label=[_label(name) for name in spent], alpha=0.85)
    ax.set_xlabel("judge tokens per trace (prompt + completion)")
    ax.set_ylabel("traces")
    _counts(ax.yaxis)
    ax.legend(frameon=False)
    return _png(figure)


MODE_COLORS = {"learned": ACCENT, "random": "#f9a825", "small": "#777777", "large": "#c62828"}


def evaluations(points: Sequence[tuple[str, str, float, float, tuple[float, float]]]) -> bytes | None:
    """Accuracy (with its 95 % interval) against offload share: (evaluation, mode, share, accuracy,
    (low, high)) per point."""
    if not points:
        return None
    figure, (ax,) = _figure(width=7.5, height=3.6)
    seen = set()
    for name, mode, share, accuracy, (low, high) in points:
        ax.errorbar([share], [accuracy], yerr=[[accuracy - low], [high - accuracy]], fmt="o", capsize=3,
                    color=MODE_COLORS.get(mode, "#444"), label=None if mode in seen else mode)
        seen.add(mode)
        ax.annotate(_label(name, 24), (share, accuracy), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.yaxis.set_major_formatter(lambda y, _: f"{y:.0%}")
    ax.set_xlabel("offload share (tokens written by the large model)")
    ax.set_ylabel("accuracy (95 % interval)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    return _png(figure)

"""Render the report as one self-contained HTML file: inline CSS, figures as data: URIs, nothing
fetched from anywhere (a Content-Security-Policy in the page forbids it), every string from the
data escaped by Jinja2's autoescape."""

from __future__ import annotations

import base64
from importlib import resources

from jinja2 import Environment, StrictUndefined

from splitreason.curate.decontaminate import RULE_MEANINGS
from splitreason.report.stats import distribution
from splitreason.report import plots
from splitreason.report.collect import NEAR_TARGET, ReportData
from splitreason.report.prices import PER_TOKENS

TEMPLATE = "template.html.jinja"
MAX_ROWS = 50  # rows of the long curation tables (clusters, examples, strata) shown in the page


def figures(data: ReportData) -> dict[str, str | None]:
    """Every figure as a data: URI (None when there is nothing to draw)."""
    stats, config, offload = data.stats, data.config, data.offload
    curation = data.curation
    pngs = {
        "status": plots.status_reasons(stats.reasons),
        "coverage": plots.coverage(stats.coverages, stats.target_coverage, config.get("min_coverage"),
                                   config.get("max_coverage")),
        "spans": plots.spans_per_trace(stats.spans_per_trace),
        "span_length": plots.span_lengths(stats.span_chars, data.span_tokens),
        "confidence": plots.confidence(stats.confidences, config.get("accept_threshold"),
                                       config.get("reject_threshold")),
        "review": plots.review(stats.review.waiting, stats.review.decisions, stats.review.judge_agreement),
        "offload": plots.offload({k: (v.inside, v.total) for k, v in offload.by_source.items()},
                                 {k: (v.inside, v.total) for k, v in offload.by_problem_type.items()},
                                 offload.overall.share, offload.unit),
        "curation": plots.curation_steps([(s.step, s.in_, s.out) for s in curation.steps]) if curation else None,
        "tokens": plots.tokens_per_trace({name: usage.per_trace for name, usage in stats.usage_by_judge.items()}),
    }
    return {name: None if png is None else "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            for name, png in pngs.items()}


def _environment() -> Environment:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda value: f"{value:,}"
    env.filters["pct"] = lambda value, digits=1: "–" if value is None else f"{value:.{digits}%}"
    env.filters["money"] = lambda value: "–" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
    env.filters["short"] = lambda text, limit=300: text if len(text) <= limit else text[: limit - 1] + "…"
    env.filters["dist"] = lambda dist: "–" if not dist else " · ".join(f"{k} {v:g}" for k, v in dist.items())
    return env


def render_html(data: ReportData) -> str:
    source = resources.files("splitreason.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    template = _environment().from_string(source)
    stats = data.stats
    return template.render(
        d=data, s=stats, review=stats.review, c=data.curation, images=figures(data),
        dist=distribution, statuses=plots.STATUSES, near_target_share=NEAR_TARGET, per_tokens=PER_TOKENS,
        max_rows=MAX_ROWS, answered=len(stats.coverages), rule_meanings=RULE_MEANINGS,
    )

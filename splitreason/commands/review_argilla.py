"""`splitreason review push / pull`: the Argilla round trip (extra [argilla]).

    splitreason review push OUT --dataset NAME [--workspace W] [--status review|all] [--api-url URL]
    splitreason review pull OUT --dataset NAME [--workspace W] [--api-url URL]

The API key comes only from ARGILLA_API_KEY; the server from --api-url or ARGILLA_API_URL.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Literal

import typer
from rich.console import Console

from splitreason.commands.options import AsJson, RunDirArg

console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)  # "a[b]" prints as is

DatasetName = Annotated[str, typer.Option("--dataset", help="Name of the Argilla dataset "
                                                             "(created by push if missing).")]
Workspace = Annotated[str | None, typer.Option("--workspace", help="Argilla workspace (default: the first one "
                                                                   "the API key can see).")]
ApiUrl = Annotated[str | None, typer.Option("--api-url", help="Argilla server, e.g. http://localhost:6900 "
                                                              "(default: $ARGILLA_API_URL).", show_default=False)]


def _check_dataset_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200 or any(ord(char) < 32 for char in name):
        raise typer.BadParameter("the dataset name must have 1 to 200 printable characters", param_hint="--dataset")
    return name


def _client(api_url: str | None):
    from splitreason.review.argilla_sync import connect

    return connect(api_url or os.environ.get("ARGILLA_API_URL"), os.environ.get("ARGILLA_API_KEY"))


def push(
    run: RunDirArg,
    dataset: DatasetName,
    workspace: Workspace = None,
    status: Annotated[Literal["review", "all"], typer.Option("--status", help="review: only traces routed to review; "
                                        "all: every annotated trace.")] = "review",
    api_url: ApiUrl = None,
    reviewers_per_trace: Annotated[int, typer.Option(help="Answers Argilla collects per trace before it counts "
                                                     "as done (used when the dataset is created).", min=1)] = 1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    as_json: AsJson = False,
) -> None:
    """Send traces to an Argilla dataset for review; traces someone already answered are left alone."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from splitreason.io.run_dir import RunDir
    from splitreason.review.argilla_sync import prepare_push, push_records

    name = _check_dataset_name(dataset)
    run_dir = RunDir(run)

    def selected():
        return (a for a in run_dir.iter_annotations() if status == "all" or a.status == "review")

    total = sum(1 for _ in selected())
    if total == 0:
        console.print(f"nothing to push: {run} holds no {'annotations' if status == 'all' else 'traces in review'}")
        return
    client = _client(api_url)
    target = prepare_push(client, dataset_name=name, workspace=workspace, min_submitted=reviewers_per_trace)
    bar = Progress(TextColumn("pushing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, disable=not progress)
    with bar:
        task = bar.add_task("push", total=total)
        summary = push_records(client, target, selected(), total=total,
                               on_progress=lambda done, _: bar.update(task, completed=done))
    what = "created" if summary.created else "using existing"
    console.print(f"{what} dataset {summary.dataset!r} in workspace {summary.workspace!r} at {client.api_url}")
    console.print(f"pushed {summary.pushed} new, updated {summary.updated} not yet answered, "
                  f"skipped {summary.skipped_answered} already answered")
    if summary.clipped_spans:
        console.print(f"clipped {summary.clipped_spans} span(s) that reach into the last characters of a trace "
                      "with characters outside the BMP: Argilla's server checks span ends in code points")
    if as_json:
        print(json.dumps({"dataset": summary.dataset, "workspace": summary.workspace, "api_url": client.api_url,
                          "created": bool(summary.created), "pushed": summary.pushed, "updated": summary.updated,
                          "skipped_answered": summary.skipped_answered, "clipped_spans": summary.clipped_spans},
                         indent=2, ensure_ascii=False, default=str))


def pull(
    run: RunDirArg,
    dataset: DatasetName,
    workspace: Workspace = None,
    api_url: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """Bring reviewers' submitted answers back into OUT/review.sqlite and report their agreement."""
    from splitreason.io.run_dir import RunDir
    from splitreason.review.argilla_sync import pull as pull_reviews
    from splitreason.review.store import ReviewStore

    name = _check_dataset_name(dataset)
    run_dir = RunDir(run)
    client = _client(api_url)
    with ReviewStore.for_run(run) as store:
        summary = pull_reviews(client, run_dir.iter_annotations(), store, dataset_name=name, workspace=workspace)
    decisions = ", ".join(f"{decision} {n}" for decision, n in sorted(summary.decisions.items())) or "none"
    console.print(f"pulled {summary.reviews} review(s) of {len(summary.traces)} trace(s) by "
                  f"{len(summary.reviewers)} reviewer(s) from {summary.dataset!r} ({decisions}) "
                  f"into {run / 'review.sqlite'}")
    if summary.drafts:
        console.print(f"{summary.drafts} draft answer(s) not pulled (not submitted yet)")
    if summary.not_in_run:
        console.print(f"{summary.not_in_run} answered record(s) are not traces of {run}; skipped")
    if summary.several:
        decision, spans = summary.mean("decision_agreement"), summary.mean("span_agreement")
        span_text = f"{spans:.2f}" if spans is not None else "-"
        console.print(f"agreement over {len(summary.several)} trace(s) with several reviewers: decisions "
                      f"{decision:.2f}, spans (character F1) {span_text}")
        # the traces people agreed on least, worth a look first
        for outcome in sorted(summary.several, key=lambda o: (o.decision_agreement, o.span_agreement or 0))[:5]:
            spans_f1 = "-" if outcome.span_agreement is None else f"{outcome.span_agreement:.2f}"
            console.print(f"  {outcome.trace_id}: {', '.join(outcome.reviewers)} → {outcome.decision}, "
                          f"decision agreement {outcome.decision_agreement:.2f}, span agreement {spans_f1}")
    for problem in summary.problems:
        console.print(f"not pulled: {problem}")
    if as_json:
        print(json.dumps({"dataset": summary.dataset, "reviews": summary.reviews, "traces": len(summary.traces),
                          "reviewers": sorted(summary.reviewers), "decisions": dict(summary.decisions),
                          "drafts": summary.drafts, "not_in_run": summary.not_in_run,
                          "decision_agreement": summary.mean("decision_agreement") if summary.several else None,
                          "span_agreement": summary.mean("span_agreement") if summary.several else None,
                          "problems": list(summary.problems)}, indent=2, ensure_ascii=False, default=str))

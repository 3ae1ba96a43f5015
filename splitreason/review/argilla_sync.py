"""Push annotations to an Argilla dataset and pull reviewers' answers back (argilla 2.8 SDK).

    connect(url, key)     one client; a missing key or extra, a refused key and an unreachable
                          server each become one ArgillaSyncError line
    push(...)             creates the dataset (layout in review/argilla.py) or reuses it; upserts
                          one record per trace (id = trace_id: pushing again updates, never
                          duplicates) and leaves every record someone already answered untouched
    pull(...)             turns each submitted or discarded answer into a Review in
                          OUT/review.sqlite and reports reviewers' agreement (review/reconcile.py)

Records are sent and listed through the SDK's API layer (`client.api.records`): it is what
`Dataset.records` uses underneath, and unlike the high-level Record it keeps a discarded answer
that carries no values, and the server's count of updated records.

Time of an answer: the SDK's response model carries no timestamp, so a Review's `reviewed_at`
is the record's `updated_at` as the server reports it (the server touches a record when an
answer completes it), or the time of the pull when the server gives none.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitreason.review.argilla import (FIELD_TRACE, QUESTION_SPANS, ResponseError, build_record, build_settings,
                                        missing_layout, review_from_response, spans_from_answer)
from splitreason.review.reconcile import reconcile_reviews
from splitreason.review.offsets import Utf16Index
from splitreason.review.store import ReviewStore
from splitreason.schemas.annotation import Annotation
from splitreason.schemas.review import ReviewOutcome
from splitreason.errors import ServiceUnavailable, UsageError, one_line

if TYPE_CHECKING:
    import argilla as rg

BATCH = 100  # records per bulk upsert (the SDK's limit is 500)
PAGE = 500  # records per listing request (the server's limit is 1000)
ANSWERED = ("submitted", "discarded")


class ArgillaSyncError(UsageError, ValueError):
    """The Argilla round trip cannot go on as asked; the message says why in one line."""


class ArgillaUnavailable(ServiceUnavailable):
    """No Argilla to talk to: the server cannot be reached, or the argilla extra is missing."""


def _one_line(error: BaseException) -> str:
    return one_line(str(error)) or type(error).__name__


@contextmanager
def argilla_errors(api_url: str) -> Iterator[None]:
    """SDK and transport failures as one-line ArgillaSyncErrors (the key is never in them)."""
    import httpx
    from argilla._exceptions import ArgillaError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK warns for lookups that find nothing; we say it ourselves
            yield
    except (ArgillaSyncError, ArgillaUnavailable):
        raise
    except httpx.TransportError as error:
        raise ArgillaUnavailable(f"cannot reach Argilla at {api_url}: {_one_line(error)}") from error
    except (ArgillaError, httpx.HTTPError) as error:
        raise ArgillaSyncError(f"Argilla at {api_url}: {_one_line(error)}") from error


def connect(api_url: str | None, api_key: str | None, timeout: int = 60, retries: int = 2) -> rg.Argilla:
    """A client for the server; `retries` are for failed connections (httpx backs off between them)."""
    from importlib.util import find_spec

    missing_extra = ArgillaUnavailable("the Argilla round trip needs the argilla extra: "
                                     "pip install 'splitreason[argilla]'")
    if find_spec("argilla") is None:  # checked first, without the import's two seconds
        raise missing_extra
    if not api_key:
        raise ArgillaSyncError("ARGILLA_API_KEY is not set: export the API key of your Argilla user "
                               "(Argilla → My settings)")
    if not api_url:
        raise ArgillaSyncError("no Argilla server given: pass --api-url or set ARGILLA_API_URL")
    if not api_url.startswith(("http://", "https://")):
        raise ArgillaSyncError(f"Argilla URL {api_url!r} must start with http:// or https://")
    try:
        import argilla as rg
        from argilla._exceptions import ArgillaCredentialsError
    except ImportError as error:  # installed but broken (or a dependency missing)
        raise missing_extra from error
    with argilla_errors(api_url):
        try:
            return rg.Argilla(api_url=api_url, api_key=api_key, timeout=timeout, retries=retries)
        except ArgillaCredentialsError as error:
            raise ArgillaSyncError(f"Argilla at {api_url} refused the API key in ARGILLA_API_KEY") from error
        except ValueError as error:  # a server that answers, but not with Argilla's JSON
            raise ArgillaSyncError(f"{api_url} does not answer like an Argilla server: {_one_line(error)}") from error


def _workspace(client: rg.Argilla, name: str | None) -> rg.Workspace:
    workspaces = client.workspaces.list()
    if name is None:
        if not workspaces:
            raise ArgillaSyncError("the Argilla server has no workspace this API key can see: "
                                   "create one in Argilla first")
        return workspaces[0]
    for workspace in workspaces:
        if workspace.name == name:
            return workspace
    available = ", ".join(sorted(w.name for w in workspaces)) or "none"
    raise ArgillaSyncError(f"no Argilla workspace {name!r} (available: {available})")


def _dataset(client: rg.Argilla, name: str, workspace: rg.Workspace) -> rg.Dataset | None:
    dataset = client.datasets(name=name, workspace=workspace)
    if dataset is not None:
        missing = missing_layout(dataset)
        if missing:
            raise ArgillaSyncError(f"dataset {name!r} in workspace {workspace.name!r} is not a splitreason review "
                                   f"dataset (it lacks {'; '.join(missing)}); choose another --dataset")
    return dataset


def iter_server_records(client: rg.Argilla, dataset: rg.Dataset, *, suggestions: bool) -> Iterator[Any]:
    """Every record of the dataset with its answers (RecordModel), page by page."""
    offset = 0
    while True:
        batch = client.api.records.list(dataset_id=dataset.id, offset=offset, limit=PAGE,
                                        with_suggestions=suggestions, with_responses=True)
        if not batch:
            return
        yield from batch
        offset += len(batch)


def _is_answered(record: Any) -> bool:
    return any(getattr(r.status, "value", r.status) in ANSWERED for r in record.responses or [])


@dataclass
class PushSummary:
    dataset: str
    workspace: str
    created: bool = False
    pushed: int = 0  # new records
    updated: int = 0  # records already there, not answered yet: metadata and suggestion refreshed
    skipped_answered: int = 0
    clipped_spans: int = 0


@dataclass
class PushTarget:
    """The dataset to push into, and for each record already there whether someone answered it."""

    dataset: Any
    summary: PushSummary
    answered: dict[str, bool]


def prepare_push(client: rg.Argilla, *, dataset_name: str, workspace: str | None,
                 min_submitted: int = 1) -> PushTarget:
    """Find the dataset (checking it is one of ours) or create it; list what is already there."""
    import argilla as rg

    with argilla_errors(client.api_url):
        space = _workspace(client, workspace)
        summary = PushSummary(dataset=dataset_name, workspace=space.name)
        dataset = _dataset(client, dataset_name, space)
        if dataset is None:
            dataset = rg.Dataset(name=dataset_name, workspace=space, client=client,
                                 settings=build_settings(client, min_submitted=min_submitted)).create()
            summary.created = True
            return PushTarget(dataset, summary, {})
        return PushTarget(dataset, summary, {str(r.external_id): _is_answered(r)
                                             for r in iter_server_records(client, dataset, suggestions=False)})


def push_records(client: rg.Argilla, target: PushTarget, annotations: Iterable[Annotation], *,
                 total: int | None = None, on_progress: Callable[[int, int | None], None] | None = None) -> PushSummary:
    """Upsert one record per annotation, in batches; answered records are skipped."""
    summary, answered = target.summary, target.answered
    batch: list[Any] = []
    sent = 0

    def send() -> None:
        nonlocal sent
        if batch:
            client.api.records.bulk_upsert(dataset_id=target.dataset.id, records=batch)
            sent += len(batch)
            batch.clear()
        if on_progress:
            on_progress(sent + summary.skipped_answered, total)

    with argilla_errors(client.api_url):
        for annotation in annotations:
            if answered.get(annotation.trace_id):
                summary.skipped_answered += 1
                continue
            record, clipped = build_record(annotation, target.dataset)
            summary.clipped_spans += clipped
            if annotation.trace_id in answered:
                summary.updated += 1
            else:
                summary.pushed += 1
                answered[annotation.trace_id] = False  # the same trace twice in OUT is sent as one record
            batch.append(record.api_model())
            if len(batch) >= BATCH:
                send()
        send()
    return summary


def push(client: rg.Argilla, annotations: Iterable[Annotation], *, dataset_name: str, workspace: str | None,
         total: int | None = None, min_submitted: int = 1,
         on_progress: Callable[[int, int | None], None] | None = None) -> PushSummary:
    """prepare_push + push_records: create or update the review dataset with these annotations."""
    target = prepare_push(client, dataset_name=dataset_name, workspace=workspace, min_submitted=min_submitted)
    return push_records(client, target, annotations, total=total, on_progress=on_progress)


@dataclass
class PullSummary:
    dataset: str
    workspace: str
    reviews: int = 0
    traces: set[str] = field(default_factory=set)
    reviewers: set[str] = field(default_factory=set)
    decisions: Counter = field(default_factory=Counter)
    drafts: int = 0  # answers still in progress: not pulled
    not_in_run: int = 0  # answered records whose trace OUT does not hold
    problems: list[str] = field(default_factory=list)  # answers that could not be read, one line each
    several: list[ReviewOutcome] = field(default_factory=list)  # traces with two reviewers or more

    def mean(self, attribute: str) -> float | None:
        values = [getattr(o, attribute) for o in self.several if getattr(o, attribute) is not None]
        return sum(values) / len(values) if values else None


class _Reviewers:
    """User id -> user name, asked once per user; the id itself when the key may not look users up."""

    def __init__(self, client: rg.Argilla):
        self.client, self.names = client, {client.me.id: client.me.username}

    def __call__(self, user_id: Any) -> str:
        if user_id not in self.names:
            from argilla._exceptions import ArgillaAPIError

            try:
                user = self.client.users(id=user_id)
            except ArgillaAPIError:  # an annotator's key may not read other users
                user = None
            self.names[user_id] = user.username if user is not None else f"argilla-user:{user_id}"
        return self.names[user_id]


def pull(client: rg.Argilla, annotations: Iterable[Annotation], store: ReviewStore, *, dataset_name: str,
         workspace: str | None) -> PullSummary:
    """Store every submitted or discarded answer as a Review; report agreement where several people answered."""
    with argilla_errors(client.api_url):
        space = _workspace(client, workspace)
        dataset = _dataset(client, dataset_name, space)
        if dataset is None:
            raise ArgillaSyncError(f"no dataset {dataset_name!r} in Argilla workspace {space.name!r}; "
                                   "run `splitreason review push` first")
        summary = PullSummary(dataset=dataset_name, workspace=space.name)
        spans_question = dataset.settings.questions[QUESTION_SPANS].id
        answered: dict[str, Any] = {}
        for record in iter_server_records(client, dataset, suggestions=True):
            statuses = [getattr(r.status, "value", r.status) for r in record.responses or []]
            summary.drafts += statuses.count("draft")
            if record.external_id is not None and any(s in ANSWERED for s in statuses):
                answered[str(record.external_id)] = record
        reviewer_name = _Reviewers(client)
        for annotation in annotations:
            record = answered.pop(annotation.trace_id, None)
            if record is not None:
                _pull_record(record, annotation, spans_question, reviewer_name, store, summary)
        summary.not_in_run = len(answered)
    return summary


def _pull_record(record: Any, annotation: Annotation, spans_question: Any, reviewer_name: _Reviewers,
                 store: ReviewStore, summary: PullSummary) -> None:
    trace_id = annotation.trace_id
    if (record.fields or {}).get(FIELD_TRACE) != annotation.trace:
        summary.problems.append(f"{trace_id}: the trace in Argilla differs from the one in OUT; not pulled")
        return
    suggestion = next((s for s in record.suggestions or [] if s.question_id == spans_question), None)
    try:
        shown = spans_from_answer(suggestion.value if suggestion else None, Utf16Index(annotation.trace))
    except ResponseError as error:
        summary.problems.append(f"{trace_id}: the judge's suggestion cannot be read back: {error}")
        return
    for response in record.responses or []:
        if getattr(response.status, "value", response.status) not in ANSWERED:
            continue
        reviewer = reviewer_name(response.user_id)
        try:
            review = review_from_response(response, annotation, shown, reviewer, record.updated_at)
        except ResponseError as error:
            summary.problems.append(f"{trace_id} ({reviewer}): {error}; not pulled")
            continue
        store.save(review)
        summary.reviews += 1
        summary.traces.add(trace_id)
        summary.reviewers.add(reviewer)
        summary.decisions[review.decision] += 1
    reviews = store.reviews(trace_id)  # every path's reviews: the outcome export will use
    if len({review.reviewer for review in reviews}) >= 2:
        summary.several.append(reconcile_reviews(annotation.trace, reviews))

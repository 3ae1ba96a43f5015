"""One loader for an annotation run and its reviews, as lazy polars frames.

    >>> import polars as pl, splitreason
    >>> run = splitreason.load_run("out")
    >>> run.annotations.group_by("status").len().collect()

`splitreason stats`, `report`, `calibrate` and `export` read a run through this loader, so a
notebook sees the numbers the commands print. Nothing is read until a frame is collected, and
the annotation files are scanned with only the columns a query selects (the trace text is never
held for a query that does not ask for it). The commands read big runs without holding them:
`Run.iter_annotation_blocks(columns)` gives the annotations frame in blocks of whole lines
(stats, report), `Run.read_annotations(columns)` those blocks' few columns together (calibrate),
and `Run.iter_with_outcomes()` each validated record with its reconciled review outcome (export, whose
rows are the records' exact text).

Frames (every column is listed in the `*_COLUMNS` tables below, with its dtype and meaning;
`Run.describe()` prints them):

- `annotations`: one row per annotated trace, in file order (shard by shard), with the judge's
  numbers and, where people reviewed the trace, the reconciled review outcome (`review_*` columns).
- `spans`: one row per span the judge marked (offsets are Python code points, end exclusive).
- `rejects`: one row per input row that could not become a trace (OUT/rejects.jsonl).
- `reviews`: one row per stored review decision (OUT/review.sqlite): reviewer, path, decision.
- `review_outcomes`: one row per reviewed trace id: the reviews reconciled by the policy of
  review/reconcile.py (`state` says whether it applies to this run: `applied`, `not_in_run` or
  `spans_do_not_fit`; only `applied` outcomes reach the `review_*` columns of `annotations`).
- `exclusions`: one row per trace `splitreason curate` removed before the run (CURATED/
  exclusions.jsonl), found as the report finds the curation: `curation=DIR`, else the run's input
  when it holds a curate.json; empty when there is none.
- `manifest`: OUT/run.json as a dict ({} for a directory without one).

Reviews are applied in one place (`review_outcomes`, with review/reconcile.py's policy): export
writes the reconciled spans of a trace whose outcome is `applied`, stats and the report count them,
calibrate compares them with the judge. A review that is `not_in_run` or `spans_do_not_fit` (its
spans do not fit this run's trace: reviewed against another version) is applied nowhere and
counted in `Run.skipped_reviews`, which each command reports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from splitreason.errors import one_line
from splitreason.io.run_dir import RunDir, RunDirError

# polars allocates through jemalloc, which by default keeps freed pages for 10 s: reading a run block
# by block would then hold many blocks' garbage at once. Give freed pages back within 250 ms (measured in
# benchmarks/bench_run_tables.py); read when polars is first imported, so a value already set wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:250,muzzy_decay_ms:0")

if TYPE_CHECKING:
    import polars as pl

    from splitreason.schemas import Annotation
    from splitreason.schemas.review import ReviewOutcome

CURATE_FILE = "curate.json"  # the curate summary that marks a curation directory (report/curation.py reads it)
EXCLUSIONS_FILE = "exclusions.jsonl"

# name: (dtype as polars prints it, meaning). The tests check every frame against these tables.
ANNOTATIONS_COLUMNS: dict[str, tuple[str, str]] = {
    "trace_id": ("str", '"{uuid}:{generation index}" of the trace.'),
    "problem": ("str", "The problem statement."),
    "trace": ("str", "The reasoning trace; every offset indexes into it."),
    "source": ("str", "OpenR1 source of the problem (null when unknown)."),
    "problem_type": ("str", "OpenR1 problem type (null when unknown)."),
    "status": ("str", "accepted, review or rejected: the router's decision."),
    "status_reason": ("str", "The router's reason, e.g. ok, low_confidence, judge_failed: detail."),
    "reason": ("str", "status_reason up to the first colon (the code stats counts)."),
    "answered": ("bool", "False when the judge gave no usable answer (status_reason judge_*)."),
    "coverage": ("f64", "Share of the trace's characters inside the judge's spans."),
    "target_coverage": ("f64", "The coverage the judge was asked for."),
    "confidence": ("f64", "The judge's confidence (alignment of its quotes; see the README)."),
    "n_spans": ("u32", "How many spans the judge marked (rows in `spans`)."),
    "span_chars": ("i64", "Characters inside the judge's spans."),
    "trace_chars": ("u32", "Characters (code points) of the trace."),
    "excerpts": ("i64", "Excerpts the judge quoted."),
    "hallucinated": ("u32", "Excerpts that could not be found in the trace."),
    "judge": ("str", "Name of the (first) judge."),
    "judge_backend": ("str", "heuristic, openai, anthropic, vllm, ..."),
    "judge_model": ("str", "The judge's model id (the rules version for the heuristic judge)."),
    "judges": ("list[str]", "Every judge of the trace, the first one first (several --judge share one usage total)."),
    "prompt_tokens": ("i64", "Prompt tokens the judges spent on the trace."),
    "completion_tokens": ("i64", "Completion tokens the judges spent on the trace."),
    "agreement": ("f64", "Mean pairwise character F1 between samples/judges (null for one sample)."),
    "samples": ("u32", "Judge samples kept (0 for one sample)."),
    "spans": ("list[struct[6]]", "The judge's spans: start, end, text, score, reason, match."),
    "reviewed": ("bool", "People reviewed the trace and their outcome applies (review_outcomes state applied)."),
    "review_decision": ("str", "accepted or rejected: the reconciled decision (null when not reviewed)."),
    "review_changed": ("bool", "The reviewed outcome differs from the judge (rejected, or other spans)."),
    "reviewers": ("list[str]", "Everyone whose review counted, sorted (null when not reviewed)."),
    "review_decision_agreement": ("f64", "Share of reviewers who made the reconciled decision."),
    "review_span_agreement": ("f64", "Mean pairwise character F1 of accepting reviewers (null with < 2)."),
    "review_judge_agreement": ("f64", "Character F1 of the reconciled spans against the judge's."),
    "review_spans": ("list[struct[3]]", "The reconciled reviewed spans: start, end, text (null when not reviewed)."),
    "review_span_chars": ("i64", "Characters inside the reconciled reviewed spans."),
}
SPANS_COLUMNS: dict[str, tuple[str, str]] = {
    "trace_id": ("str", "The trace the span belongs to."),
    "span": ("u32", "Position of the span in its trace (0-based, in trace order)."),
    "status": ("str", "The trace's status."),
    "answered": ("bool", "The trace's judge answered (always true where it marked spans)."),
    "start": ("i64", "Offset of the first character (Python code points)."),
    "end": ("i64", "Offset one past the last character."),
    "chars": ("i64", "end - start."),
    "text": ("str", "Exactly trace[start:end]."),
    "score": ("f64", "Alignment score: 1.0 for an exact quote."),
    "reason": ("str", "Why the judge found the span difficult."),
    "match": ("str", "exact, normalized, fuzzy or semantic: how the quote was aligned."),
}
REJECTS_COLUMNS: dict[str, tuple[str, str]] = {
    "origin": ("str", "Source file path or hub id."),
    "row": ("i64", "1-based line (jsonl) or 0-based row (parquet/hub)."),
    "trace_id": ("str", "Trace id when it is known."),
    "reason": ("str", "Reason code, e.g. invalid_json, contains_tag."),
    "detail": ("str", "One human-readable line."),
}
REVIEWS_COLUMNS: dict[str, tuple[str, str]] = {
    "trace_id": ("str", "The reviewed trace."),
    "reviewer": ("str", "Who decided (Argilla user, or --reviewer in the review UI)."),
    "origin": ("str", "ui or argilla: the review path."),
    "decision": ("str", "accepted or rejected."),
    "reviewed_at": ("datetime[μs, UTC]", "When the decision was submitted."),
    "judge_confidence": ("f64", "The annotation's confidence the reviewer saw."),
    "n_spans": ("u32", "Spans the reviewer settled on."),
    "spans": ("list[struct[3]]", "Those spans: start, end, text."),
    "judge_spans": ("list[struct[3]]", "The judge's spans the reviewer was shown."),
    "edits": ("u32", "Edit steps that led to the decision."),
}
REVIEW_OUTCOMES_COLUMNS: dict[str, tuple[str, str]] = {
    "trace_id": ("str", "The reviewed trace."),
    "state": ("str", "applied (applies to this run), not_in_run, or spans_do_not_fit (spans outside the run's trace)."),
    "reviews": ("u32", "Stored reviews of the trace (all paths, all reviewers)."),
    "decision": ("str", "Reconciled decision (null unless applied)."),
    "changed": ("bool", "Differs from the judge: rejected, or other spans."),
    "reviewers": ("list[str]", "Everyone whose review counted, sorted."),
    "decision_agreement": ("f64", "Share of reviewers who made the reconciled decision."),
    "span_agreement": ("f64", "Mean pairwise character F1 of accepting reviewers' spans (null with < 2)."),
    "judge_agreement": ("f64", "Character F1 of the reconciled spans against the judge's."),
    "spans": ("list[struct[3]]", "The reconciled spans: start, end, text."),
    "span_chars": ("i64", "Characters inside the reconciled spans."),
}
EXCLUSIONS_COLUMNS: dict[str, tuple[str, str]] = {
    "trace_id": ("str", "The removed trace."),
    "uuid": ("str", "The OpenR1 record's uuid."),
    "origin": ("str", "Where the record was read from."),
    "row": ("i64", "1-based line (jsonl) or 0-based row (parquet/hub)."),
    "step": ("str", "select, filter, decontaminate, dedup or sample."),
    "reason": ("str", "Reason code, e.g. length_chars, contaminated, near_duplicate."),
    "detail": ("str", "One human-readable line."),
    "kept": ("str", "Dedup: uuid of the cluster member that was kept."),
    "similarity": ("f64", "Dedup: estimated similarity to the kept member."),
    "eval_set": ("str", "Decontamination: the evaluation set it overlaps."),
}
FRAME_COLUMNS = {"annotations": ANNOTATIONS_COLUMNS, "spans": SPANS_COLUMNS, "rejects": REJECTS_COLUMNS,
                 "reviews": REVIEWS_COLUMNS, "review_outcomes": REVIEW_OUTCOMES_COLUMNS,
                 "exclusions": EXCLUSIONS_COLUMNS}


# Why a review applies nowhere (Run.skipped_reviews), as the commands warn about it.
SKIPPED_REVIEWS = {
    "not_in_run": "reviewed trace(s) not among this run's annotations, left out",
    "spans_do_not_fit": "reviewed trace(s) with spans that do not fit the run's trace text, left out",
}


class RunTablesError(RunDirError):
    """OUT is not an annotation run, or its files cannot be read as one; the message says which."""


def _schemas(span_text: bool = True) -> dict[str, Any]:
    """The polars schemas of our JSONL records (fields not named here, e.g. judge params, are skipped
    while parsing). `span_text=False` leaves the spans' text and reason out: numbers about spans
    then parse a third less."""
    import polars as pl

    span = pl.Struct({"start": pl.Int64, "end": pl.Int64, "text": pl.String, "score": pl.Float64,
                      "reason": pl.String, "match": pl.String} if span_text else
                     {"start": pl.Int64, "end": pl.Int64, "score": pl.Float64, "match": pl.String})
    judge = pl.Struct({"name": pl.String, "backend": pl.String, "model": pl.String, "prompt_hash": pl.String})
    annotation = {
        "trace_id": pl.String, "problem": pl.String, "trace": pl.String, "source": pl.String,
        "problem_type": pl.String, "spans": pl.List(span),
        "hallucinated": pl.List(pl.Struct({"best_score": pl.Float64})),
        "excerpts": pl.Int64, "coverage": pl.Float64, "target_coverage": pl.Float64, "confidence": pl.Float64,
        "status": pl.String, "status_reason": pl.String, "judge": judge,
        "usage": pl.Struct({"prompt_tokens": pl.Int64, "completion_tokens": pl.Int64}),
        "agreement": pl.Float64, "samples": pl.List(pl.Struct({"sample": pl.Int64})),
        "other_judges": pl.List(judge),
    }
    reject = {"origin": pl.String, "row": pl.Int64, "trace_id": pl.String, "reason": pl.String, "detail": pl.String}
    exclusion = {"trace_id": pl.String, "uuid": pl.String, "origin": pl.String, "row": pl.Int64, "step": pl.String,
                 "reason": pl.String, "detail": pl.String, "kept": pl.String, "similarity": pl.Float64,
                 "eval_set": pl.String}
    return {"annotation": annotation, "reject": reject, "exclusion": exclusion}


def _text_span_dtype():
    import polars as pl

    return pl.List(pl.Struct({"start": pl.Int64, "end": pl.Int64, "text": pl.String}))


BLOCK_BYTES = 4 << 20  # the commands read the annotation files in blocks of whole lines this big


def _complete_lines(path: Path) -> Path | BytesIO | None:
    """A JSONL file as polars should read it: the path, or only its complete lines when a run is
    writing it or crashed mid-line (io/jsonl.py's rule: a torn last line is not a record yet);
    None for an empty file."""
    size = path.stat().st_size
    if size == 0:
        return None
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return path
        handle.seek(0)
        data = handle.read(size)  # rare (a live or crashed run): copy the complete part
    return BytesIO(data[: data.rfind(b"\n") + 1]) if b"\n" in data else None


def jsonl_blocks(path: Path, block_bytes: int | None = None) -> Iterator[BytesIO]:
    """The complete lines of a JSONL file, about `block_bytes` at a time (a torn last line is left
    out, as io/jsonl.py does). A whole-file scan maps every page of the file, so its peak memory
    grows with the file; blocks keep it bounded whatever the run's size."""
    block_bytes = block_bytes or BLOCK_BYTES
    with open(path, "rb") as handle:
        rest = b""
        while block := handle.read(block_bytes):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield BytesIO(memoryview(block)[:cut])


def _scan_jsonl(sources: list[Path | BytesIO], schema: Mapping[str, Any]):
    import polars as pl

    sources = [source if isinstance(source, BytesIO) else _complete_lines(source) for source in sources]
    sources = [source for source in sources if source is not None
               and not (isinstance(source, BytesIO) and source.getbuffer().nbytes == 0)]
    if not sources:
        return pl.LazyFrame(schema=dict(schema))
    if not any(isinstance(source, BytesIO) for source in sources):  # the usual case: one scan over every file
        return pl.scan_ndjson(sources, schema=dict(schema))
    # Blocks, or a torn file among them: scan each source on its own, concatenated in order.
    return pl.concat([pl.scan_ndjson(source, schema=dict(schema)) for source in sources])


@dataclass
class Run:
    """An annotation run as lazy polars frames (see the module docstring and `describe()`)."""

    path: Path
    manifest: dict[str, Any]
    curation_dir: Path | None = None
    _run_dir: RunDir = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._run_dir = RunDir(self.path)

    # -- the frames --------------------------------------------------------------------------
    @property
    def shard_files(self) -> list[Path]:
        return [path for _, _, path in self._run_dir.shard_files()]

    def raw_annotations(self) -> pl.LazyFrame:
        """The annotation records as stored (nested judge/usage structs), before flattening."""
        return _scan_jsonl(self.shard_files, _schemas()["annotation"])

    @property
    def annotations(self) -> pl.LazyFrame:
        return self.annotations_of(self.shard_files)

    def annotations_of(self, sources: list[Path | BytesIO], *, span_text: bool = True) -> pl.LazyFrame:
        """`annotations` of some shard files, or of blocks of their lines (`jsonl_blocks`);
        `span_text=False`: the `spans` column without text and reason (see `_schemas`)."""
        import polars as pl

        judge = pl.col("judge")
        frame = _scan_jsonl(sources, _schemas(span_text)["annotation"]).select(
            "trace_id", "problem", "trace", "source", "problem_type", "status", "status_reason",
            reason=pl.col("status_reason").str.splitn(":", 2).struct.field("field_0"),
            answered=~pl.col("status_reason").str.starts_with("judge_"),
            coverage="coverage", target_coverage="target_coverage", confidence="confidence",
            n_spans=pl.col("spans").list.len(),
            span_chars=pl.col("spans").list.eval(pl.element().struct.field("end") - pl.element().struct.field("start"))
            .list.sum(),
            trace_chars=pl.col("trace").str.len_chars(),
            excerpts="excerpts", hallucinated=pl.col("hallucinated").list.len(),
            judge=judge.struct.field("name"), judge_backend=judge.struct.field("backend"),
            judge_model=judge.struct.field("model"),
            judges=pl.concat_list(judge.struct.field("name"),
                                  pl.col("other_judges").list.eval(pl.element().struct.field("name"))),
            prompt_tokens=pl.col("usage").struct.field("prompt_tokens"),
            completion_tokens=pl.col("usage").struct.field("completion_tokens"),
            agreement="agreement", samples=pl.col("samples").list.len(), spans="spans",
        )
        outcomes = self.review_outcomes.filter(pl.col("state") == "applied").select(
            "trace_id", reviewed=pl.lit(True), review_decision="decision", review_changed="changed",
            reviewers="reviewers", review_decision_agreement="decision_agreement",
            review_span_agreement="span_agreement", review_judge_agreement="judge_agreement",
            review_spans="spans", review_span_chars="span_chars")
        return frame.join(outcomes, on="trace_id", how="left", maintain_order="left") \
            .with_columns(pl.col("reviewed").fill_null(False))

    @property
    def spans(self) -> pl.LazyFrame:
        import polars as pl

        return (self.raw_annotations()
                .select("trace_id", "status", "spans",
                        answered=~pl.col("status_reason").str.starts_with("judge_"))
                .filter(pl.col("spans").list.len() > 0)
                .with_columns(span=pl.int_ranges(pl.col("spans").list.len(), dtype=pl.UInt32))
                .explode("spans", "span")
                .select("trace_id", "span", "status", "answered", pl.col("spans").struct.unnest())
                .with_columns(chars=pl.col("end") - pl.col("start"))
                .select(list(SPANS_COLUMNS)))

    @property
    def rejects(self) -> pl.LazyFrame:
        return _scan_jsonl([self._run_dir.rejects_path] if self._run_dir.rejects_path.is_file() else [],
                           _schemas()["reject"])

    @property
    def exclusions(self) -> pl.LazyFrame:
        paths = []
        if self.curation_dir is not None and (self.curation_dir / EXCLUSIONS_FILE).is_file():
            paths.append(self.curation_dir / EXCLUSIONS_FILE)
        return _scan_jsonl(paths, _schemas()["exclusion"])

    @property
    def reviews(self) -> pl.LazyFrame:
        import polars as pl

        rows = [{"trace_id": r.trace_id, "reviewer": r.reviewer, "origin": r.origin, "decision": r.decision,
                 "reviewed_at": r.reviewed_at, "judge_confidence": r.judge_confidence, "n_spans": len(r.spans),
                 "spans": [s.model_dump() for s in r.spans], "judge_spans": [s.model_dump() for s in r.judge_spans],
                 "edits": len(r.history)}
                for reviews in self._stored_reviews.values() for r in reviews]
        schema = {"trace_id": pl.String, "reviewer": pl.String, "origin": pl.String, "decision": pl.String,
                  "reviewed_at": pl.Datetime("us", "UTC"), "judge_confidence": pl.Float64, "n_spans": pl.UInt32,
                  "spans": _text_span_dtype(), "judge_spans": _text_span_dtype(), "edits": pl.UInt32}
        return pl.DataFrame(rows, schema=schema, orient="row" if not rows else None).lazy()

    @property
    def review_outcomes(self) -> pl.LazyFrame:
        return self._outcomes_frame.lazy()

    @cached_property
    def _outcomes_frame(self) -> pl.DataFrame:
        import polars as pl

        rows = []
        for trace_id, reviews in self._stored_reviews.items():
            outcome = self._reconciled.outcomes.get(trace_id)
            state = "applied" if outcome is not None else self._reconciled.problems[trace_id]
            rows.append({
                "trace_id": trace_id, "state": state, "reviews": len(reviews),
                "decision": outcome.decision if outcome else None, "changed": outcome.changed if outcome else None,
                "reviewers": outcome.reviewers if outcome else None,
                "decision_agreement": outcome.decision_agreement if outcome else None,
                "span_agreement": outcome.span_agreement if outcome else None,
                "judge_agreement": outcome.judge_agreement if outcome else None,
                "spans": [s.model_dump() for s in outcome.spans] if outcome else None,
                "span_chars": sum(s.end - s.start for s in outcome.spans) if outcome else None,
            })
        schema = {"trace_id": pl.String, "state": pl.String, "reviews": pl.UInt32, "decision": pl.String,
                  "changed": pl.Boolean, "reviewers": pl.List(pl.String), "decision_agreement": pl.Float64,
                  "span_agreement": pl.Float64, "judge_agreement": pl.Float64, "spans": _text_span_dtype(),
                  "span_chars": pl.Int64}
        return pl.DataFrame(rows, schema=schema)

    # -- reviews, reconciled once ----------------------------------------------------------------
    @property
    def has_review_store(self) -> bool:
        from splitreason.review.store import ReviewStore

        return ReviewStore.exists_for(self.path)

    @cached_property
    def _stored_reviews(self) -> dict:
        from splitreason.review.store import ReviewStore

        if not self.has_review_store:  # checked first: opening the store would create the file
            return {}
        with ReviewStore.for_run(self.path) as store:
            return store.reviews_by_trace()

    @cached_property
    def _reconciled(self) -> _ReconciledReviews:
        """Each reviewed trace's outcome by review/reconcile.py's policy, against this run's trace text
        (one scan that keeps only the reviewed traces)."""
        import polars as pl

        from splitreason.review.reconcile import reconcile_reviews

        grouped = self._stored_reviews
        reconciled = _ReconciledReviews()
        if not grouped:
            return reconciled
        wanted = list(grouped)
        text: dict[str, str] = {}
        for path in self.shard_files:
            for block in jsonl_blocks(path):
                # Into Python at once: a filtered polars string column still holds its block's buffer.
                found = self.collect(_scan_jsonl([block], {"trace_id": pl.String, "trace": pl.String})
                                     .filter(pl.col("trace_id").is_in(wanted)), source=path)
                for trace_id, trace in found.iter_rows():
                    text.setdefault(trace_id, trace)  # the first record of an id, as a reader of the files meets it
        for trace_id, reviews in grouped.items():
            if trace_id not in text:
                reconciled.problems[trace_id] = "not_in_run"
                continue
            try:
                reconciled.outcomes[trace_id] = reconcile_reviews(text[trace_id], reviews)
            except ValueError:  # spans that do not fit this trace: reviewed against another version of it
                reconciled.problems[trace_id] = "spans_do_not_fit"
        return reconciled

    def iter_with_outcomes(self) -> Iterator[tuple[Annotation, ReviewOutcome | None]]:
        """Each annotation record (validated, as export writes it) with its reconciled review outcome
        (None when not reviewed, or when its review applies nowhere), reconciled against the record's own
        trace as it is read, by the same rule as `review_outcomes`: no second pass over the files.
        Once the iteration ends, `skipped_reviews`, `review_warnings()` and `outcomes_by_trace()`
        know every review without reading again."""
        from splitreason.review.reconcile import reconcile_reviews

        if "_reconciled" in self.__dict__:  # already reconciled (a frame was read): reuse it
            for annotation in self.iter_annotations():
                yield annotation, self._reconciled.outcomes.get(annotation.trace_id)
            return
        grouped = self._stored_reviews
        reconciled = _ReconciledReviews()
        for annotation in self.iter_annotations():
            trace_id = annotation.trace_id
            reviews = grouped.get(trace_id)
            if reviews and trace_id not in reconciled.outcomes and trace_id not in reconciled.problems:
                try:  # the first record of an id, as `_reconciled` does
                    reconciled.outcomes[trace_id] = reconcile_reviews(annotation.trace, reviews)
                except ValueError:  # spans that do not fit this trace: reviewed against another version of it
                    reconciled.problems[trace_id] = "spans_do_not_fit"
            yield annotation, reconciled.outcomes.get(trace_id)
        for trace_id in grouped:
            if trace_id not in reconciled.outcomes and trace_id not in reconciled.problems:
                reconciled.problems[trace_id] = "not_in_run"
        self.__dict__["_reconciled"] = reconciled  # what the cached property would have computed

    def outcomes_by_trace(self) -> dict[str, ReviewOutcome]:
        """The reconciled review outcome of each reviewed trace of this run (state applied)."""
        return dict(self._reconciled.outcomes)

    @property
    def skipped_reviews(self) -> dict[str, int]:
        """Reviewed trace ids whose reviews apply nowhere, by reason (not_in_run, spans_do_not_fit)."""
        problems = list(self._reconciled.problems.values())
        return {reason: problems.count(reason) for reason in SKIPPED_REVIEWS if reason in problems}

    def review_warnings(self) -> list[str]:
        """One line per kind of review that applies nowhere (empty when every review applies)."""
        return [f"warning: {count} {SKIPPED_REVIEWS.get(reason, reason)}"
                for reason, count in self.skipped_reviews.items()]

    # -- reading -----------------------------------------------------------------------------
    def iter_annotations(self) -> Iterator[Annotation]:
        """The annotation records as validated pydantic objects, one at a time (export writes their
        exact text)."""
        return self._run_dir.iter_annotations()

    def iter_annotation_blocks(self, columns: list, *, span_text: bool = True) -> Iterator[pl.DataFrame]:
        """`annotations.select(columns)` in blocks of whole lines, one DataFrame at a time (bounded
        memory whatever the size of the run): what the commands fold their numbers over."""
        for path in self.shard_files:
            for block in jsonl_blocks(path):
                yield self.collect(self.annotations_of([block], span_text=span_text).select(columns), source=path)

    def read_annotations(self, columns: list, *, span_text: bool = True) -> pl.DataFrame:
        """`annotations.select(columns).collect()` read block by block: memory for the columns
        selected, not for the files (for few, small columns: a whole-file scan maps every file)."""
        import polars as pl

        parts = list(self.iter_annotation_blocks(columns, span_text=span_text))
        if not parts:
            return self.collect(self.annotations_of([], span_text=span_text).select(columns))
        return pl.concat(parts, how="vertical", rechunk=True)

    def collect(self, frame: pl.LazyFrame, *, source: Path | None = None) -> pl.DataFrame:
        """Collect with the streaming engine; a file that is not what our writers write is one line
        naming the run (or the file), not a polars traceback."""
        import polars as pl

        try:
            return frame.collect(engine="streaming")
        except (pl.exceptions.PolarsError, OSError) as error:
            first = one_line(error)
            where = f"{source} (run {self.path})" if source is not None else f"the files of run {self.path}"
            raise RunTablesError(f"cannot read {where}: {first}; were they edited by hand?") from error

    def describe(self) -> str:
        """Every frame's columns with their dtypes and meanings, as text."""
        lines = []
        for name, columns in FRAME_COLUMNS.items():
            lines.append(f"{name}:")
            lines += [f"  {column:28} {dtype:20} {meaning}" for column, (dtype, meaning) in columns.items()]
        return "\n".join(lines)


@dataclass
class _ReconciledReviews:
    outcomes: dict[str, ReviewOutcome] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # trace id -> not_in_run / spans_do_not_fit


def find_curation_dir(config: Mapping[str, Any], explicit: Path | None = None) -> Path | None:
    """`curation` when given, else the run's input directory when it holds a curate.json."""
    if explicit is not None:
        return explicit
    source = config.get("input")
    if isinstance(source, str) and source:
        candidate = Path(source)
        if candidate.is_dir() and (candidate / CURATE_FILE).is_file():
            return candidate
    return None


def load_run(out: str | Path, *, curation: str | Path | None = None) -> Run:
    """Open the annotation run in OUT as lazy polars frames (nothing is read until collected).

    `curation`: the output directory of `splitreason curate` whose exclusions to load (default:
    the run's input, when it holds a curate.json). OUT that is not a run is one RunTablesError
    line (a UsageError: exit 2 on the command line).
    """
    out = Path(out)
    if not out.exists():
        raise RunTablesError(f"{out} does not exist; give the output directory of `splitreason annotate`")
    if not out.is_dir():
        raise RunTablesError(f"{out} is a file, not a run directory; give the output directory of "
                             "`splitreason annotate`")
    run_dir = RunDir(out)
    if not run_dir.annotations_dir.is_dir():
        raise RunTablesError(f"{out} holds no annotations (no {run_dir.annotations_dir.name}/ directory): it is not "
                             f"an annotation run; make one with `splitreason annotate -o {out}`")
    try:
        manifest = run_dir.read_manifest()
    except RunDirError as error:
        raise RunTablesError(str(error)) from error
    manifest = manifest if isinstance(manifest, dict) else {}
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    return Run(out, manifest, find_curation_dir(config, Path(curation) if curation is not None else None))

"""Run a judge over a stream of traces: bounded concurrency, resume, one record per trace.

Every selected trace ends exactly once in its shard's annotations file (accepted, review or
rejected); every bad input row ends once in rejects.jsonl. Reading happens in a thread that
feeds a bounded queue, so memory stays flat whatever the input size.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from splitreason.annotator.annotate import (
    SampleOutcome,
    build_annotation,
    failed_annotation,
    is_judge_failure,
    total_usage,
)
from splitreason.annotator.align import DEFAULT_FUZZY_THRESHOLD
from splitreason.annotator.routing import RoutingPolicy
from splitreason.io.jsonl import JsonlAppender
from splitreason.io.run_dir import RunDir
from splitreason.judges.base import Judge, JudgeFailed
from splitreason.schemas import Annotation, Reject, Trace, Usage
from splitreason.schemas.annotate import AnnotateSettings

log = logging.getLogger(__name__)

# Flush Python's buffer after every record (survives SIGKILL); fsync at most this often
# (survives power loss without paying a disk sync per record).
_FSYNC_SECONDS = 1.0
# How often the event loop moves items read by the reader thread into the workers' queue.
_POLL_SECONDS = 0.005
# Items read ahead, at least: with one worker (a judge that runs in-process, like the heuristic
# one) a read-ahead of one item made the worker wait a poll interval for every trace.
_MIN_READ_AHEAD = 64


@dataclass
class AnnotateOptions:
    policy: RoutingPolicy = field(default_factory=RoutingPolicy)
    concurrency: int = AnnotateSettings.default("concurrency")
    num_shards: int = 1
    shard_index: int | None = None
    retry_rejected: bool = False
    fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD
    samples: int = 1  # requests per judge and trace (--samples)
    rescuer: object | None = None  # a SemanticRescuer (--semantic-rescue), or None


@dataclass
class RunCounts:
    """What happened in this invocation (resumed records are counted separately)."""

    status: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    input_rejects: Counter = field(default_factory=Counter)
    already_done: int = 0
    retried_rejected: int = 0
    requests: int = 0
    cache_hits: int = 0
    usage: Usage = field(default_factory=Usage)
    elapsed: float = 0.0

    @property
    def annotated(self) -> int:
        return sum(self.status.values())

    def as_dict(self) -> dict:
        return {
            "annotated": self.annotated,
            "status": dict(self.status),
            "reasons": dict(self.reasons),
            "input_rejects": dict(self.input_rejects),
            "already_done": self.already_done,
            "retried_rejected": self.retried_rejected,
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "elapsed_seconds": round(self.elapsed, 3),
        }


ShardedItem = tuple[int, Trace | Reject]
_END = object()


class _Writers:
    """The run's append writers, one per shard file and one for rejects.jsonl (io.jsonl's
    JsonlAppender: whole lines, a failed write cut back), fsynced every `_FSYNC_SECONDS`."""

    def __init__(self, run_dir: RunDir, num_shards: int):
        self.run_dir = run_dir
        self.num_shards = num_shards
        self._files: dict[object, JsonlAppender] = {}

    def _write(self, key: object, path, record) -> None:
        appender = self._files.get(key)
        if appender is None:
            # Resume repairs torn tails before a run starts (RunDir); here files are only appended to.
            appender = self._files[key] = JsonlAppender(path, repair=False, sync_interval=_FSYNC_SECONDS)
        appender.write(record)

    def annotation(self, shard: int, annotation: Annotation) -> None:
        self._write(shard, self.run_dir.shard_path(shard, self.num_shards), annotation)

    def reject(self, reject: Reject) -> None:
        self._write("rejects", self.run_dir.rejects_path, reject)

    def sync(self) -> None:
        for appender in self._files.values():
            appender.sync()

    def close(self) -> None:
        try:
            self.sync()
        finally:
            for appender in self._files.values():
                appender.suspend()  # synced above; a failed fsync must not keep descriptors open
            self._files.clear()


class AnnotationRun:
    def __init__(
        self,
        run_dir: RunDir,
        judges: Judge | list[Judge],
        options: AnnotateOptions,
        *,
        on_progress: Callable[[RunCounts, Annotation | None], None] | None = None,
    ):
        self.run_dir = run_dir
        self.judges = judges if isinstance(judges, list) else [judges]
        self.options = options
        self.counts = RunCounts()
        self.on_progress = on_progress or (lambda counts, annotation: None)
        # Provenance is the same for every trace of a run: computed once, not per trace.
        self._judge_infos = [judge.info for judge in self.judges]
        self._done: dict[int, set[str]] = {}
        # Records per status in each shard file, earlier invocations included (kept current, so
        # the end-of-run totals need no second read of the files).
        self.shard_status: dict[int, Counter] = {}
        self._reject_keys: set[tuple] = set()
        # Set by the pipeline once OUT is locked and this run starts writing to it.
        self.started = False

    def shards(self) -> list[int]:
        if self.options.shard_index is not None:
            return [self.options.shard_index]
        return list(range(self.options.num_shards))

    @property
    def rejects_recorded(self) -> int:
        """Lines in rejects.jsonl: earlier invocations' and this one's."""
        return len(self._reject_keys)

    def _load_state(self) -> None:
        """Read what OUT already holds; the caller has prepared the run directory."""
        n = self.options.num_shards
        self.run_dir.check_shard_layout(n)
        for shard in self.shards():
            if self.options.retry_rejected:
                dropped = self.run_dir.drop_annotations(shard, n, is_judge_failure)
                self.counts.retried_rejected += len(dropped)
                caches = {id(c): c for c in (getattr(j, "cache", None) for j in self.judges) if c is not None}
                for cache in caches.values():
                    if dropped:
                        cache.forget_traces(dropped)
            self._done[shard], self.shard_status[shard] = self.run_dir.shard_state(shard, n)
            log.info("shard %d of %d: %d traces already done", shard, n, len(self._done[shard]))
        self._reject_keys = self.run_dir.reject_keys()

    async def run(self, items: Iterable[ShardedItem]) -> RunCounts:
        started = time.monotonic()
        self._load_state()
        writers = _Writers(self.run_dir, self.options.num_shards)
        concurrent = all(judge.concurrent for judge in self.judges)
        # Each worker sends one request per judge and sample at once: --concurrency bounds requests.
        per_trace = self.options.samples * len(self.judges)
        workers_count = max(1, self.options.concurrency // per_trace) if concurrent else 1
        read_ahead = max(workers_count, _MIN_READ_AHEAD)
        # The reader thread appends to `pending` and the event loop polls it: no per-item wake-up
        # crosses threads. Each one costs a context switch and a GIL handover; with the loop busy,
        # a reader woken per item fell behind and left workers (and their connections) idle.
        queue: asyncio.Queue = asyncio.Queue()  # holds at most read_ahead items (+ end markers)
        pending: deque = deque()  # at most read_ahead items read ahead
        room = threading.Event()  # set when the reader may read on
        reader_error: list[BaseException] = []
        stop = threading.Event()

        def produce() -> None:
            try:
                for item in items:
                    while len(pending) >= read_ahead and not stop.is_set():
                        room.clear()
                        if len(pending) >= read_ahead:
                            room.wait(0.1)  # a timeout only so that `stop` is seen
                    if stop.is_set():
                        return
                    pending.append(item)
            except BaseException as error:  # surfaced to the caller after the workers stop
                reader_error.append(error)
            finally:
                pending.append(_END)

        async def dispatch() -> None:
            while True:
                while pending and queue.qsize() < read_ahead:
                    item = pending.popleft()
                    if item is _END:
                        for _ in range(workers_count):
                            queue.put_nowait(_END)
                        return
                    queue.put_nowait(item)
                if len(pending) <= read_ahead // 2 and not room.is_set():
                    room.set()  # the reader wakes once per half-emptied buffer, not per item
                await asyncio.sleep(_POLL_SECONDS)

        reader = threading.Thread(target=produce, name="splitreason-reader", daemon=True)
        reader.start()
        workers = [asyncio.create_task(self._work(queue, writers)) for _ in range(workers_count)]
        dispatcher = asyncio.create_task(dispatch())
        try:
            await asyncio.gather(dispatcher, *workers)
        finally:
            stop.set()
            room.set()
            for task in (dispatcher, *workers):
                task.cancel()
            writers.close()
            self.counts.elapsed = time.monotonic() - started
        if reader_error:
            raise reader_error[0]
        return self.counts

    async def _work(self, queue: asyncio.Queue, writers: _Writers) -> None:
        # Items arrive for the wanted shards only (InputPlan.items filters at the source).
        while True:
            item = await queue.get()
            if item is _END:
                return
            shard, record = item
            if isinstance(record, Reject):
                self._record_reject(record, writers)
                continue
            # Duplicate trace ids never get here: selection rejects them, shard files cannot hold them.
            if record.trace_id in self._done[shard]:
                self.counts.already_done += 1
                self.on_progress(self.counts, None)
                continue
            annotation = await self._annotate(record)
            writers.annotation(shard, annotation)
            log.info("trace %s: %s (%s, confidence %.3f, %d span(s))", record.trace_id, annotation.status,
                     annotation.status_reason, annotation.confidence, len(annotation.spans))
            self._done[shard].add(record.trace_id)
            self.shard_status[shard][annotation.status] += 1
            self.counts.status[annotation.status] += 1
            self.counts.reasons[annotation.status_reason.split(":", 1)[0]] += 1
            self.counts.usage.add(annotation.usage)
            self.on_progress(self.counts, annotation)

    async def _annotate(self, trace: Trace) -> Annotation:
        policy = self.options.policy
        calls = [(judge, info, sample) for judge, info in zip(self.judges, self._judge_infos)
                 for sample in range(self.options.samples)]
        outcomes = await asyncio.gather(*(self._ask(judge, info, sample, trace) for judge, info, sample in calls))
        usable = [outcome for outcome in outcomes if outcome.verdict is not None]
        if not usable:
            first = outcomes[0]
            return failed_annotation(trace, first.failure, first.judge, policy,  # type: ignore[arg-type]
                                     usage=total_usage(outcomes), other_judges=self._judge_infos[1:])

        def build() -> Annotation:
            return build_annotation(trace, outcomes, None, policy, fuzzy_threshold=self.options.fuzzy_threshold,
                                    rescuer=self.options.rescuer)

        if self.options.rescuer is not None:
            # Embedding is CPU work of tens of milliseconds: off the event loop, so requests keep flowing.
            return await asyncio.to_thread(build)
        return build()

    async def _ask(self, judge: Judge, info, sample: int, trace: Trace) -> SampleOutcome:
        try:
            verdict = await judge.judge(trace, self.options.policy.target_coverage, sample)
        except JudgeFailed as failure:
            self.counts.requests += failure.requests
            return SampleOutcome(judge=info, sample=sample, failure=failure)
        self.counts.requests += verdict.requests
        self.counts.cache_hits += verdict.cache_hits
        return SampleOutcome(judge=info, sample=sample, verdict=verdict)

    def _record_reject(self, reject: Reject, writers: _Writers) -> None:
        self.counts.input_rejects[reject.reason] += 1
        if reject.key() not in self._reject_keys:
            self._reject_keys.add(reject.key())
            writers.reject(reject)

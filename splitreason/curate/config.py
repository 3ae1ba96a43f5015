"""What a curate run was asked to do, checked and turned into its steps before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from splitreason.curate.boilerplate import DEFAULT_BOILERPLATE_SAMPLE, Boilerplate
from splitreason.curate.decontaminate import DEFAULT_NGRAM, RULES, NgramRule
from splitreason.curate.specific import DEFAULT_MIN_OVERLAP_RATIO, DEFAULT_SPECIFIC_NGRAM, SpecificRule
from splitreason.io.eval_sets import load_eval_set
from splitreason.curate.dedup import (
    DEFAULT_EMBEDDING_THRESHOLD,
    DEFAULT_NEAR_THRESHOLD,
    DEFAULT_NUM_PERM,
    DEFAULT_SHINGLE,
    EmbeddingDedup,
    ExactDedup,
    MinHashDedup,
)
from splitreason.curate.index import DedupIndex
from splitreason.curate.filters import CharLength, CorrectCount, FieldIn, Language, TokenLength, TraceFilter
from splitreason.curate.sampling import DEFAULT_LENGTH_BUCKETS, STRATA_KEYS, StratifiedSampler
from splitreason.io.selection import Selection
from splitreason.errors import UsageError


class CurateConfigError(UsageError, ValueError):
    """The curate options contradict each other or name something unusable; one line for the user."""


@dataclass
class CuratePlan:
    filters: list[TraceFilter] = field(default_factory=list)
    decontaminator: SpecificRule | NgramRule | None = None
    boilerplate_sample: int = 0  # corpus problems to read first for the specific rule's stock phrasing
    checkers: list = field(default_factory=list)  # ExactDedup / MinHashDedup, in that order
    embedding: EmbeddingDedup | None = None
    sampler: StratifiedSampler | None = None
    exact: bool = False
    minhash_settings: dict | None = None
    embedding_settings: dict | None = None
    index: DedupIndex | None = None  # on disk, in the work directory

    def close(self) -> None:
        if self.index is not None:
            self.index.close()


@dataclass
class CurateRequest:
    input: str | None
    out: Path
    shards: int = 1
    overwrite: bool = False
    # selection (as `annotate` does it)
    limit: int | None = None
    include_incorrect: bool = False
    include_unfinished: bool = False
    include_incomplete: bool = False
    hub_config: str | None = None
    hub_split: str = "train"
    # filters
    min_chars: int | None = None
    max_chars: int | None = None
    tokenizer: str | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    min_correct: int | None = None
    max_correct: int | None = None
    sources: list[str] = field(default_factory=list)
    exclude_sources: list[str] = field(default_factory=list)
    problem_types: list[str] = field(default_factory=list)
    exclude_problem_types: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    # decontamination (None: the rule's own default, see decontamination_settings)
    eval_sets: list[str] = field(default_factory=list)
    eval_field: str | None = None
    rule: str = "specific"
    ngram: int | None = None
    min_overlap: int | None = None  # --rule ngram only
    min_overlap_ratio: float | None = None  # --rule specific only
    strict: bool = False  # --rule specific only: remove near matches too
    boilerplate_sample: int | None = None  # --rule specific only
    keep_contaminated: bool = False
    # dedup
    dedup: bool = True
    near_dedup: bool = True
    near_threshold: float = DEFAULT_NEAR_THRESHOLD
    num_perm: int = DEFAULT_NUM_PERM
    shingle: int = DEFAULT_SHINGLE
    embedding_dedup: bool = False
    embedding_model: str | None = None
    embedding_threshold: float = DEFAULT_EMBEDDING_THRESHOLD
    # sampling
    sample: int | None = None
    seed: int = 0
    stratify: list[str] = field(default_factory=lambda: list(STRATA_KEYS))
    length_buckets: list[int] = field(default_factory=lambda: list(DEFAULT_LENGTH_BUCKETS))

    def selection(self) -> Selection:
        # --finish-reason replaces "finish reason must be stop" by its own list of allowed reasons.
        return Selection(require_correct=not self.include_incorrect,
                         require_stop=not self.include_unfinished and not self.finish_reasons,
                         require_complete=not self.include_incomplete, limit=self.limit)

    def as_config(self) -> dict:
        config = asdict(self)
        config["out"] = str(self.out)
        return config

    def _check(self) -> None:
        for low, high, what in ((self.min_chars, self.max_chars, "chars"), (self.min_tokens, self.max_tokens, "tokens"),
                                (self.min_correct, self.max_correct, "correct")):
            if low is not None and high is not None and low > high:
                raise CurateConfigError(f"--min-{what} {low} is above --max-{what} {high}")
        if (self.min_tokens is not None or self.max_tokens is not None) and not self.tokenizer:
            raise CurateConfigError("--min-tokens/--max-tokens need --tokenizer (the model to be trained)")
        if not 0 < self.near_threshold <= 1 or not 0 < self.embedding_threshold <= 1:
            raise CurateConfigError("dedup thresholds must lie in (0, 1]")
        if self.embedding_model and not self.embedding_dedup:
            raise CurateConfigError("--embedding-model needs --embedding-dedup")
        if self.shards < 1:
            raise CurateConfigError("--shards must be at least 1")
        self.decontamination_settings()

    def decontamination_settings(self) -> dict:
        """The decontamination rule's settings with its defaults filled in; options that belong to
        the other rule are refused rather than ignored."""
        if self.rule not in RULES:
            raise CurateConfigError(f"--rule must be one of {', '.join(RULES)}, not {self.rule!r}")
        given = [option for value, option in ((self.ngram, "--ngram"), (self.min_overlap, "--min-overlap"),
                                              (self.min_overlap_ratio, "--min-overlap-ratio"),
                                              (self.strict or None, "--strict"),
                                              (self.boilerplate_sample, "--boilerplate-sample")) if value is not None]
        if given and not self.eval_sets:
            raise CurateConfigError(f"{given[0]} sets up decontamination, which needs --eval-set")
        if self.rule == "ngram":
            for value, option in ((self.min_overlap_ratio, "--min-overlap-ratio"), (self.strict or None, "--strict"),
                                  (self.boilerplate_sample, "--boilerplate-sample")):
                if value is not None:
                    raise CurateConfigError(f"{option} belongs to --rule specific; --rule ngram counts shared "
                                            "n-grams (--ngram, --min-overlap)")
            settings = {"rule": "ngram", "ngram": self.ngram or DEFAULT_NGRAM, "min_overlap": self.min_overlap or 1}
            if settings["min_overlap"] < 1 or settings["ngram"] < 1:
                raise CurateConfigError("--ngram and --min-overlap must be at least 1")
            return settings
        if self.min_overlap is not None:
            raise CurateConfigError("--min-overlap counts shared n-grams of --rule ngram; --rule specific (the "
                                    "default) takes --min-overlap-ratio, the share of the evaluation problem repeated")
        settings = {"rule": "specific", "ngram": self.ngram or DEFAULT_SPECIFIC_NGRAM,
                    "min_overlap_ratio": DEFAULT_MIN_OVERLAP_RATIO if self.min_overlap_ratio is None
                    else self.min_overlap_ratio, "strict": self.strict,
                    "boilerplate_sample": DEFAULT_BOILERPLATE_SAMPLE if self.boilerplate_sample is None
                    else self.boilerplate_sample}
        if settings["ngram"] < 2:
            raise CurateConfigError("--ngram must be at least 2 for --rule specific")
        if not 0 < settings["min_overlap_ratio"] <= 1:
            raise CurateConfigError("--min-overlap-ratio must lie in (0, 1]")
        if settings["boilerplate_sample"] < 0:
            raise CurateConfigError("--boilerplate-sample must be 0 (none) or more")
        return settings

    def build(self, work: Path | None = None) -> CuratePlan:
        """The steps, with their models and evaluation sets loaded (any problem stops the run here);
        the dedup index goes into `work` (a scratch directory of its own when None)."""
        self._check()
        plan = CuratePlan(filters=self._filters())
        if self.eval_sets:
            eval_sets = [load_eval_set(spec, problem_field=self.eval_field, problem_option="--eval-field")
                         for spec in self.eval_sets]
            settings = self.decontamination_settings()
            if settings["rule"] == "ngram":
                plan.decontaminator = NgramRule(eval_sets, n=settings["ngram"], min_overlap=settings["min_overlap"])
            else:
                plan.decontaminator = SpecificRule(eval_sets, n=settings["ngram"],
                                                   min_overlap_ratio=settings["min_overlap_ratio"],
                                                   boilerplate=Boilerplate(), strict=settings["strict"])
                plan.boilerplate_sample = settings["boilerplate_sample"]
        if self.dedup or self.near_dedup:
            plan.index = DedupIndex(work)
        if self.dedup:
            plan.checkers.append(ExactDedup(plan.index))
            plan.exact = True
        if self.near_dedup:
            plan.checkers.append(MinHashDedup(plan.index, self.near_threshold, self.num_perm, self.shingle, seed=1))
            plan.minhash_settings = {"threshold": self.near_threshold, "num_perm": self.num_perm, "ngram": self.shingle}
        if self.embedding_dedup:
            plan.embedding = EmbeddingDedup(self.embedding_model, self.embedding_threshold)
            plan.embedding_settings = {"model": plan.embedding.model_name, "threshold": self.embedding_threshold}
        if self.sample is not None:
            try:
                plan.sampler = StratifiedSampler(self.sample, self.seed, tuple(self.stratify), tuple(self.length_buckets))
            except ValueError as error:
                raise CurateConfigError(str(error)) from None
        return plan

    def _filters(self) -> list[TraceFilter]:
        filters: list[TraceFilter] = []
        if self.min_chars is not None or self.max_chars is not None:
            filters.append(CharLength(self.min_chars, self.max_chars))
        for name, allowed, excluded in (("source", self.sources, self.exclude_sources),
                                        ("problem_type", self.problem_types, self.exclude_problem_types),
                                        ("finish_reason", self.finish_reasons, ())):
            if allowed or excluded:
                filters.append(FieldIn(name, allowed, excluded))
        if self.min_correct is not None or self.max_correct is not None:
            filters.append(CorrectCount(self.min_correct, self.max_correct))
        if self.languages:
            filters.append(Language(self.languages))
        if self.tokenizer and (self.min_tokens is not None or self.max_tokens is not None):
            filters.append(TokenLength(_tokenizer(self.tokenizer), self.min_tokens, self.max_tokens))
        return filters


def _tokenizer(path: str):
    from splitreason.models.tokenizer import load_tokenizer

    return load_tokenizer(path, need_offsets=True)  # a wrong path or hub id: ModelError, one line

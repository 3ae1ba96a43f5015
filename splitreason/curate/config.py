"""A curate run's settings (schemas/curate.py) turned into its steps before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from splitreason.curate.boilerplate import DEFAULT_BOILERPLATE_SAMPLE, Boilerplate
from splitreason.curate.decontaminate import DEFAULT_NGRAM, NgramRule
from splitreason.curate.specific import DEFAULT_MIN_OVERLAP_RATIO, DEFAULT_SPECIFIC_NGRAM, SpecificRule
from splitreason.io.eval_sets import load_eval_set
from splitreason.curate.dedup import EmbeddingDedup, ExactDedup, MinHashDedup
from splitreason.curate.index import DEDUP_INDEX_NAME, DedupIndex
from splitreason.io.environment import environment_errors
from splitreason.curate.filters import CharLength, CorrectCount, FieldIn, Language, TokenLength, TraceFilter
from splitreason.curate.sampling import StratifiedSampler
from splitreason.io.selection import Selection
from splitreason.errors import UsageError
from splitreason.schemas.curate import CurateSettings


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


def selection(settings: CurateSettings) -> Selection:
    """Which generations curate reads, as `annotate` selects them; --finish-reason replaces "finish
    reason must be stop" by its own list of allowed reasons."""
    return Selection(require_correct=not settings.include_incorrect,
                     require_stop=not settings.include_unfinished and not settings.finish_reasons,
                     require_complete=not settings.include_incomplete, limit=settings.limit)


def decontamination_settings(options: CurateSettings) -> dict:
    """The decontamination rule's settings with its defaults filled in; options that belong to
    the other rule are refused rather than ignored."""
    given = [option for value, option in ((options.ngram, "--ngram"), (options.min_overlap, "--min-overlap"),
                                          (options.min_overlap_ratio, "--min-overlap-ratio"),
                                          (options.strict or None, "--strict"),
                                          (options.boilerplate_sample, "--boilerplate-sample")) if value is not None]
    if given and not options.eval_sets:
        raise CurateConfigError(f"{given[0]} sets up decontamination, which needs --eval-set")
    if options.rule == "ngram":
        for value, option in ((options.min_overlap_ratio, "--min-overlap-ratio"), (options.strict or None, "--strict"),
                              (options.boilerplate_sample, "--boilerplate-sample")):
            if value is not None:
                raise CurateConfigError(f"{option} belongs to --rule specific; --rule ngram counts shared "
                                        "n-grams (--ngram, --min-overlap)")
        settings = {"rule": "ngram", "ngram": options.ngram or DEFAULT_NGRAM, "min_overlap": options.min_overlap or 1}
        if settings["min_overlap"] < 1 or settings["ngram"] < 1:
            raise CurateConfigError("--ngram and --min-overlap must be at least 1")
        return settings
    if options.min_overlap is not None:
        raise CurateConfigError("--min-overlap counts shared n-grams of --rule ngram; --rule specific (the "
                                "default) takes --min-overlap-ratio, the share of the evaluation problem repeated")
    settings = {"rule": "specific", "ngram": options.ngram or DEFAULT_SPECIFIC_NGRAM,
                "min_overlap_ratio": DEFAULT_MIN_OVERLAP_RATIO if options.min_overlap_ratio is None
                else options.min_overlap_ratio, "strict": options.strict,
                "boilerplate_sample": DEFAULT_BOILERPLATE_SAMPLE if options.boilerplate_sample is None
                else options.boilerplate_sample}
    if settings["ngram"] < 2:
        raise CurateConfigError("--ngram must be at least 2 for --rule specific")
    if not 0 < settings["min_overlap_ratio"] <= 1:
        raise CurateConfigError("--min-overlap-ratio must lie in (0, 1]")
    if settings["boilerplate_sample"] < 0:
        raise CurateConfigError("--boilerplate-sample must be 0 (none) or more")
    return settings


def ngram_rule_note(options: CurateSettings, rule_chosen: bool) -> str | None:
    """One line when --ngram is given without --rule (on the command line or in --config): which rule
    it sets. Before --rule existed, --ngram was the size of the only rule's n-grams (any shared 8-gram
    removed a problem); now the default rule reads it as its own n-gram size, so an old `--ngram 8`
    script runs with another meaning. Said, not refused: `--ngram 6` for the default rule is a
    choice of its own, and a refusal would break every script that makes it."""
    if options.ngram is None or rule_chosen or not options.eval_sets:
        return None
    return (f"--ngram {options.ngram} sets the n-gram size of --rule {options.rule.value} (the default rule: the "
            "share of an evaluation problem's specific words repeated); open-r1's rule, any shared word n-gram, "
            "is --rule ngram")


def build_plan(options: CurateSettings, work: Path | None = None) -> CuratePlan:
    """The steps, with their models and evaluation sets loaded (any problem stops the run here);
    the dedup index goes into `work` (a scratch directory of its own when None)."""
    decontamination_settings(options)  # options of the other rule are refused before anything loads
    plan = CuratePlan(filters=_filters(options))
    if options.eval_sets:
        eval_sets = [load_eval_set(spec, problem_field=options.eval_field, problem_option="--eval-field")
                     for spec in options.eval_sets]
        settings = decontamination_settings(options)
        if settings["rule"] == "ngram":
            plan.decontaminator = NgramRule(eval_sets, n=settings["ngram"], min_overlap=settings["min_overlap"])
        else:
            plan.decontaminator = SpecificRule(eval_sets, n=settings["ngram"],
                                               min_overlap_ratio=settings["min_overlap_ratio"],
                                               boilerplate=Boilerplate(), strict=settings["strict"])
            plan.boilerplate_sample = settings["boilerplate_sample"]
    if options.dedup or options.near_dedup:
        # SQLite's errors name no file: the one line must say which database could not be made.
        with environment_errors("nothing was written", path=work / DEDUP_INDEX_NAME):
            plan.index = DedupIndex(work)
    if options.dedup:
        plan.checkers.append(ExactDedup(plan.index))
        plan.exact = True
    if options.near_dedup:
        plan.checkers.append(MinHashDedup(plan.index, options.near_threshold, options.num_perm, options.shingle, seed=1))
        plan.minhash_settings = {"threshold": options.near_threshold, "num_perm": options.num_perm, "ngram": options.shingle}
    if options.embedding_dedup:
        plan.embedding = EmbeddingDedup(options.embedding_model, options.embedding_threshold)
        plan.embedding_settings = {"model": plan.embedding.model_name, "threshold": options.embedding_threshold}
    if options.sample is not None:
        try:
            plan.sampler = StratifiedSampler(options.sample, options.seed, tuple(key.value for key in options.stratify), tuple(options.length_buckets))
        except ValueError as error:
            raise CurateConfigError(str(error)) from None
    return plan

def _filters(options: CurateSettings) -> list[TraceFilter]:
    filters: list[TraceFilter] = []
    if options.min_chars is not None or options.max_chars is not None:
        filters.append(CharLength(options.min_chars, options.max_chars))
    for name, allowed, excluded in (("source", options.sources, options.exclude_sources),
                                    ("problem_type", options.problem_types, options.exclude_problem_types),
                                    ("finish_reason", options.finish_reasons, ())):
        if allowed or excluded:
            filters.append(FieldIn(name, allowed, excluded))
    if options.min_correct is not None or options.max_correct is not None:
        filters.append(CorrectCount(options.min_correct, options.max_correct))
    if options.languages:
        filters.append(Language(options.languages))
    if options.tokenizer and (options.min_tokens is not None or options.max_tokens is not None):
        filters.append(TokenLength(_tokenizer(options.tokenizer), options.min_tokens, options.max_tokens))
    return filters


def _tokenizer(path: str):
    from splitreason.models.tokenizer import load_tokenizer

    return load_tokenizer(path, need_offsets=True)  # a wrong path or hub id: ModelError, one line

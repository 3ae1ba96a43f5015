"""The curation summary (CURATED/curate.json, written by `splitreason curate`) as the report reads it.

Only the fields below are used; other keys are ignored, so a newer curate.json still reads. The
report finds it from `--curation DIR`, else from the run's input (run.json config.input) when that
directory holds a curate.json; without one the report says there is no curation data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from splitreason.errors import UsageError

CURATE_FILE = "curate.json"


class CurationError(UsageError, ValueError):
    """A curate.json cannot be read; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Counts(_Model):
    rows_read: int
    input_rejects: int
    traces_in: int
    kept: int
    excluded: int


class Step(_Model):
    step: str  # select, filter, decontaminate, dedup, sample
    in_: int = Field(alias="in")  # "in" is a Python keyword
    out: int
    excluded: dict[str, int] = {}


class ExactDedup(_Model):
    clusters: int
    removed_problems: int
    removed_traces: int


class MinhashDedup(ExactDedup):
    threshold: float
    num_perm: int
    ngram: int


class EmbeddingDedup(ExactDedup):
    model: str
    threshold: float


class Cluster(_Model):
    kind: Literal["exact", "minhash", "embedding"]
    kept: str
    size: int
    example: str


class Dedup(_Model):
    exact: ExactDedup
    minhash: MinhashDedup | None = None
    embedding: EmbeddingDedup | None = None
    largest_clusters: list[Cluster] = []


class EvalSet(_Model):
    name: str
    source: str
    problems: int
    too_short: int = 0  # problems too short for n-grams, matched whole only


class EvalSetResult(_Model):
    matched_problems: int
    removed_traces: int
    near_matches: int = 0


class RuleCount(_Model):
    problems: int
    removed_traces: int


class NearMatches(_Model):
    problems: int
    kept: int


class BoilerplateNgram(_Model):
    ngram: str
    eval_df: int
    corpus_df: int


class Boilerplate(_Model):
    eval_df: int  # evaluation wordings that make an n-gram stock phrasing
    corpus_df: int  # sampled corpus problems that do
    corpus_sampled: int
    corpus_variants_skipped: int = 0
    eval_ngrams: int
    boilerplate_ngrams: int
    most_frequent: list[BoilerplateNgram] = []


class ContaminationExample(_Model):
    uuid: str
    problem: str
    eval_set: str
    eval_id: str
    eval_problem: str
    verdict: str = "contaminated"
    rule: str = "ngram"  # curate.json files older than the specific rule hold n-gram matches
    score: float = 0.0
    ngrams: list[str] = []
    boilerplate: list[BoilerplateNgram] = []
    missing_numbers: list[str] = []


class Decontamination(_Model):
    rule: str = "ngram"
    ngram: int
    min_overlap: int | None = None
    min_overlap_ratio: float | None = None
    strict: bool = False
    drop: bool
    eval_sets: list[EvalSet] = []
    boilerplate: Boilerplate | None = None
    matched_problems: int
    removed_traces: int
    by_rule: dict[str, RuleCount] = {}
    near_matches: NearMatches | None = None
    kept_with_overlap: dict[str, int] = {}
    by_eval_set: dict[str, EvalSetResult] = {}
    examples: list[ContaminationExample] = []
    near_match_examples: list[ContaminationExample] = []
    warnings: list[str] = []  # e.g. a corpus sample too thin to tell stock phrasing


class Stratum(_Model):
    key: dict[str, str]
    available: int
    taken: int


class Sampling(_Model):
    target: int
    seed: int
    by: list[str] = []
    strata: list[Stratum] = []


class CurationSummary(_Model):
    format: Literal["splitreason-curate"]
    format_version: int
    input: str
    seed: int
    counts: Counts
    steps: list[Step] = []
    dedup: Dedup
    decontamination: Decontamination | None = None
    sampling: Sampling | None = None


def read_curation(directory: Path) -> CurationSummary:
    path = directory / CURATE_FILE
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CurationError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        data = json.loads(raw)
        return CurationSummary.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CurationError(f"{path} is not valid JSON: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise CurationError(f"{path} is not a splitreason curate summary: {where}: {first['msg']}") from error


def find_curation(run_config: dict, explicit: Path | None) -> tuple[Path | None, CurationSummary | None]:
    """The curation directory and its summary: --curation DIR (must hold curate.json), else the
    run's input directory when it holds one, else (None, None)."""
    if explicit is not None:
        if not (explicit / CURATE_FILE).is_file():
            raise CurationError(f"--curation {explicit} holds no {CURATE_FILE}; give the output directory "
                                "of `splitreason curate`")
        return explicit, read_curation(explicit)
    from splitreason.tables.run import find_curation_dir  # the rule load_run's exclusions follow too

    candidate = find_curation_dir(run_config)
    return (candidate, read_curation(candidate)) if candidate is not None else (None, None)

"""A decontamination decision explained: one line of contamination.jsonl, written by `splitreason curate`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ContaminationVerdict = Literal["contaminated", "near_match", "clean"]
ContaminationRule = Literal["exact", "contains", "overlap", "near_match", "below_threshold", "boilerplate_only",
                            "ngram"]


class BoilerplateNgram(BaseModel):
    """A shared n-gram that did not count: stock phrasing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ngram: str = Field(description="The n-gram (words, numbers written #).")
    eval_df: int = Field(description="Evaluation problems (different wordings) holding it.")
    corpus_df: int = Field(description="Problems of the corpus sample holding it (copies of evaluation problems "
                                       "not counted).")


class ContaminationPair(BaseModel):
    """A training problem against one evaluation problem it shares n-grams with: the verdict and why.

    Every training problem that shares an n-gram with an evaluation problem has lines here: one per
    evaluation problem it is contaminated by or a near match of (at most five, strongest first), or,
    when it was kept, one with the evaluation problem it came closest to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uuid: str = Field(description="The training problem's record uuid.")
    problem: str = Field(description="The training problem (first 1,000 characters).")
    eval_set: str = Field(description="Name of the evaluation set.")
    eval_id: str = Field(description="Id of the evaluation problem in its set.")
    eval_problem: str = Field(description="The evaluation problem (first 1,000 characters).")
    verdict: ContaminationVerdict = Field(description="contaminated (a leak), near_match (the same wording with "
                                                      "other numbers: another problem), clean (kept).")
    rule: ContaminationRule = Field(description="Which rule decided: exact, contains, overlap, near_match; "
                                                "below_threshold or boilerplate_only when kept; ngram for --rule ngram.")
    dropped: bool = Field(description="Whether the problem's traces were removed for it.")
    score: float = Field(description="--rule specific: share of the evaluation problem's specific words the "
                                     "problem repeats; --rule ngram: shared n-grams.")
    threshold: float = Field(description="The score that makes a match (--min-overlap-ratio or --min-overlap).")
    ngrams: list[str] = Field(description="Shared n-grams that counted (at most ten).")
    ngrams_shared: int = Field(description="How many shared n-grams counted.")
    boilerplate: list[BoilerplateNgram] = Field(default_factory=list,
                                                description="Shared n-grams that did not count (at most ten).")
    boilerplate_shared: int = Field(default=0, description="How many shared n-grams were stock phrasing.")
    eval_numbers: list[str] = Field(default_factory=list, description="The evaluation problem's numbers.")
    missing_numbers: list[str] = Field(default_factory=list,
                                       description="Numbers of the evaluation problem the problem does not have.")
    candidates: int = Field(description="Evaluation problems scored against the problem (those sharing a specific "
                                        "n-gram with it; 1 when it shares only stock phrasing).")

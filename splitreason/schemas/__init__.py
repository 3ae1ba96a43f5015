"""Pydantic records, one per pipeline stage: trace in, annotation out, export row."""

from splitreason.schemas.annotation import (
    Annotation,
    HallucinatedExcerpt,
    JudgeInfo,
    SampleSummary,
    Span,
    Status,
    Usage,
)
from splitreason.schemas.exclusion import Exclusion
from splitreason.schemas.reject import Reject
from splitreason.schemas.trace import Trace

__all__ = ["Annotation", "Exclusion", "HallucinatedExcerpt", "JudgeInfo", "Reject", "SampleSummary", "Span", "Status", "Trace", "Usage"]

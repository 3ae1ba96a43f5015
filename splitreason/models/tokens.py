"""Token counting for the data a model will be trained on: a trace's tokens and how many of them
fall inside its spans. Used by export and report (the offload share in tokens) and by curate's
token-length filter (through the same tokenizer loader). Needs transformers, not torch.
"""

from __future__ import annotations

from splitreason.models.tokenizer import load_tokenizer
from splitreason.schemas import Annotation


class TokenCounter:
    """Counts a trace's tokens and how many of them fall inside spans, for the model to be trained."""

    def __init__(self, tokenizer_path: str):
        # A fast tokenizer: a token is inside a span by its character offsets.
        self.tokenizer = load_tokenizer(tokenizer_path, need_offsets=True)

    def count(self, annotation: Annotation, spans=None) -> tuple[int, int]:
        encoding = self.tokenizer(annotation.trace, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoding["offset_mapping"]
        inside = 0
        spans = annotation.spans if spans is None else spans
        index = 0
        for start, end in offsets:
            middle = (start + end) / 2
            while index < len(spans) and spans[index].end <= start:
                index += 1
            if index < len(spans) and spans[index].start <= middle < spans[index].end:
                inside += 1
        return inside, len(offsets)

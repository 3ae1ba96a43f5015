"""Step 2 of `train sft`: the tokenizer with the tags, the chat template, and every row as ids
with labels (the prompt ignored, the reply learned: reasoning, both tags, end of turn).

Rows longer than --max-length are dropped and counted (or cut with --truncate), never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from splitreason.io.export_reader import LocatedRow
from splitreason.schemas.training import SFTSettings

__all__ = ["EncodedSplit", "encode_split", "prepare_tokenizer", "tag_token_share", "to_dataset"]


@dataclass
class EncodedSplit:
    rows: list[LocatedRow] = field(default_factory=list)
    encoded: list = field(default_factory=list)  # models.chat.EncodedRow, one per row
    too_long: list[tuple[LocatedRow, int]] = field(default_factory=list)
    truncated: int = 0


def prepare_tokenizer(settings: SFTSettings):
    """(tokenizer, chat template, tag tokens): with --tags special both tags become single added
    tokens (not special: decoding with skip_special_tokens keeps them); the chosen template is
    set on the tokenizer, so that it is saved with it."""
    from splitreason.models.chat import choose_chat_template
    from splitreason.models.tags import add_tag_tokens, tag_tokens
    from splitreason.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(settings.model, need_offsets=True, what="model's tokenizer")
    tags = add_tag_tokens(tokenizer) if settings.tags == "special" else tag_tokens(tokenizer)
    template = choose_chat_template(tokenizer, settings.chat_template)
    tokenizer.chat_template = template.text
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, template, tags


def encode_split(tokenizer, template, rows: Sequence[LocatedRow], *, max_length: int, truncate: bool) -> EncodedSplit:
    from splitreason.models.chat import encode_row

    split = EncodedSplit()
    for located in rows:
        row = located.row
        encoded = encode_row(tokenizer, template, row.prompt, row.completion, row.spans())
        if len(encoded.ids) > max_length:
            if not truncate or encoded.prompt_len >= max_length:
                split.too_long.append((located, len(encoded.ids)))
                continue
            encoded = encoded.truncated(max_length)
            split.truncated += 1
        split.rows.append(located)
        split.encoded.append(encoded)
    return split


def tag_token_share(encoded: Sequence) -> float | None:
    """Share of the learned reply tokens that lie inside tags (the tags themselves not counted)."""
    inside = sum(span.close_at - span.start for row in encoded for span in row.spans)
    tags = sum((span.start - span.open_at) + (span.after - span.close_at) for row in encoded for span in row.spans)
    total = sum(row.learned_end - row.prompt_len for row in encoded) - tags
    return inside / total if total > 0 else None


def to_dataset(encoded: Sequence):
    """A `datasets.Dataset` TRL takes as already tokenized: `input_ids` and `labels` (-100 on the prompt)."""
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": [row.ids for row in encoded], "labels": [row.labels() for row in encoded]})

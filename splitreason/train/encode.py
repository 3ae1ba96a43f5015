"""Step 2 of `train sft`: the tokenizer with the tags, the chat template, and every row as ids
with labels (the prompt ignored, the reply learned: reasoning, both tags, end of turn).

Rows longer than --max-length are dropped and counted (or cut with --truncate), never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from splitreason.io.export_reader import LocatedRow
from splitreason.schemas.training import SFTSettings

__all__ = ["EncodedSplit", "encode_split", "prepare_tokenizer", "to_dataset"]

_ROWS_PER_BATCH = 256


@dataclass
class EncodedSplit:
    """A split as the trainer reads it: an Arrow file of `input_ids` and `labels` (memory-mapped,
    so a 100k-row export does not sit in every process's memory as Python lists), the rows kept,
    the rows too long, and the token counts of the tag share."""

    path: Path
    rows: list[LocatedRow] = field(default_factory=list)
    too_long: list[tuple[LocatedRow, int]] = field(default_factory=list)
    truncated: int = 0
    reply_tokens: int = 0   # learned reply tokens, the tags not counted
    inside_tokens: int = 0  # of those, inside tags

    @property
    def tag_token_share(self) -> float | None:
        return self.inside_tokens / self.reply_tokens if self.reply_tokens > 0 else None


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


def encode_split(tokenizer, template, rows: Sequence[LocatedRow], *, max_length: int, truncate: bool,
                 path: Path) -> EncodedSplit:
    """Encode `rows` into the Arrow file `path`, dropping (or, with `truncate`, cutting) the rows
    longer than `max_length` tokens."""
    import pyarrow as pa

    from splitreason.models.chat import encode_row

    split = EncodedSplit(Path(path))
    ids_type = pa.list_(pa.int32())
    schema = pa.schema([("input_ids", ids_type), ("labels", ids_type)])
    batch: list[tuple[list[int], list[int]]] = []

    def flush(writer) -> None:
        writer.write_batch(pa.record_batch([pa.array([b[0] for b in batch], ids_type),
                                            pa.array([b[1] for b in batch], ids_type)], schema=schema))
        batch.clear()

    split.path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(split.path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
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
            tags = sum((s.start - s.open_at) + (s.after - s.close_at) for s in encoded.spans)
            split.reply_tokens += encoded.learned_end - encoded.prompt_len - tags
            split.inside_tokens += sum(s.close_at - s.start for s in encoded.spans)
            batch.append((encoded.ids, encoded.labels()))
            if len(batch) >= _ROWS_PER_BATCH:
                flush(writer)
        if batch:
            flush(writer)
    return split


def to_dataset(split: EncodedSplit):
    """The split as a `datasets.Dataset` TRL takes as already tokenized (memory-mapped), or None
    when it holds no rows."""
    if not split.rows:
        return None
    from datasets import Dataset

    return Dataset.from_file(str(split.path))

"""The offload tags in a model's vocabulary.

`--tags special` (the default everywhere): `<bigmodel>` and `</bigmodel>` are two added tokens,
each encoded as exactly one id, and NOT marked special, so that decoding with
`skip_special_tokens=True` (as vLLM and TRL do) keeps them in the text. The model's embedding
rows for them (input and output, tied or not) start as the mean of the existing rows.

`--tags text`: the tags stay plain text, several tokens each (the paper's released models); a
tag is then recognised by its token sequence, and its first token is what a one-pass check
screens on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.models import ModelError

__all__ = ["TagMode", "TagTokens", "add_tag_tokens", "init_new_rows_to_mean", "tag_tokens"]

TagMode = Literal["special", "text"]


@dataclass(frozen=True)
class TagTokens:
    """How a tokenizer writes the two tags: their token ids (one each when `single`)."""

    open_ids: tuple[int, ...]
    close_ids: tuple[int, ...]

    @property
    def single(self) -> bool:
        return len(self.open_ids) == 1 and len(self.close_ids) == 1

    @property
    def mode(self) -> TagMode:
        return "special" if self.single else "text"

    @property
    def open_id(self) -> int:
        """The tag's only token, or its first when the tag is text."""
        return self.open_ids[0]

    @property
    def close_id(self) -> int:
        return self.close_ids[0]

    @property
    def all_ids(self) -> set[int]:
        """Every id either tag is written with."""
        return {*self.open_ids, *self.close_ids}


def tag_tokens(tokenizer) -> TagTokens:
    """The ids the tokenizer gives each tag (in the middle of text, as the model writes them)."""
    def ids(tag: str) -> tuple[int, ...]:
        # Encoded after a word, so a byte-level BPE's leading-space variants do not apply.
        with_prefix = tokenizer.encode("x" + tag, add_special_tokens=False)
        alone = tokenizer.encode("x", add_special_tokens=False)
        if with_prefix[: len(alone)] != alone:
            return tuple(tokenizer.encode(tag, add_special_tokens=False))
        return tuple(with_prefix[len(alone):])

    found = TagTokens(open_ids=ids(OPEN_TAG), close_ids=ids(CLOSE_TAG))
    if not found.open_ids or not found.close_ids:
        raise ModelError("the tokenizer encodes an offload tag as no tokens at all")
    return found


def add_tag_tokens(tokenizer, model=None) -> TagTokens:
    """Make both tags single tokens (added, not special) and give `model` rows for them.

    Idempotent: a tokenizer that already has them (a model trained by `train sft`) is unchanged.
    """
    from tokenizers import AddedToken

    existing = tag_tokens(tokenizer)
    if not existing.single:
        tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False, single_word=False,
                                         lstrip=False, rstrip=False) for tag in (OPEN_TAG, CLOSE_TAG)])
        existing = tag_tokens(tokenizer)
        if not existing.single:
            raise ModelError(f"the tokenizer still splits the tags after adding them ({existing})")
    if model is not None:
        old_rows = model.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > old_rows:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            init_new_rows_to_mean(model, old_rows)
    skipped = tokenizer.decode([existing.open_id, existing.close_id], skip_special_tokens=True)
    if OPEN_TAG not in skipped or CLOSE_TAG not in skipped:
        raise ModelError("the tokenizer drops the tags when decoding with skip_special_tokens=True; "
                         "they must be added as non-special tokens")
    return existing


def init_new_rows_to_mean(model, old_rows: int) -> None:
    """Set embedding rows `old_rows:` (input and, when untied, output) to the mean of the old rows."""
    import torch

    with torch.no_grad():
        matrices = [model.get_input_embeddings().weight]
        output = model.get_output_embeddings()
        if output is not None and output.weight.data_ptr() != matrices[0].data_ptr():
            matrices.append(output.weight)
        for weight in matrices:
            weight[old_rows:] = weight[:old_rows].mean(dim=0, keepdim=True).to(weight.dtype)
        bias = getattr(output, "bias", None)
        if bias is not None and bias.shape[0] > old_rows:
            bias[old_rows:] = bias[:old_rows].mean()

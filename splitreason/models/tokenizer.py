"""One tokenizer loader for every command (export's token counts, curate's token filter, the
trainer, the evaluators, the model-grounded judges). Needs transformers, not torch."""

from __future__ import annotations

import os
from pathlib import Path

from splitreason.errors import one_line
from splitreason.io.hub import require_hub_for_model
from splitreason.models import ModelError, ModelExtraMissing

__all__ = ["load_tokenizer", "looks_local"]


def looks_local(name_or_path: str) -> bool:
    """A path rather than a hub id: it exists, or it is written like a path (a hub id is `org/name`)."""
    return (Path(name_or_path).exists() or name_or_path.startswith((".", "/", "~"))
            or name_or_path.count("/") > 1 or os.sep != "/" and os.sep in name_or_path)


def load_tokenizer(name_or_path: str | os.PathLike, *, need_offsets: bool = False, what: str = "tokenizer"):
    """A Hugging Face tokenizer from a local directory or a hub id, or one `ModelError` line.

    A directory holding a `tokenizer.json` is loaded with `AutoTokenizer` when its
    tokenizer_config names a class, else as `PreTrainedTokenizerFast` (a bare trained tokenizer
    beside a config.json would otherwise be taken for the model family's own class).
    `need_offsets`: the tokenizer must be a fast one (character offsets of every token).
    """
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        raise ModelExtraMissing(f"loading a {what} needs transformers: pip install 'splitreason[tokenize]'")
    name = str(name_or_path)
    path = Path(name).expanduser()
    if looks_local(name) and not path.exists():
        raise ModelError(f"cannot load {what} {name}: it does not exist")
    if not path.exists():
        require_hub_for_model(name, what)
    # transformers (and torch under it) take seconds to import: only once the model can be had
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        if path.is_dir() and (path / "tokenizer.json").is_file() and not _names_class(path):
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path))
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(path) if path.exists() else name)
    except (OSError, ValueError, KeyError, TypeError) as error:
        detail = one_line(error)
        raise ModelError(f"cannot load {what} {name}: {detail}") from None
    if need_offsets and not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{what} {name} has no fast version; character offsets are needed")
    return tokenizer


def _names_class(path: Path) -> bool:
    import json

    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(config.get("tokenizer_class")) and config.get("tokenizer_class") != "TokenizersBackend"

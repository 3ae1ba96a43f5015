"""Model code every stage may use: loading a tokenizer or a causal LM, the offload tags as
tokens, and teacher-forced scoring (one forward pass over a known text).

It sits low in the layers (beside `io`), so the trainer, the evaluators and the model-grounded
judges share one loader and one scorer. Nothing here imports torch or transformers at import time:
`tokenizer` needs transformers only, `loading`, `tags` and `scoring` need torch (extra [train]).
"""

from __future__ import annotations

from splitreason.errors import ServiceUnavailable, UsageError

__all__ = ["ModelError", "ModelExtraMissing"]


class ModelError(UsageError, ValueError):
    """A model or tokenizer cannot be used as given (no such path, not a causal LM, no fast tokenizer)."""


class ModelExtraMissing(ServiceUnavailable):
    """The packages a model needs are not installed; the message names the extra to install."""

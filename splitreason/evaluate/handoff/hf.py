"""The transformers backend: each model keeps its past key values for the whole trace and is fed
only the tokens it has not read; when the rest of a chunk is dropped, its cache is cropped back.

    runner = HFRunner(model, tokenizer)              # a live model object (GRPO's policy) ...
    runner = HFRunner.load("path/to/model")          # ... or one loaded from a path or hub id

Batch size 1, no padding: one trace at a time, which is what the close check's positions need.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from splitreason.evaluate.handoff.backend import Generation, PositionView
from splitreason.evaluate.handoff.types import Sampling

__all__ = ["HFRunner", "HFSession"]


class HFRunner:
    """One causal LM (any `transformers` model, peft-wrapped included) and its tokenizer.

    A live training model works as it is; put it in eval mode for rollouts (dropout off). In
    training mode with gradient checkpointing transformers returns no cache: each step then reads
    the whole context again (correct, slower)."""

    def __init__(self, model: Any, tokenizer: Any):
        self.model = model
        self.tokenizer = tokenizer
        eos = set()
        for source in (getattr(tokenizer, "eos_token_id", None),
                       getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, (list, tuple)):
                eos.update(int(value) for value in source)
        self.eos_ids = frozenset(eos)
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])

    @classmethod
    def load(cls, name_or_path: str, *, device: str = "auto", dtype: str = "auto", what: str = "model") -> HFRunner:
        from splitreason.models.loading import load_causal_lm
        from splitreason.models.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(name_or_path, what=f"{what}'s tokenizer")
        return cls(load_causal_lm(name_or_path, device=device, dtype=dtype, what=what), tokenizer)

    def session(self, seed: int) -> HFSession:
        return HFSession(self.model, seed, self.eos_ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)


class HFSession:
    """One model's cache over one trace. `fed` is what the cache holds; `last_logits` the
    prediction after its last token."""

    def __init__(self, model: Any, seed: int, eos_ids: Collection[int] = ()):
        import torch

        self.model = model
        self.eos_ids = frozenset(eos_ids)
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed) % (2**63))
        self.cache: Any = None
        self.cache_argument = _cache_argument(model)
        self.fed: list[int] = []
        self.last_logits = None
        self.forward_passes = 0
        self.cropped_tokens = 0  # cached tokens dropped because the context no longer holds them

    def _logits_after(self, context: Sequence[int], start: int):
        """Logits predicting the token after each of context[start:], from one forward pass (or
        none, when the cache already ends with exactly that one prediction)."""
        import torch

        context = list(context)
        if start >= len(context) or start < 0:
            raise ValueError("start must index the context")
        common = 0
        for mine, theirs in zip(self.fed, context):
            if mine != theirs:
                break
            common += 1
        if common == len(self.fed) == len(context) and start == len(context) - 1 and self.last_logits is not None:
            return self.last_logits.unsqueeze(0)
        feed_from = min(common, start)
        if self.cache is not None and feed_from < len(self.fed):
            self.cropped_tokens += len(self.fed) - feed_from
            self.cache.crop(feed_from - len(self.fed))  # negative: tokens removed from the end
        if self.cache is None:
            feed_from = 0
        with torch.no_grad():
            ids = torch.tensor([context[feed_from:]], dtype=torch.long, device=self.device)
            output = self.model(input_ids=ids, use_cache=True, **{self.cache_argument: self.cache})
        self.forward_passes += 1
        self.cache = getattr(output, "cache", None) or getattr(output, "past_key_values", None)
        # no cache back (a model in training mode with gradient checkpointing turns it off): the next
        # call must read the whole context again, or the model would see only the new tokens
        self.fed = context if self.cache is not None else []
        logits = output.logits[0].float()
        self.last_logits = logits[-1]
        return logits[start - feed_from:]

    def generate(self, context: Sequence[int], *, max_new_tokens: int, sampling: Sampling,
                 stop_sequences: Sequence[Sequence[int]] = (), banned_ids: Collection[int] = ()) -> Generation:
        written: list[int] = []
        stops = [list(stop) for stop in stop_sequences if stop]
        banned = [token for token in banned_ids if 0 <= token]
        while len(written) < max_new_tokens:
            logits = self._logits_after([*context, *written], len(context) + len(written) - 1)[-1]
            token = self._pick(logits, sampling, banned)
            if token in self.eos_ids:
                return Generation(written, "eos", token)
            written.append(token)
            if any(written[-len(stop):] == stop for stop in stops):
                return Generation(written, "stop")
        return Generation(written, "length")

    def _pick(self, logits, sampling: Sampling, banned: list[int]) -> int:
        import torch

        if banned:
            logits = logits.clone()
            logits[[token for token in banned if token < logits.shape[0]]] = float("-inf")
        if sampling.temperature == 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / sampling.temperature, dim=-1).cpu()
        if sampling.top_p < 1:
            sorted_probs, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_probs, dim=0) - sorted_probs < sampling.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def next_token_views(self, context: Sequence[int], start: int, watch: Collection[int]) -> list[PositionView]:
        import torch

        logits = self._logits_after(context, start)
        probs = torch.softmax(logits, dim=-1)
        greedy = torch.argmax(logits, dim=-1).tolist()
        watched = [token for token in watch if 0 <= token < logits.shape[-1]]
        columns = probs[:, watched].tolist() if watched else [[] for _ in greedy]
        return [PositionView(int(best), dict(zip(watched, row))) for best, row in zip(greedy, columns)]

    def close(self) -> None:
        self.cache = None
        self.fed = []
        self.last_logits = None


def _cache_argument(model: Any) -> str:
    """`cache` (transformers >= 5.2x) or `past_key_values` (before; still accepted with a warning)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wraps the model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

"""The pair as the run uses it, whatever the backend: prompts as ids, one trace per call.

Tokenizers are loaded and checked before OUT is claimed (a vocabulary mismatch is one line and
nothing is written); the models themselves load on the first trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from splitreason.errors import UsageError
from splitreason.evaluate.handoff import TagIds, check_shared_vocabulary, run_trace, tag_ids_of
from splitreason.evaluate.offload.prompts import PromptBuilder
from splitreason.schemas.evaluate_offload import EvaluateOffloadSettings

__all__ = ["OffloadPair", "open_pair"]


class BackendUnavailable(UsageError):
    """The backend asked for is not available here."""


class OffloadPair:
    def __init__(self, settings: EvaluateOffloadSettings, small_tokenizer, large_tokenizer, runners):
        from splitreason.evaluate.offload.run import handoff_settings

        self.settings = settings
        self.handoff = handoff_settings(settings)
        self.small_prompt = PromptBuilder.for_small(small_tokenizer, settings.small, settings.instruction) \
            if small_tokenizer is not None else None
        self.large_prompt = PromptBuilder.for_large(large_tokenizer) if large_tokenizer is not None else None
        self.tags: TagIds = tag_ids_of(small_tokenizer if small_tokenizer is not None else large_tokenizer)
        self._runners = runners  # name -> callable that loads the runner
        self._loaded: dict[str, Any] = {}

    def runner(self, name: str):
        if name not in self._runners:
            return None
        if name not in self._loaded:
            self._loaded[name] = self._runners[name]()
        return self._loaded[name]

    def load(self) -> None:
        for name in self._runners:
            self.runner(name)

    def small_prompt_ids(self, problem: str) -> list[int]:
        assert self.small_prompt is not None
        return self.small_prompt.ids(problem)

    def large_prompt_ids(self, problem: str) -> list[int]:
        assert self.large_prompt is not None
        return self.large_prompt.ids(problem)

    def run(self, mode: str, small_ids: list[int], large_ids: list[int], *, seed: int, random_plan=None):
        return run_trace(self.runner("small") if mode != "large" else None,
                         self.runner("large") if mode != "small" else None,
                         small_prompt_ids=small_ids, large_prompt_ids=large_ids, tags=self.tags,
                         settings=self.handoff, mode=mode, seed=seed, random_plan=random_plan)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the prompts and tags."""
        return {
            "small_template_source": self.small_prompt.template_source if self.small_prompt else None,
            "small_template": self.small_prompt.template if self.small_prompt else None,
            "instruction": self.small_prompt.instruction if self.small_prompt else None,
            "large_template_source": self.large_prompt.template_source if self.large_prompt else None,
            "large_template": self.large_prompt.template if self.large_prompt else None,
            "tags": "special" if self.tags.single else "text",
            "open_ids": list(self.tags.open_ids), "close_ids": list(self.tags.close_ids),
        }

    def close(self) -> None:
        for runner in self._loaded.values():
            close = getattr(runner, "close", None)
            if close is not None:
                close()
        self._loaded.clear()


@contextmanager
def open_pair(settings: EvaluateOffloadSettings) -> Iterator[OffloadPair]:
    """The pair for `settings.backend`; closed (engines and servers' clients stopped) on exit."""
    with ExitStack() as stack:
        yield from _open_pair(settings, stack)


def _open_pair(settings: EvaluateOffloadSettings, stack: ExitStack) -> Iterator[OffloadPair]:
    from splitreason.models.tokenizer import load_tokenizer

    needs_small = bool(set(settings.modes) & {"learned", "small", "random"})
    needs_large = bool(set(settings.modes) & {"learned", "large", "random"})
    small_tokenizer = load_tokenizer(settings.small, what="small model's tokenizer") if needs_small else None
    large_tokenizer = load_tokenizer(settings.large, what="large model's tokenizer") if needs_large else None
    if small_tokenizer is not None and large_tokenizer is not None:
        check_shared_vocabulary(small_tokenizer, large_tokenizer, small_name=f"small model ({settings.small})",
                                large_name=f"large model ({settings.large})", large_rows=_embedding_rows(settings.large))
    runners = {}
    if settings.backend == "hf":
        from splitreason.evaluate.handoff.hf import HFRunner

        def hf(path: str, what: str):
            return lambda: HFRunner(_load_model(path, settings, what), small_tokenizer if what == "small model"
                                    else large_tokenizer)

        if needs_small:
            runners["small"] = hf(settings.small, "small model")
        if needs_large:
            runners["large"] = hf(settings.large, "large model")
    elif settings.backend in ("openai", "vllm"):
        from splitreason.evaluate.handoff.openai_server import OpenAIServerRunner

        urls = {"small": settings.small_url, "large": settings.large_url}
        if settings.backend == "vllm":
            from splitreason.evaluate.handoff.vllm_servers import vllm_server

            paths = {"small": settings.small, "large": settings.large}
            for role in [role for role, needed in (("small", needs_small), ("large", needs_large)) if needed]:
                same = [other for other, url in urls.items() if url and paths[other] == paths[role]]
                urls[role] = urls[same[0]] if same else stack.enter_context(vllm_server(
                    paths[role], role=role, dtype=settings.dtype, max_model_len=settings.vllm_max_model_len,
                    gpu_share=settings.small_gpu_share if role == "small" else settings.large_gpu_share,
                    tensor_parallel=settings.large_tensor_parallel if role == "large" else 1))
        elif needs_small and not settings.small_url or needs_large and not settings.large_url:
            raise BackendUnavailable("the openai backend needs --small-url and --large-url for these modes")
        # reached before OUT is claimed: an unreachable server is one line and nothing is written
        servers = {}
        if needs_small:
            servers["small"] = OpenAIServerRunner(urls["small"], small_tokenizer, what="small model",
                                                  close_threshold=settings.close_threshold)
        if needs_large:
            servers["large"] = OpenAIServerRunner(urls["large"], large_tokenizer, what="large model")
        runners = {name: (lambda server=server: server) for name, server in servers.items()}
        tags = tag_ids_of(small_tokenizer if small_tokenizer is not None else large_tokenizer)
        if not tags.single:
            raise BackendUnavailable("the openai backend needs tags that are single tokens; use --backend hf")
    pair = OffloadPair(settings, small_tokenizer, large_tokenizer, runners)
    try:
        yield pair
    finally:
        pair.close()


def _embedding_rows(path: str) -> int | None:
    """The large model's vocabulary size as its config declares it (its embedding rows), read before
    any weights load; None when the config cannot be read here (the check then rests on the tokenizers)."""
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
    except Exception:  # noqa: BLE001 - an unreadable config only skips this part of the check
        return None
    config = getattr(config, "get_text_config", lambda: config)()
    rows = getattr(config, "vocab_size", None)
    return int(rows) if isinstance(rows, int) else None


def _load_model(path: str, settings: EvaluateOffloadSettings, what: str):
    from splitreason.models.loading import load_causal_lm

    return load_causal_lm(path, device=settings.device, dtype=settings.dtype, what=what)

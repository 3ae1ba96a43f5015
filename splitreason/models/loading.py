"""Load a causal LM for training, scoring or generation: the right device and dtype without being
told (bf16 on a GPU that has it, fp32 on the CPU), one line when it cannot be loaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from splitreason.errors import one_line
from splitreason.io.hub import require_hub_for_model
from splitreason.models import ModelError, ModelExtraMissing
from splitreason.models.tokenizer import looks_local

__all__ = ["load_causal_lm", "pick_device", "pick_dtype", "quiet_library_progress", "require_torch"]


def require_torch(feature: str, extra: str = "train") -> None:
    """Raise one line naming the extra when torch/transformers are missing."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise ModelExtraMissing(f"{feature} needs torch and transformers: pip install 'splitreason[{extra}]'") from None


def quiet_library_progress() -> None:
    """No tqdm bars from transformers ("Loading weights") or datasets (each `map`): splitreason
    shows its own progress, and their bars would interleave with it on stderr."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


def pick_device(device: str = "auto"):
    import torch

    if device != "auto":
        try:
            target = torch.device(device)
        except RuntimeError as error:
            raise ModelError(f"unknown device {device!r}: {error}") from None
        _check_available(target, device)
        return target
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _check_available(target, asked: str) -> None:
    """A device this machine has: `cuda` without a GPU (or a CPU build of torch), or `cuda:3` on a
    machine with two, is one line here rather than an assertion deep in torch when weights move."""
    import torch

    backend = getattr(torch, target.type, None)  # torch.cuda, torch.mps, torch.xpu, …
    if target.type in ("cpu", "meta") or not hasattr(backend, "is_available"):
        return
    if not backend.is_available():
        build = " (this torch is a CPU build)" if target.type == "cuda" and torch.version.cuda is None else ""
        raise ModelError(f"device {asked!r} is not available on this machine{build}; use --device auto or cpu")
    count = backend.device_count() if hasattr(backend, "device_count") else None
    if target.index is not None and count is not None and target.index >= count:
        raise ModelError(f"device {asked!r} is not available on this machine: it has {count} {target.type} "
                         f"device(s), numbered from 0")


def pick_dtype(device, dtype: str = "auto"):
    """`auto`: bfloat16 on a GPU that supports it, float32 otherwise (the CPU, old GPUs)."""
    import torch

    if dtype != "auto":
        try:
            return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                    "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
        except KeyError:
            raise ModelError(f"unknown dtype {dtype!r} (float32, bfloat16 or float16)") from None
    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_causal_lm(name_or_path: str | os.PathLike, *, device: str = "auto", dtype: str = "auto",
                   what: str = "model", **kwargs: Any):
    """`AutoModelForCausalLM.from_pretrained`, on `device` in `dtype`, in eval mode."""
    require_torch(f"loading the {what}")
    from transformers import AutoModelForCausalLM

    quiet_library_progress()
    name = str(name_or_path)
    path = Path(name).expanduser()
    if looks_local(name) and not path.exists():
        raise ModelError(f"{what} {name} does not exist")
    if path.is_dir() and not (path / "config.json").is_file():
        raise ModelError(f"{what} {name} is not a model directory (no config.json)")
    if not path.exists():
        require_hub_for_model(name, what)
    target = pick_device(device)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path) if path.exists() else name,
                                                     dtype=pick_dtype(target, dtype), **kwargs)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as error:  # ImportError: a kernel not installed
        detail = one_line(error)
        raise ModelError(f"cannot load {what} {name}: {detail}") from None
    return model.to(target).eval()

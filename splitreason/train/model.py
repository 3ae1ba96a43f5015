"""Step 3 of `train sft`: the base model, in the precision the hardware has (bf16 on a GPU that
supports it, fp32 on the CPU), with embedding rows for the added tags (input and output, tied or
not, starting at the mean of the existing rows), wrapped in LoRA when --lora-r is given.

With LoRA and added tags, the tags' own embedding rows (input and output) are trained too, else
the model could never learn to write them: the two matrices stay trainable with a gradient mask
that keeps every other row as it was (and out of weight decay). peft's trainable tokens would do
it for the input, but TRL's fused loss reads the output layer's weight directly and never sees
peft's deltas there. The adapter is merged back before saving, so OUT loads with
`AutoModelForCausalLM.from_pretrained` alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from splitreason.schemas.training import TrainSettings

__all__ = ["check_model_build", "load_base_model", "merged_for_saving", "precision"]


def precision(settings: TrainSettings) -> str:
    """"bf16" or "fp32": the dtype the weights are loaded in and trained with."""
    from splitreason.models.loading import pick_device, pick_dtype

    import torch

    return "bf16" if pick_dtype(pick_device("auto"), settings.dtype) == torch.bfloat16 else "fp32"


def check_model_build(settings: TrainSettings) -> None:
    """Build the model's skeleton (its config on the meta device: no weights read) with the asked
    attention and LoRA targets, so that a kernel that is missing or unknown, or a --lora-targets
    that names no module, is one line before OUT is created rather than a failure that leaves OUT
    holding a run that never trained."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from splitreason.io.hub import require_hub_for_model
    from splitreason.models.loading import quiet_library_progress
    from splitreason.models.tokenizer import looks_local
    from splitreason.train import TrainDataError

    quiet_library_progress()
    name = settings.model
    if not (looks_local(name) or Path(name).expanduser().exists()):
        require_hub_for_model(name, "base model")
    path = Path(name).expanduser()
    source = str(path) if path.exists() else name
    extra = {"attn_implementation": settings.attn_implementation} if settings.attn_implementation else {}
    dtype = torch.bfloat16 if precision(settings) == "bf16" else torch.float32
    try:
        config = AutoConfig.from_pretrained(source)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, **extra)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as error:  # ImportError: a kernel not installed
        what = f"--attn-implementation {settings.attn_implementation}" if extra else "the base model"
        raise TrainDataError(f"{what}: cannot build {name}: {' '.join(str(error).split())[:300]}") from None
    if settings.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        try:
            get_peft_model(model, LoraConfig(r=settings.lora_r, target_modules=settings.lora_target_modules,
                                             task_type="CAUSAL_LM"))
        except ValueError as error:  # peft's NoMatchingPeftModuleError is one; so is a module of a kind LoRA cannot wrap
            linear = sorted({module_name.rsplit(".", 1)[-1] for module_name, module in model.named_modules()
                             if isinstance(module, torch.nn.Linear)})
            found = type(error).__name__ != "NoMatchingPeftModuleError"
            detail = "names a module LoRA cannot wrap" if found else "no module of the model has that name"
            raise TrainDataError(f"--lora-targets {settings.lora_targets}: {detail} (its linear layers: "
                                 f"{', '.join(linear)}; or all-linear)") from None


def load_base_model(settings: TrainSettings, tokenizer, tags) -> tuple[Any, dict[str, Any]]:
    """The model to hand to the trainer, and what train.json says about it."""
    from splitreason.models.loading import load_causal_lm
    from splitreason.models.tags import add_tag_tokens

    dtype = "bfloat16" if precision(settings) == "bf16" else "float32"
    # On the CPU: the trainer places it (one copy per process, not all on the first GPU).
    extra = {"attn_implementation": settings.attn_implementation} if settings.attn_implementation else {}
    model = load_causal_lm(settings.model, device="cpu", dtype=dtype, what="base model", **extra)
    vocab_before = model.get_input_embeddings().weight.shape[0]
    if tags.single:
        add_tag_tokens(tokenizer, model)
    _align_special_ids(model, tokenizer)
    info: dict[str, Any] = {
        "dtype": dtype,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_before": vocab_before,
        "vocab_after": model.get_input_embeddings().weight.shape[0],
        "tied_embeddings": bool(getattr(model.config, "tie_word_embeddings", False)),
        "lora": None,
    }
    model.train()
    if settings.lora_r > 0:
        model = _with_lora(model, settings, tags, info)
    masked = set(info.pop("rows_only_parameters", []))
    info["trainable_parameters"] = sum(
        (2 * p.shape[1] if name in masked else p.numel()) for name, p in model.named_parameters() if p.requires_grad)
    info["rows_only_parameters"] = sorted(masked)
    return model, info


def _align_special_ids(model, tokenizer) -> None:
    """The model's pad/eos ids as the tokenizer's, so generation stops where training ended turns."""
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            setattr(model.config, name, value)
            if getattr(model, "generation_config", None) is not None:
                setattr(model.generation_config, name, value)


def _with_lora(model, settings: TrainSettings, tags, info: dict[str, Any]):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha or 2 * settings.lora_r,
                        lora_dropout=settings.lora_dropout, target_modules=settings.lora_target_modules,
                        task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    rows = [tags.open_id, tags.close_id] if tags.single else []
    masked = _train_rows_only(model, rows) if rows else []
    info["lora"] = {"r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
                    "targets": settings.lora_target_modules, "tag_rows_trained": rows, "merged": True}
    info["rows_only_parameters"] = masked
    return model


def _train_rows_only(model, rows: list[int]) -> list[str]:
    """Make the embedding matrices (input, and output when untied) trainable in `rows` alone;
    return their parameter names (to keep them out of weight decay)."""
    import torch

    base = model.get_base_model()
    weights = [base.get_input_embeddings().weight]
    output = base.get_output_embeddings()
    if output is not None and output.weight is not weights[0]:
        weights.append(output.weight)
    for weight in weights:
        mask = torch.zeros(weight.shape[0], 1, dtype=weight.dtype)
        mask[rows] = 1
        weight.requires_grad_(True)
        weight.register_hook(lambda grad, mask=mask: grad * mask.to(grad.device, grad.dtype))
    return [name for name, parameter in model.named_parameters() if any(parameter is w for w in weights)]


def merged_for_saving(model):
    """The plain transformers model to save: a LoRA model with its adapter merged in."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model

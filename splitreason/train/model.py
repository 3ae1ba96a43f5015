"""Step 3 of `train sft`: the base model, in the precision the hardware has (bf16 on a GPU that
supports it, fp32 on the CPU), with embedding rows for the added tags (input and output, tied or
not, starting at the mean of the existing rows), wrapped in LoRA when --lora-r is given.

With LoRA and added tags, the tags' own rows are trained too (peft's trainable tokens), else the
model could never learn to write them; the adapter is merged back before saving, so OUT loads
with `AutoModelForCausalLM.from_pretrained` alone.
"""

from __future__ import annotations

from typing import Any

from splitreason.schemas.training import SFTSettings

__all__ = ["load_base_model", "merged_for_saving", "precision"]


def precision(settings: SFTSettings) -> str:
    """"bf16" or "fp32": the dtype the weights are loaded in and trained with."""
    from splitreason.models.loading import pick_device, pick_dtype

    import torch

    return "bf16" if pick_dtype(pick_device("auto"), settings.dtype) == torch.bfloat16 else "fp32"


def load_base_model(settings: SFTSettings, tokenizer, tags) -> tuple[Any, dict[str, Any]]:
    """The model to hand to the trainer, and what train.json says about it."""
    from splitreason.models.loading import load_causal_lm
    from splitreason.models.tags import add_tag_tokens

    dtype = "bfloat16" if precision(settings) == "bf16" else "float32"
    # On the CPU: the trainer places it (one copy per process, not all on the first GPU).
    model = load_causal_lm(settings.model, device="cpu", dtype=dtype, what="base model")
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
    info["trainable_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, info


def _align_special_ids(model, tokenizer) -> None:
    """The model's pad/eos ids as the tokenizer's, so generation stops where training ended turns."""
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            setattr(model.config, name, value)
            if getattr(model, "generation_config", None) is not None:
                setattr(model.generation_config, name, value)


def _with_lora(model, settings: SFTSettings, tags, info: dict[str, Any]):
    from peft import LoraConfig, get_peft_model

    trainable_tokens = None
    if tags.single:
        ids = [tags.open_id, tags.close_id]
        trainable_tokens = {_module_name(model, model.get_input_embeddings()): ids}
        output = model.get_output_embeddings()
        if output is not None and output.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
            trainable_tokens[_module_name(model, output)] = ids
    config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha or 2 * settings.lora_r,
                        lora_dropout=settings.lora_dropout, target_modules=settings.lora_target_modules,
                        task_type="CAUSAL_LM", trainable_token_indices=trainable_tokens)
    info["lora"] = {"r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
                    "targets": settings.lora_target_modules, "trainable_token_indices": trainable_tokens,
                    "merged": True}
    return get_peft_model(model, config)


def _module_name(model, module) -> str:
    return next(name for name, candidate in model.named_modules() if candidate is module).split(".")[-1]


def merged_for_saving(model):
    """The plain transformers model to save: a LoRA model with its adapter merged in."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model

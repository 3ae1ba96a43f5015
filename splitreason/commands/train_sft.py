"""`splitreason train sft DATA... --model MODEL -o OUT`: options -> SFTSettings -> train/sft.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from splitreason.commands.options import AsJson, LegacyOut, build_settings, pick_output
from splitreason.schemas.training import LR_SCHEDULERS
from splitreason.schemas.training import SFTSettings as S

console = Console(stderr=True, emoji=False)

# Closed sets as the settings declare them: the CLI shows their choices.
Tags = S.model_fields["tags"].annotation
Dtype = S.model_fields["dtype"].annotation
LrScheduler = Literal[LR_SCHEDULERS]  # type: ignore[valid-type]


def sft(
    ctx: typer.Context,
    data: Annotated[list[Path] | None, typer.Argument(help=S.help("data"), show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help=S.help("model"), show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--output", "-o", help=S.help("out"), show_default=False)] = None,
    legacy_out: LegacyOut = None,
    as_json: AsJson = False,
    config: Annotated[Path | None, typer.Option("--config", help="TOML or YAML file of settings (the same names; "
                                                "the command line wins).", dir_okay=False)] = None,
    tags: Annotated[Tags, typer.Option(help=S.help("tags"))] = S.default("tags"),
    chat_template: Annotated[Path | None, typer.Option(help=S.help("chat_template"), dir_okay=False)] = S.default("chat_template"),
    instruction: Annotated[str | None, typer.Option(help=S.help("instruction"))] = S.default("instruction"),
    epochs: Annotated[float, typer.Option(help=S.help("epochs"))] = S.default("epochs"),
    learning_rate: Annotated[float, typer.Option(help=S.help("learning_rate"))] = S.default("learning_rate"),
    lr_scheduler: Annotated[LrScheduler, typer.Option(help=S.help("lr_scheduler"))] = S.default("lr_scheduler"),
    min_lr_rate: Annotated[float, typer.Option(help=S.help("min_lr_rate"))] = S.default("min_lr_rate"),
    warmup_ratio: Annotated[float, typer.Option(help=S.help("warmup_ratio"))] = S.default("warmup_ratio"),
    weight_decay: Annotated[float, typer.Option(help=S.help("weight_decay"))] = S.default("weight_decay"),
    max_grad_norm: Annotated[float, typer.Option(help=S.help("max_grad_norm"))] = S.default("max_grad_norm"),
    batch_size: Annotated[int, typer.Option(help=S.help("batch_size"))] = S.default("batch_size"),
    grad_accum: Annotated[int, typer.Option(help=S.help("grad_accum"))] = S.default("grad_accum"),
    max_length: Annotated[int, typer.Option(help=S.help("max_length"))] = S.default("max_length"),
    truncate: Annotated[bool, typer.Option(help=S.help("truncate"))] = S.default("truncate"),
    seed: Annotated[int, typer.Option(help=S.help("seed"))] = S.default("seed"),
    packing: Annotated[bool, typer.Option(help=S.help("packing"))] = S.default("packing"),
    attn_implementation: Annotated[str | None, typer.Option(help=S.help("attn_implementation"))] = S.default("attn_implementation"),
    gradient_checkpointing: Annotated[bool, typer.Option(help=S.help("gradient_checkpointing"))] = S.default("gradient_checkpointing"),
    lora_r: Annotated[int, typer.Option(help=S.help("lora_r"))] = S.default("lora_r"),
    lora_alpha: Annotated[int | None, typer.Option(help=S.help("lora_alpha"))] = S.default("lora_alpha"),
    lora_dropout: Annotated[float, typer.Option(help=S.help("lora_dropout"))] = S.default("lora_dropout"),
    lora_targets: Annotated[str, typer.Option(help=S.help("lora_targets"))] = S.default("lora_targets"),
    eval_fraction: Annotated[float, typer.Option(help=S.help("eval_fraction"))] = S.default("eval_fraction"),
    skip_bad_rows: Annotated[bool, typer.Option(help=S.help("skip_bad_rows"))] = S.default("skip_bad_rows"),
    dtype: Annotated[Dtype, typer.Option(help=S.help("dtype"))] = S.default("dtype"),
    deepspeed: Annotated[Path | None, typer.Option(help=S.help("deepspeed"), dir_okay=False)] = S.default("deepspeed"),
    report_to: Annotated[str, typer.Option(help=S.help("report_to"))] = S.default("report_to"),
    logging_steps: Annotated[int, typer.Option(help=S.help("logging_steps"))] = S.default("logging_steps"),
    save_steps: Annotated[int, typer.Option(help=S.help("save_steps"))] = S.default("save_steps"),
    save_total_limit: Annotated[int, typer.Option(help=S.help("save_total_limit"))] = S.default("save_total_limit"),
    keep_checkpoints: Annotated[bool, typer.Option(help=S.help("keep_checkpoints"))] = S.default("keep_checkpoints"),
    eval_batch_size: Annotated[int, typer.Option(help=S.help("eval_batch_size"))] = S.default("eval_batch_size"),
    progress: Annotated[bool, typer.Option(help=S.help("progress"))] = S.default("progress"),
    resume: Annotated[bool, typer.Option("--resume", help=S.help("resume"))] = S.default("resume"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=S.help("overwrite"))] = S.default("overwrite"),
) -> None:
    """Fine-tune MODEL on export rows so that it wraps its hardest steps in <bigmodel> tags.

    OUT becomes a model directory (AutoModelForCausalLM/AutoTokenizer load it as is) with
    train.json (data, settings, versions, losses, tag metrics on the eval split) and log.jsonl.
    Runs on the CPU, one GPU, or many under `accelerate launch -m splitreason.cli train sft …`.
    """
    from splitreason.train.sft import run_sft

    ctx.params["out"] = pick_output(out, legacy_out)
    settings = build_settings(ctx, S, required=("data", "model", "out"))
    result = run_sft(settings, console=console if settings.progress else None)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    if result.record is None:  # not the main process
        return
    if result.already_finished:
        console.print(f"{settings.out} holds a finished run with these settings; nothing to resume", highlight=False, soft_wrap=True)
    if as_json:
        print(result.record.model_dump_json(indent=2))
        return
    _summary(result.record)


def _summary(record) -> None:
    """Plain lines on stdout (no table: a script can grep them)."""
    rows, metrics, losses = record.rows, record.tag_metrics, record.losses
    print(f"trained {record.settings['out']}: {record.steps} steps in {record.seconds} s "
          f"({record.hardware.get('precision')}, {record.hardware.get('processes')} process(es))")
    print(f"rows: {rows.train} train, {rows.eval} eval, {rows.too_long} too long, {rows.truncated} truncated, "
          f"{rows.refused} refused (of {rows.read})")
    print(f"tag token share of the training replies: {_num(record.tag_token_share)}")
    print(f"loss: train {_num(losses.get('train_final'))}, eval {_num(losses.get('eval_final'))}")
    if metrics is not None:
        print(f"eval split: open-tag F1 {_num(metrics.open_f1)} (precision {_num(metrics.open_precision)}, recall "
              f"{_num(metrics.open_recall)}), close-tag F1 {_num(metrics.close_f1)}, offload share predicted "
              f"{_num(metrics.offload_share_predicted)} vs data {_num(metrics.offload_share_data)}")


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

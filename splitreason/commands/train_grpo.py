"""`splitreason train grpo --model SFT_OUT --problems SET -o OUT`: options -> GRPOSettings -> train/grpo.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from splitreason.commands.options import AsJson, build_settings
from splitreason.schemas.grpo import GRPOSettings as S
from splitreason.schemas.training import LR_SCHEDULERS

console = Console(stderr=True, emoji=False)

# Closed sets as the settings declare them: the CLI shows their choices.
Dtype = S.model_fields["dtype"].annotation
Generation = S.model_fields["generation"].annotation
LatencySchedule = S.model_fields["latency_schedule"].annotation
LrScheduler = Literal[LR_SCHEDULERS]  # type: ignore[valid-type]


def grpo(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", "-m", help=S.help("model"), show_default=False)] = None,
    problems: Annotated[str | None, typer.Option("--problems", help=S.help("problems"), show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--output", "-o", help=S.help("out"), show_default=False)] = None,
    as_json: AsJson = False,
    config: Annotated[Path | None, typer.Option("--config", help="TOML or YAML file of settings (the same names; "
                                                "the command line wins).", dir_okay=False)] = None,
    limit: Annotated[int | None, typer.Option(help=S.help("limit"))] = S.default("limit"),
    problem_field: Annotated[str | None, typer.Option(help=S.help("problem_field"))] = S.default("problem_field"),
    answer_field: Annotated[str | None, typer.Option(help=S.help("answer_field"))] = S.default("answer_field"),
    decontaminate_against: Annotated[list[str] | None, typer.Option(help=S.help("decontaminate_against"))] = None,
    text_tags: Annotated[bool, typer.Option("--text-tags", help=S.help("text_tags"))] = S.default("text_tags"),
    instruction: Annotated[str | None, typer.Option(help=S.help("instruction"))] = S.default("instruction"),
    num_generations: Annotated[int, typer.Option(help=S.help("num_generations"))] = S.default("num_generations"),
    batch_size: Annotated[int, typer.Option(help=S.help("batch_size"))] = S.default("batch_size"),
    grad_accum: Annotated[int, typer.Option(help=S.help("grad_accum"))] = S.default("grad_accum"),
    learning_rate: Annotated[float, typer.Option(help=S.help("learning_rate"))] = S.default("learning_rate"),
    lr_scheduler: Annotated[LrScheduler, typer.Option(help=S.help("lr_scheduler"))] = S.default("lr_scheduler"),
    warmup_ratio: Annotated[float, typer.Option(help=S.help("warmup_ratio"))] = S.default("warmup_ratio"),
    weight_decay: Annotated[float, typer.Option(help=S.help("weight_decay"))] = S.default("weight_decay"),
    max_grad_norm: Annotated[float, typer.Option(help=S.help("max_grad_norm"))] = S.default("max_grad_norm"),
    kl_beta: Annotated[float, typer.Option(help=S.help("kl_beta"))] = S.default("kl_beta"),
    max_completion_length: Annotated[int, typer.Option(help=S.help("max_completion_length"))] = S.default("max_completion_length"),
    temperature: Annotated[float, typer.Option(help=S.help("temperature"))] = S.default("temperature"),
    top_p: Annotated[float, typer.Option(help=S.help("top_p"))] = S.default("top_p"),
    seed: Annotated[int, typer.Option(help=S.help("seed"))] = S.default("seed"),
    epochs: Annotated[float, typer.Option(help=S.help("epochs"))] = S.default("epochs"),
    steps: Annotated[int | None, typer.Option(help=S.help("steps"))] = S.default("steps"),
    reward_weights: Annotated[str, typer.Option(help=S.help("reward_weights"))] = S.default("reward_weights"),
    target_offload: Annotated[float, typer.Option(help=S.help("target_offload"))] = S.default("target_offload"),
    offload_tolerance: Annotated[float, typer.Option(help=S.help("offload_tolerance"))] = S.default("offload_tolerance"),
    latency_profile: Annotated[str, typer.Option(help=S.help("latency_profile"))] = S.default("latency_profile"),
    latency_schedule: Annotated[LatencySchedule, typer.Option(help=S.help("latency_schedule"))] = S.default("latency_schedule"),
    true_offload: Annotated[bool, typer.Option("--true-offload", help=S.help("true_offload"))] = S.default("true_offload"),
    large: Annotated[str | None, typer.Option(help=S.help("large"))] = S.default("large"),
    large_tokenizer: Annotated[str | None, typer.Option(help=S.help("large_tokenizer"))] = S.default("large_tokenizer"),
    chunk_tokens: Annotated[int, typer.Option(help=S.help("chunk_tokens"))] = S.default("chunk_tokens"),
    max_segment_tokens: Annotated[int, typer.Option(help=S.help("max_segment_tokens"))] = S.default("max_segment_tokens"),
    lora_r: Annotated[int, typer.Option(help=S.help("lora_r"))] = S.default("lora_r"),
    lora_alpha: Annotated[int | None, typer.Option(help=S.help("lora_alpha"))] = S.default("lora_alpha"),
    lora_dropout: Annotated[float, typer.Option(help=S.help("lora_dropout"))] = S.default("lora_dropout"),
    lora_targets: Annotated[str, typer.Option(help=S.help("lora_targets"))] = S.default("lora_targets"),
    dtype: Annotated[Dtype, typer.Option(help=S.help("dtype"))] = S.default("dtype"),
    generation: Annotated[Generation, typer.Option(help=S.help("generation"))] = S.default("generation"),
    vllm_server_url: Annotated[str, typer.Option(help=S.help("vllm_server_url"))] = S.default("vllm_server_url"),
    attn_implementation: Annotated[str | None, typer.Option(help=S.help("attn_implementation"))] = S.default("attn_implementation"),
    gradient_checkpointing: Annotated[bool, typer.Option(help=S.help("gradient_checkpointing"))] = S.default("gradient_checkpointing"),
    deepspeed: Annotated[Path | None, typer.Option(help=S.help("deepspeed"), dir_okay=False)] = S.default("deepspeed"),
    report_to: Annotated[str, typer.Option(help=S.help("report_to"))] = S.default("report_to"),
    logging_steps: Annotated[int, typer.Option(help=S.help("logging_steps"))] = S.default("logging_steps"),
    save_steps: Annotated[int, typer.Option(help=S.help("save_steps"))] = S.default("save_steps"),
    save_total_limit: Annotated[int, typer.Option(help=S.help("save_total_limit"))] = S.default("save_total_limit"),
    keep_checkpoints: Annotated[bool, typer.Option(help=S.help("keep_checkpoints"))] = S.default("keep_checkpoints"),
    rollouts_per_step: Annotated[int, typer.Option(help=S.help("rollouts_per_step"))] = S.default("rollouts_per_step"),
    grade_timeout: Annotated[float, typer.Option(help=S.help("grade_timeout"))] = S.default("grade_timeout"),
    progress: Annotated[bool, typer.Option(help=S.help("progress"))] = S.default("progress"),
    resume: Annotated[bool, typer.Option("--resume", help=S.help("resume"))] = S.default("resume"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=S.help("overwrite"))] = S.default("overwrite"),
) -> None:
    """Reinforce a tagged model (a `train sft` OUT) with GRPO: correct answers at a small offload share and low latency.

    OUT becomes a model directory loaded like the SFT output (train.json, kind grpo), with log.jsonl
    (each reward per step), rollouts.jsonl (a sample of rollouts per step) and rejects.jsonl
    (problems dropped as contaminated). With --true-offload --large MODEL the large model writes the
    tagged segments during the rollouts, and its tokens stay out of the loss and the KL.
    """
    from splitreason.train.grpo import run_grpo

    if decontaminate_against is None:
        ctx.params.pop("decontaminate_against", None)
    settings = build_settings(ctx, S, required=("model", "problems", "out"))
    result = run_grpo(settings, console=console if settings.progress else None)
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
    """Plain lines on stdout: what was trained, and the rewards at the start and the end."""
    grpo = record.grpo or {}
    counts = grpo.get("problems", {})
    print(f"trained {record.settings['out']}: {record.steps} GRPO steps in {record.seconds} s "
          f"({record.hardware.get('precision')}, {'true offload' if grpo.get('true_offload') else 'small model writes all'})")
    print(f"problems: {counts.get('trained')} trained, {counts.get('contaminated')} contaminated, "
          f"{counts.get('past_limit')} past --limit (of {counts.get('read')})")
    over = grpo.get("over_training", {})
    first, last = over.get("first_quarter", {}), over.get("last_quarter", {})
    for key in first:
        print(f"{key.removeprefix('rewards/').removesuffix('/mean')}: {_num(first.get(key))} (first quarter) -> "
              f"{_num(last.get(key))} (last quarter)")


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

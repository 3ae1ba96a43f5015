"""`splitreason train grpo --model SFT_OUT --problems SET -o OUT`: options -> GRPOSettings -> train/grpo.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from splitreason.commands.options import (HANDOFF, INPUT, OUTPUT, PROMPT, REWARDS, ROLLOUTS, TRAINING, AsJson, ConfigFile,
                                          build_settings, settings_options)
from splitreason.commands.train_shared import console, number, print_result, with_training_options
from splitreason.schemas.grpo import GRPOSettings as S

opt = settings_options(S)

# Closed sets as the settings declare them: the CLI shows their choices.
Generation = S.model_fields["generation"].annotation
LatencySchedule = S.model_fields["latency_schedule"].annotation


@with_training_options(S)
def grpo(
    ctx: typer.Context,
    model: Annotated[str | None, opt("model", "--model", "-m", panel=INPUT, show_default=False)] = None,
    problems: Annotated[str | None, opt("problems", "--problems", panel=INPUT, show_default=False)] = None,
    config: ConfigFile = None,
    limit: Annotated[int | None, opt("limit", panel=INPUT)] = S.default("limit"),
    problem_field: Annotated[str | None, opt("problem_field", panel=INPUT)] = S.default("problem_field"),
    answer_field: Annotated[str | None, opt("answer_field", panel=INPUT)] = S.default("answer_field"),
    decontaminate_against: Annotated[list[str] | None, opt("decontaminate_against", panel=INPUT)] = None,
    text_tags: Annotated[bool, opt("text_tags", "--text-tags", panel=PROMPT)] = S.default("text_tags"),
    instruction: Annotated[str | None, opt("instruction", panel=PROMPT)] = S.default("instruction"),
    num_generations: Annotated[int, opt("num_generations", panel=TRAINING)] = S.default("num_generations"),
    kl_beta: Annotated[float, opt("kl_beta", panel=TRAINING)] = S.default("kl_beta"),
    max_completion_length: Annotated[int, opt("max_completion_length", panel=ROLLOUTS)] = S.default("max_completion_length"),
    temperature: Annotated[float, opt("temperature", panel=ROLLOUTS)] = S.default("temperature"),
    top_p: Annotated[float, opt("top_p", panel=ROLLOUTS)] = S.default("top_p"),
    steps: Annotated[int | None, opt("steps", panel=TRAINING)] = S.default("steps"),
    reward_weights: Annotated[str, opt("reward_weights", panel=REWARDS)] = S.default("reward_weights"),
    target_offload: Annotated[float, opt("target_offload", panel=REWARDS)] = S.default("target_offload"),
    offload_tolerance: Annotated[float, opt("offload_tolerance", panel=REWARDS)] = S.default("offload_tolerance"),
    latency_profile: Annotated[str, opt("latency_profile", panel=REWARDS)] = S.default("latency_profile"),
    latency_schedule: Annotated[LatencySchedule, opt("latency_schedule", panel=REWARDS)] = S.default("latency_schedule"),
    true_offload: Annotated[bool, opt("true_offload", "--true-offload", panel=HANDOFF)] = S.default("true_offload"),
    large: Annotated[str | None, opt("large", panel=HANDOFF)] = S.default("large"),
    large_tokenizer: Annotated[str | None, opt("large_tokenizer", panel=HANDOFF)] = S.default("large_tokenizer"),
    chunk_tokens: Annotated[int, opt("chunk_tokens", panel=HANDOFF)] = S.default("chunk_tokens"),
    max_segment_tokens: Annotated[int, opt("max_segment_tokens", panel=HANDOFF)] = S.default("max_segment_tokens"),
    generation: Annotated[Generation, opt("generation", panel=ROLLOUTS)] = S.default("generation"),
    vllm_server_url: Annotated[str, opt("vllm_server_url", panel=ROLLOUTS)] = S.default("vllm_server_url"),
    rollouts_per_step: Annotated[int, opt("rollouts_per_step", panel=OUTPUT)] = S.default("rollouts_per_step"),
    grade_timeout: Annotated[float, opt("grade_timeout", panel=ROLLOUTS)] = S.default("grade_timeout"),
    out: Annotated[Path | None, opt("out", "--output", "-o", panel=OUTPUT, show_default=False)] = None,
    as_json: AsJson = False,
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
    if out is not None:  # OUT is a directory: `-o -` would make a folder named `-`
        from splitreason.io.lock import refuse_dash_for_directory

        refuse_dash_for_directory(out)
    settings = build_settings(ctx, S, required=("model", "problems", "out"))
    result = run_grpo(settings, console=console if settings.progress else None)
    print_result(result, settings, as_json=as_json, summary=_summary)


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
        print(f"{key.removeprefix('rewards/').removesuffix('/mean')}: {number(first.get(key))} (first quarter) -> "
              f"{number(last.get(key))} (last quarter)")


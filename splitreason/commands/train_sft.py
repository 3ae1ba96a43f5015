"""`splitreason train sft DATA... --model MODEL -o OUT`: options -> SFTSettings -> train/sft.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from splitreason.commands.options import (AsJson, ConfigFile, INPUT, LegacyOut, OUTPUT, PERFORMANCE, PROMPT, TRAINING, build_settings,
                                          pick_output, settings_options)
from splitreason.commands.train_shared import console, number, print_result, with_training_options
from splitreason.schemas.training import SFTSettings as S

opt = settings_options(S)

# Closed sets as the settings declare them: the CLI shows their choices.
Tags = S.model_fields["tags"].annotation


@with_training_options(S)
def sft(
    ctx: typer.Context,
    data: Annotated[list[Path] | None, typer.Argument(help=S.help("data"), show_default=False)] = None,
    model: Annotated[str | None, opt("model", "--model", "-m", panel=INPUT, show_default=False)] = None,
    config: ConfigFile = None,
    tags: Annotated[Tags, opt("tags", panel=PROMPT)] = S.default("tags"),
    chat_template: Annotated[Path | None, opt("chat_template", panel=PROMPT, dir_okay=False)] = S.default("chat_template"),
    instruction: Annotated[str | None, opt("instruction", panel=PROMPT)] = S.default("instruction"),
    max_length: Annotated[int, opt("max_length", panel=TRAINING)] = S.default("max_length"),
    truncate: Annotated[bool, opt("truncate", panel=TRAINING)] = S.default("truncate"),
    packing: Annotated[bool, opt("packing", panel=TRAINING)] = S.default("packing"),
    eval_fraction: Annotated[float, opt("eval_fraction", panel=TRAINING)] = S.default("eval_fraction"),
    skip_bad_rows: Annotated[bool, opt("skip_bad_rows", panel=INPUT)] = S.default("skip_bad_rows"),
    eval_batch_size: Annotated[int, opt("eval_batch_size", panel=PERFORMANCE)] = S.default("eval_batch_size"),
    out: Annotated[Path | None, opt("out", "--output", "-o", panel=OUTPUT, show_default=False)] = None,
    legacy_out: LegacyOut = None,
    as_json: AsJson = False,
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
    print_result(result, settings, as_json=as_json, summary=_summary)


def _summary(record) -> None:
    """Plain lines on stdout (no table: a script can grep them)."""
    rows, metrics, losses = record.rows, record.tag_metrics, record.losses
    print(f"trained {record.settings['out']}: {record.steps} steps in {record.seconds} s "
          f"({record.hardware.get('precision')}, {record.hardware.get('processes')} process(es))")
    print(f"rows: {rows.train} train, {rows.eval} eval, {rows.too_long} too long, {rows.truncated} truncated, "
          f"{rows.refused} refused (of {rows.read})")
    print(f"tag token share of the training replies: {number(record.tag_token_share)}")
    print(f"loss: train {number(losses.get('train_final'))}, eval {number(losses.get('eval_final'))}")
    if metrics is not None:
        print(f"eval split: open-tag F1 {number(metrics.open_f1)} (precision {number(metrics.open_precision)}, recall "
              f"{number(metrics.open_recall)}), close-tag F1 {number(metrics.close_f1)}, offload share predicted "
              f"{number(metrics.offload_share_predicted)} vs data {number(metrics.offload_share_data)}")


"""What `train sft` and `train grpo` share: the options of TrainSettings' fields, declared here
once, and how a finished run is printed.

`with_training_options(Settings)` adds them to a command's signature (typer reads options from it),
with the command's own settings class for each help text and default: GRPOSettings says what
--batch-size means for GRPO and starts --learning-rate lower. The command reads them, like its own
options, from `ctx.params` through `build_settings`.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from typer.models import OptionInfo

from splitreason.commands.options import (HANDOFF, INPUT, MODEL, OUTPUT, PERFORMANCE, PROMPT, REWARDS, ROLLOUTS,
                                          TRAINING)
from splitreason.schemas.training import LR_SCHEDULERS

__all__ = ["PANEL_ORDER", "TRAINING_OPTIONS", "console", "number", "print_result", "with_training_options"]

console = Console(stderr=True, emoji=False)

PANEL_ORDER = (INPUT, PROMPT, TRAINING, ROLLOUTS, REWARDS, HANDOFF, MODEL, PERFORMANCE, OUTPUT)

#: name -> (panel, the option's flags when not typer's default, click keywords, the CLI type when not the field's)
TRAINING_OPTIONS: dict[str, tuple[str, tuple[str, ...], dict[str, Any], Any]] = {
    "epochs": (TRAINING, (), {}, None),
    "learning_rate": (TRAINING, (), {}, None),
    "lr_scheduler": (TRAINING, (), {}, Literal[LR_SCHEDULERS]),  # the CLI shows the choices the model checks
    "min_lr_rate": (TRAINING, (), {}, None),
    "warmup_ratio": (TRAINING, (), {}, None),
    "weight_decay": (TRAINING, (), {}, None),
    "max_grad_norm": (TRAINING, (), {}, None),
    "batch_size": (TRAINING, (), {}, None),
    "grad_accum": (TRAINING, (), {}, None),
    "seed": (TRAINING, (), {}, None),
    "lora_r": (MODEL, (), {}, None),
    "lora_alpha": (MODEL, (), {}, None),
    "lora_dropout": (MODEL, (), {}, None),
    "lora_targets": (MODEL, (), {}, None),
    "dtype": (MODEL, (), {}, None),
    "attn_implementation": (MODEL, (), {}, None),
    "gradient_checkpointing": (MODEL, (), {}, None),
    "deepspeed": (PERFORMANCE, (), {"dir_okay": False}, None),
    "report_to": (OUTPUT, (), {}, None),
    "logging_steps": (OUTPUT, (), {}, None),
    "save_steps": (OUTPUT, (), {}, None),
    "save_total_limit": (OUTPUT, (), {}, None),
    "keep_checkpoints": (OUTPUT, (), {}, None),
    "progress": (OUTPUT, (), {}, None),
    "resume": (OUTPUT, ("--resume",), {}, None),  # a switch: there is no --no-resume
    "overwrite": (OUTPUT, ("--overwrite",), {}, None),
}


def with_training_options(settings_class):  # type: ignore[no-untyped-def]
    """The command with the shared training options; its options ordered by panel (typer shows the
    panels in the order it first meets them), so that the help runs from input to output."""
    def decorate(command):  # type: ignore[no-untyped-def]
        hints = typing.get_type_hints(command, include_extras=True)
        own = [parameter.replace(annotation=hints.get(name, parameter.annotation))
               for name, parameter in inspect.signature(command).parameters.items()]
        clash = set(TRAINING_OPTIONS) & {parameter.name for parameter in own}
        if clash:
            raise TypeError(f"{command.__name__} declares shared training options itself: {sorted(clash)}")
        options = [parameter for parameter in [*own, *map(functools.partial(_parameter, settings_class), TRAINING_OPTIONS)]
                   if _panel(parameter) is not None]
        leading = [parameter for parameter in own if _panel(parameter) is None]  # ctx, the arguments, hidden ones
        parameters = [*leading, *sorted(options, key=lambda parameter: PANEL_ORDER.index(_panel(parameter)))]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            for name in TRAINING_OPTIONS:
                kwargs.pop(name, None)  # in ctx.params, where build_settings reads them
            return command(*args, **kwargs)

        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return wrapper

    return decorate


def _panel(parameter: inspect.Parameter) -> str | None:
    """The help panel of an option (None for the context, an argument or a hidden option)."""
    for info in getattr(parameter.annotation, "__metadata__", ()):
        if isinstance(info, OptionInfo) and not info.hidden:
            return info.rich_help_panel
    return None


def _parameter(settings_class, name: str) -> inspect.Parameter:  # type: ignore[no-untyped-def]
    panel, flags, click_keywords, cli_type = TRAINING_OPTIONS[name]
    field_type = cli_type or settings_class.model_fields[name].annotation
    option = typer.Option(*flags, help=settings_class.help(name), rich_help_panel=panel, **click_keywords)
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=settings_class.default(name),
                             annotation=Annotated[field_type, option])



def print_result(result, settings, *, as_json: bool, summary: Callable[[Any], None]) -> None:  # type: ignore[no-untyped-def]
    """Notes on stderr; the record as JSON, or the command's summary lines, on stdout (main process only)."""
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    if result.record is None:  # not the main process
        return
    if result.already_finished:
        console.print(f"{settings.out} holds a finished run with these settings; nothing to resume", highlight=False,
                      soft_wrap=True)
    if as_json:
        print(result.record.model_dump_json(indent=2))
        return
    summary(result.record)


def number(value) -> str:  # type: ignore[no-untyped-def]
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

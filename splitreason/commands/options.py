"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output directory of the annotation run.")]
RunDirArg = Annotated[Path, typer.Argument(help="Output directory of an annotation run.", exists=True, file_okay=False)]
JudgesFile = Annotated[
    Path | None,
    typer.Option("--judges-file", help="TOML file with extra judge aliases (default: $SPLITREASON_JUDGES_FILE "
                 "or ~/.config/splitreason/judges.toml).", dir_okay=False),
]

# How traces are selected from OpenR1 rows (annotate, shard, curate).
IncludeIncorrect = Annotated[bool, typer.Option(help="Also select generations math-verify marked wrong.")]
IncludeUnfinished = Annotated[bool, typer.Option(help="Also select generations whose finish reason is not stop.")]
IncludeIncomplete = Annotated[bool, typer.Option(help="Also select generations with incomplete reasoning.")]
HubConfig = Annotated[str | None, typer.Option(help="Config name for a hub dataset (e.g. default, extended).")]
HubSplit = Annotated[str, typer.Option(help="Split of a hub dataset.")]


def typed_on_command_line(ctx: typer.Context) -> set[str]:
    """Names of the parameters the user gave (not defaults): they win over a --config file.

    Compared by name: typer >= 0.29 carries its own copy of click (`typer._click`), whose
    ParameterSource is not `click.core.ParameterSource`, so an identity test never matches."""
    given = {"COMMANDLINE", "ENVIRONMENT"}
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", None) in given}


def build_settings(ctx: typer.Context, settings_class, *, required: tuple[str, ...] = ()):
    """The command's settings from its parameters (all but --config) over its --config file.
    A `required` parameter left empty here may come from the file; the model says if neither has it."""
    given = {name: value for name, value in ctx.params.items() if name != "config"}
    for name in required:
        if given.get(name) in (None, []):
            given.pop(name, None)
    return settings_class.build(given, explicit=typed_on_command_line(ctx), config_file=ctx.params.get("config"))

"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from splitreason.errors import UsageError

# Help panels: the same groups in every command's --help.
INPUT, JUDGE, ROUTING, OUTPUT, PERFORMANCE = "Input", "Judge", "Routing", "Output", "Performance"
# ... and those of the commands that train and evaluate models.
PROMPT, TRAINING, MODEL, ROLLOUTS, REWARDS = "Prompt", "Training", "Model", "Rollouts", "Rewards"
HANDOFF, SAMPLING, LATENCY = "Handoff", "Sampling", "Latency"

#: `--out` was the name of `-o` in annotate, shard, curate, merge and train sft; kept (hidden) so old scripts run.
LegacyOut = Annotated[Path | None, typer.Option("--out", hidden=True, help="Old name of --output.",
                                                 show_default=False)]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML or YAML file of settings (the same names; "
                                                 "the command line wins).", dir_okay=False, rich_help_panel=INPUT)]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (progress and notes "
                                      "stay on stderr).", rich_help_panel=OUTPUT)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on stderr but errors (no progress, no "
                                     "summary table).", rich_help_panel=OUTPUT)]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also log what happens, step by step, on stderr.",
                                       rich_help_panel=OUTPUT)]

OutDir = Annotated[Path, typer.Option("--output", "-o", help="Output directory of the annotation run.",
                                      rich_help_panel=OUTPUT)]
RunDirArg = Annotated[Path, typer.Argument(help="Output directory of an annotation run.", exists=True, file_okay=False)]
JudgesFile = Annotated[
    Path | None,
    typer.Option("--judges-file", help="TOML file with extra judge aliases (default: $SPLITREASON_JUDGES_FILE "
                 "or ~/.config/splitreason/judges.toml).", dir_okay=False),
]

# How traces are selected from OpenR1 rows (annotate, shard, curate): help from TraceSelectionSettings.
def _selection(name: str, **kwargs):  # type: ignore[no-untyped-def]
    from splitreason.schemas.settings import TraceSelectionSettings

    return typer.Option(help=TraceSelectionSettings.model_fields[name].description, rich_help_panel=INPUT, **kwargs)


IncludeIncorrect = Annotated[bool, _selection("include_incorrect")]
IncludeUnfinished = Annotated[bool, _selection("include_unfinished")]
IncludeIncomplete = Annotated[bool, _selection("include_incomplete")]
HubConfig = Annotated[str | None, _selection("hub_config")]
HubSplit = Annotated[str, _selection("hub_split")]


#: Parameters every command may have that are not settings: how it prints, not what it does.
CONVENTION_PARAMS = frozenset({"config", "quiet", "verbose", "legacy_out", "as_json"})


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
    given = {name: value for name, value in ctx.params.items() if name not in CONVENTION_PARAMS}
    for name in required:
        if given.get(name) is None or given.get(name) in ([], ()):
            given.pop(name, None)
    return settings_class.build(given, explicit=typed_on_command_line(ctx), config_file=ctx.params.get("config"),
                                option_names=_option_names(ctx, required))


def _option_names(ctx: typer.Context, names: tuple[str, ...]) -> dict[str, str]:
    """How the user names each of `names`: its long flag (`--data`), or the argument (`DATA`)."""
    found = {}
    for param in getattr(ctx.command, "params", []):
        if param.name in names:
            flags = [flag for flag in param.opts if flag.startswith("--")]
            found[param.name] = max(flags, key=len) if flags else param.name.upper()
    return found


def settings_options(settings_class):  # type: ignore[no-untyped-def]
    """`opt(name, *flags, panel=..., **click_kwargs)`: a typer option whose help is the settings
    field's description and whose range is the field's bounds (`ge`/`le`/`gt`/`lt`), so both are
    written once, in the model, and click shows the range in help and refuses a value outside it."""
    def opt(name: str, *flags: str, panel: str, **kwargs):  # type: ignore[no-untyped-def]
        for key, value in field_range(settings_class, name).items():
            kwargs.setdefault(key, value)
        return typer.Option(*flags, help=settings_class.help(name), rich_help_panel=panel, **kwargs)

    return opt


def field_range(settings_class, name: str) -> dict:
    """click's min/max from a settings field's inclusive bounds (`ge`/`le`). typer has no open
    bounds: a `gt`/`lt` field is left to the model, which refuses the value in one line as well."""
    import annotated_types

    bounds: dict = {}
    for constraint in settings_class.model_fields[name].metadata:
        if isinstance(constraint, annotated_types.Ge):
            bounds["min"] = constraint.ge
        elif isinstance(constraint, annotated_types.Le):
            bounds["max"] = constraint.le
    return bounds


def pick_output(output: Path | None, legacy: Path | None, default: Path | None = None) -> Path | None:
    """--output, or the hidden --out of old scripts; both with different values is a usage error."""
    if output is not None and legacy is not None and output != legacy:
        raise UsageError(f"--output {output} and --out {legacy} disagree; give one (--out is the old name of --output)")
    chosen = output if output is not None else legacy
    if chosen is not None:  # these outputs are directories: `-o -` would make a folder named `-`
        from splitreason.io.lock import refuse_dash_for_directory

        refuse_dash_for_directory(chosen)
    return default if chosen is None else chosen


def log_steps_to_stderr() -> None:
    """--verbose: splitreason's own INFO lines on stderr (libraries stay at their own levels, so a
    verbose run shows our steps, not transformers' or httpx's chatter). Every run's `sys.stderr` is
    looked up at each line, so --quiet's redirection and pytest's capture both see them."""
    import logging
    import sys

    class _CurrentStderr(logging.StreamHandler):
        @property
        def stream(self):  # type: ignore[override]
            return sys.stderr

        @stream.setter
        def stream(self, _value) -> None:
            pass

    logger = logging.getLogger("splitreason")
    if not any(getattr(handler, "_splitreason", False) for handler in logger.handlers):
        handler = _CurrentStderr()
        handler._splitreason = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def with_verbosity(command):  # type: ignore[no-untyped-def]
    """The command with --quiet/-q and --verbose/-v (every command has them; cli.py applies this).

    --quiet: nothing on stderr but the error that ends a command (progress, notes, summaries on
    stderr are dropped; results on stdout stay). --verbose: INFO logs of splitreason on stderr."""
    import contextlib
    import functools
    import inspect
    import os
    import sys

    import typing

    signature = inspect.signature(command)
    if "quiet" in signature.parameters:
        return command
    # Annotations resolved here, in the command's module: typer reads the wrapper's, as objects.
    hints = typing.get_type_hints(command, include_extras=True)
    signature = signature.replace(parameters=[parameter.replace(annotation=hints.get(name, parameter.annotation))
                                              for name, parameter in signature.parameters.items()])

    @functools.wraps(command)
    def wrapper(*args, quiet: bool = False, verbose: bool = False, **kwargs):  # type: ignore[no-untyped-def]
        if quiet and verbose:
            raise UsageError("--quiet and --verbose contradict each other; give one")
        if verbose:
            log_steps_to_stderr()
        if not quiet:
            return command(*args, **kwargs)
        saved = sys.stderr
        with open(os.devnull, "w", encoding="utf-8") as null, contextlib.ExitStack():
            sys.stderr = null
            try:
                return command(*args, **kwargs)
            finally:
                sys.stderr = saved  # before cli.py prints the error, if there is one

    extra = [inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Quiet),
             inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Verbose)]
    parameters = [*signature.parameters.values()]
    keyword = [p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    positional = [p for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**hints, "quiet": Quiet, "verbose": Verbose}
    return wrapper


def result_console():  # type: ignore[no-untyped-def]
    """The console for results on stdout. A terminal gets tables that fit its width; a pipe or a file
    gets plain columns (no box lines), as wide as their content: nothing is cut to "thres…"."""
    import sys

    from rich.console import Console

    if sys.stdout.isatty():
        return Console(markup=False, emoji=False, highlight=False)
    return _plain_console_class()(markup=False, emoji=False, highlight=False, width=100_000, soft_wrap=True)


def _plain_console_class():  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    class PlainConsole(Console):
        def print(self, *objects, **kwargs):  # type: ignore[no-untyped-def, override]
            for item in objects:
                if isinstance(item, Table):
                    item.box, item.show_edge, item.pad_edge = None, False, False
                    item.padding = (0, 2, 0, 0)
                    for column in item.columns:  # nothing folded or cut in a pipe
                        column.overflow, column.no_wrap = "ignore", True
            super().print(*objects, **kwargs)

    return PlainConsole



def counting_progress(label: str, unit: str, console):  # type: ignore[no-untyped-def]
    """A `progress_factory` for library calls that report (done) out of a total they know: a rich bar
    on `console` (stderr) labelled `label`, counting `unit`."""
    from contextlib import contextmanager

    @contextmanager
    def factory(total: int):  # type: ignore[no-untyped-def]
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as bar:
            task = bar.add_task(unit, total=total)
            yield lambda done: bar.update(task, completed=done)

    return factory

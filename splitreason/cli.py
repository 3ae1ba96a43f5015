"""The `splitreason` command line: a thin layer over the library.

One module per command group lives in splitreason/commands; this file wires them together and
turns a `SplitReasonError` (splitreason/errors.py) into one line and its exit code. Set
SPLITREASON_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import re

import os
import sys

import typer
from rich.console import Console

from splitreason import __version__
from splitreason.errors import SplitReasonError

app = typer.Typer(
    name="splitreason",
    help="Build offload datasets: mark the difficult spans of reasoning traces with <bigmodel> tags.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, emoji=False)  # ":m:" in "openai:m: ..." is text, not an emoji code


def _version(value: bool) -> None:
    if value:
        print(f"splitreason {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """splitreason command line."""


def _register() -> None:
    from splitreason.commands import (annotate, calibrate, curate, evaluate, export, judges, merge, report, review,
                                      shard, stats, train)
    from splitreason.commands.options import with_verbosity

    for name, function in (("annotate", annotate.annotate), ("export", export.export), ("stats", stats.stats),
                           ("report", report.report), ("shard", shard.shard), ("merge", merge.merge),
                           ("curate", curate.curate), ("judges", judges.judges), ("calibrate", calibrate.calibrate)):
        app.command(name)(with_verbosity(function))
    for name, group in (("review", review.register()), ("train", train.register()),
                        ("evaluate", evaluate.register())):
        for info in group.registered_commands:  # every command has --quiet and --verbose
            info.callback = with_verbosity(info.callback)
        app.add_typer(group, name=name)


def _reflow(text: str) -> str:
    """A docstring's paragraphs as single lines, so the terminal wraps them (rich keeps the source's
    line breaks, which leaves ragged half-lines); lines starting a list item keep their break."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in paragraph.splitlines()]
        joined = lines[0] if lines else ""
        for line in lines[1:]:
            joined += ("\n" if line[:2] in ("- ", "* ") or line[:1].isdigit() and line[1:3] in (". ", ") ") else " ") + line
        paragraphs.append(joined)
    return "\n\n".join(paragraphs)


def _escape_help(command) -> None:  # type: ignore[no-untyped-def]
    """Help is text, not rich markup: "(extra [embed])" must show its brackets. Escaped once, here,
    for every command, option and argument, so no help string has to remember it; command help is
    reflowed to the terminal's width. A flag shows no value type (it takes none)."""
    from rich.markup import escape

    for name in ("help", "short_help", "epilog"):
        if isinstance(getattr(command, name, None), str):
            setattr(command, name, escape(_reflow(getattr(command, name))))
    from typer._click import Context

    help_option = command.get_help_option(Context(command)) if hasattr(command, "get_help_option") else None
    for param in [*getattr(command, "params", []), *([help_option] if help_option else [])]:
        if isinstance(getattr(param, "help", None), str):
            param.help = escape(param.help)
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # a flag takes no value: typer would show it as `--json <bool>`
    _panels_in_order(command)
    for sub in getattr(command, "commands", {}).values():
        _escape_help(sub)


def _panels_in_order(command) -> None:  # type: ignore[no-untyped-def]
    """Every command's help reads the same way: what to give first (the Input panel), where it goes
    last (the Output panel, which holds --json and -o/--output too). typer shows panels in the order
    of their first option, so the options are ordered here (stably: each panel keeps its own order)."""
    from splitreason.commands.options import INPUT, OUTPUT

    params = getattr(command, "params", None)
    if not params:
        return
    for param in params:
        if param.param_type_name == "option" and getattr(param, "rich_help_panel", None) is None \
                and {"--json", "--output"} & set(param.opts):
            param.rich_help_panel = OUTPUT

    def rank(param) -> int:  # type: ignore[no-untyped-def]
        panel = getattr(param, "rich_help_panel", None)
        return 0 if param.param_type_name != "option" or panel == INPUT else 2 if panel == OUTPUT else 1

    params.sort(key=rank)


def command():  # type: ignore[no-untyped-def]
    """The click command tree, help escaped (tests walk it to check every option's help)."""
    _register()
    cli = typer.main.get_command(app)
    _escape_help(cli)
    return cli


def _run() -> None:
    """The command line without click's standalone handling: a usage error is one line, like ours."""
    from typer._click import exceptions as click_errors
    from typer.exceptions import Abort

    try:
        code = command().main(prog_name="splitreason", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as error:  # help was printed
        sys.exit(error.exit_code)
    except click_errors.UsageError as error:
        from rich.markup import escape

        where = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
        message = " ".join(error.format_message().replace("Value error, ", "").split())
        err.print(f"[red]error:[/] {escape(message)}{escape(where)}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except click_errors.ClickException as error:
        from rich.markup import escape

        err.print(f"[red]error:[/] {escape(' '.join(error.format_message().split()))}", highlight=False,
                  soft_wrap=True)
        sys.exit(error.exit_code)
    except Abort:
        err.print("aborted", highlight=False)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    try:
        _run()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: outputs so far are saved; run the same command again to resume")
        sys.exit(130)
    except Exception as error:
        if os.environ.get("SPLITREASON_DEBUG"):
            raise
        from rich.markup import escape

        from splitreason.io.environment import environment_error
        from splitreason.io.redaction import redact

        # A full disk, a read-only file system, permission denied: one line, with the exit code of its kind.
        known = error if isinstance(error, SplitReasonError) else environment_error(error)
        # Messages are escaped: "[judges.foo]" in a message is text, not a markup tag to drop. Keys and
        # URL credentials never reach the terminal, whatever a server put into an error.
        if known is not None:
            line = " ".join(redact(str(known)).split())
            err.print(f"[red]error:[/] {escape(line)}", highlight=False, markup=True, soft_wrap=True)
            sys.exit(known.exit_code)
        err.print(
            f"[red]internal error:[/] {type(error).__name__}: {escape(redact(str(error)))}\n"
            "Set SPLITREASON_DEBUG=1 for the traceback, and please report it.",
            highlight=False,
        )
        sys.exit(3)


if __name__ == "__main__":
    main()

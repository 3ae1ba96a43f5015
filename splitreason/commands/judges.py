"""`splitreason judges`: the judge names you can use and where each points."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from splitreason.commands.options import AsJson, JudgesFile, result_console

console = result_console()  # tables that fit the terminal, plain columns in a pipe; "a[b]" prints as is


def judges(judges_file: JudgesFile = None, as_json: AsJson = False) -> None:
    """List judge aliases (built-in and from your judges file) and where they point."""
    import os

    from splitreason.io.redaction import redact
    from splitreason.judges.registry import load_aliases

    rows = [("heuristic", "heuristic", "rules (for trying the pipeline offline)", "offline", "-", "built-in")]
    for spec in load_aliases(judges_file).values():
        endpoint = redact(spec.effective_base_url() or "SDK default")  # no user:pass@ on the screen
        if spec.base_url_env and os.environ.get(spec.base_url_env):
            endpoint += f" (from ${spec.base_url_env})"
        elif spec.base_url_env:
            endpoint += f" (override with ${spec.base_url_env})"
        key = f"${spec.api_key_env}" if spec.api_key_env else "-"
        if spec.api_key_env and os.environ.get(spec.api_key_env):
            key += " (set)"
        rows.append((spec.name, spec.backend, spec.model, endpoint, key, spec.origin))
    columns = ("name", "backend", "model", "endpoint", "key from", "defined in")
    if as_json:
        import json

        print(json.dumps([dict(zip(columns, row)) for row in rows], indent=2, ensure_ascii=False))
        return
    table = Table(title="judges")
    for column in columns:
        table.add_column(column, overflow="fold")  # a narrow terminal or a pipe wraps, never cuts a URL
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print("Also: openai:<model> [--base-url URL], anthropic:<model>, vllm:<model path>; model-grounded "
                  "(no LLM answer, see README 'Model-grounded labels'): surprisal:<small>, divergence:<small>,<large>",
                  highlight=False)
    from splitreason.judges.kinds import HEURISTIC_NOTE

    # a note, not a result: on stderr, as every command's notes (README, "Command-line conventions")
    Console(stderr=True, markup=False, emoji=False).print(f"Note: {HEURISTIC_NOTE}.", highlight=False, soft_wrap=True)

"""The command line's conventions (README, "Command-line conventions"), checked on every command:
every option has help, -o is --output, --out only as a hidden old name, no --no-no-*, closed sets
show their choices, help survives rich markup, --quiet/--verbose everywhere, --json parses, results
on stdout and progress on stderr, tables plain in a pipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import assert_one_clean_error, ok, run_cli

#: Commands that print a result (a summary, a table, figures): each has --json.
PRINTS_A_RESULT = {"annotate", "curate", "export", "shard", "merge", "stats", "report", "calibrate", "judges",
                   "train sft", "train grpo", "evaluate tags", "evaluate grade", "evaluate simulate", "evaluate offload",
                   "evaluate labels", "review push", "review pull"}


def _commands():
    from splitreason.cli import command

    def walk(group, path):
        for name, sub in group.commands.items():
            if hasattr(sub, "commands"):
                yield from walk(sub, [*path, name])
            else:
                yield " ".join([*path, name]), sub

    return dict(walk(command(), []))


COMMANDS = _commands()


def test_every_command_is_walked() -> None:
    assert {"annotate", "curate", "export", "review serve", "train sft", "evaluate grade"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_follows_the_conventions(name: str) -> None:
    command = COMMANDS[name]
    assert command.help, f"{name} has no help"
    options = [param for param in command.params if param.param_type_name == "option"]
    flags = {flag for param in options for flag in [*param.opts, *param.secondary_opts]}
    for param in options:
        if param.hidden:
            assert param.opts == ["--out"], f"{name}: only the old --out is hidden, not {param.opts}"
            continue
        assert param.help and param.help.strip(), f"{name} {param.opts}: no help"
        assert not any(flag.startswith("--no-no-") for flag in param.secondary_opts), f"{name}: {param.secondary_opts}"
        assert "--out" not in param.opts, f"{name}: --out is shown; it is the hidden old name of --output"
        if "-o" in param.opts or "--output" in param.opts:
            assert {"-o", "--output"} <= set(param.opts), f"{name}: -o and --output are one option: {param.opts}"
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is not None and descriptor.is_choice:
            assert descriptor.choices, f"{name} {param.opts}: a closed set without choices"
    assert {"--quiet", "-q", "--verbose", "-v"} <= flags, f"{name}: no --quiet/--verbose"
    if name in PRINTS_A_RESULT:
        assert "--json" in flags, f"{name} prints a result but has no --json"


def test_closed_sets_are_choices_and_help_is_text_not_markup() -> None:
    def choices(name: str, flag: str) -> list[str]:
        [param] = [param for param in COMMANDS[name].params if flag in getattr(param, "opts", [])]
        return [str(choice) for choice in param.type_descriptor.choices]

    assert choices("annotate", "--engine") == ["local", "ray"]
    assert choices("annotate", "--response-format") == ["json_schema", "json_schema_strict", "json_object", "none"]
    assert choices("export", "--format") == ["messages", "prompt-completion"]
    assert choices("review serve", "--status") == ["review", "all"]
    assert choices("curate", "--rule") == ["specific", "ngram"]
    for name in ("evaluate offload", "evaluate labels", "evaluate tags"):
        assert choices(name, "--dtype") == ["auto", "float32", "bfloat16", "float16"], name
    from splitreason.evaluate.rates import gpus

    assert choices("evaluate simulate", "--gpu") == list(gpus())  # the schema's closed set is gpus.toml's
    assert_one_clean_error(run_cli("evaluate", "labels", "run", "--small", "m", "--dtype", "float8"),
                           "'float8' is not one of")
    help_text = ok(run_cli("annotate", "--help")).stdout
    assert "<bool>" not in help_text  # a flag takes no value
    assert "(extra [embed])" in help_text  # rich would swallow an unescaped [embed]
    assert "[local|ray]" in help_text.replace("<", "[").replace(">", "]") or "local|ray" in help_text
    for panel in ("Input", "Judge", "Routing", "Output", "Performance"):
        assert f"─ {panel} " in help_text, panel


def test_long_option_lists_are_grouped_into_panels() -> None:
    """No help panel lists more than 15 options: a long command reads as groups (input, training,
    model, output, ...), each named the same in every command."""
    import collections

    for name, command in COMMANDS.items():
        panels = collections.Counter(getattr(param, "rich_help_panel", None) or "Options" for param in command.params
                                     if param.param_type_name == "option" and not param.hidden)
        crowded = {panel: count for panel, count in panels.items() if count > 15}
        assert not crowded, f"{name}: {crowded}"
    train_help = ok(run_cli("train", "grpo", "--help")).stdout
    headers = [line.split("─ ", 1)[1].split(" ", 1)[0] for line in train_help.splitlines() if line.startswith("╭─ ")]
    assert headers[1] == "Input" and headers[-1] == "Output"  # what to give first, where it goes last
    assert {"Training", "Rollouts", "Rewards", "Handoff", "Model"} <= set(headers)
    annotate_help = ok(run_cli("annotate", "--help")).stdout
    headers = [line.split("─ ", 1)[1].split(" ", 1)[0] for line in annotate_help.splitlines() if line.startswith("╭─ ")]
    assert headers[:3] == ["Arguments", "Options", "Input"] and headers[-1] == "Output", headers


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_shows_input_first_and_output_last(name: str) -> None:
    """typer shows the default panels (Arguments, Options: --help and ungrouped options) first, then
    the named panels in the order of their first option: Input first, Output last, and --json and
    -o/--output are in Output."""
    options = [param for param in COMMANDS[name].params if param.param_type_name == "option" and not param.hidden]
    panels = list(dict.fromkeys(param.rich_help_panel for param in options if param.rich_help_panel))
    assert panels[-1] == "Output", f"{name}: {panels}"
    if "Input" in panels:
        assert panels[0] == "Input", f"{name}: {panels}"
    for param in options:
        if {"--json", "--output"} & set(param.opts):
            assert param.rich_help_panel == "Output", f"{name} {param.opts}: in {param.rich_help_panel or 'Options'}"


def test_results_on_stdout_as_json_progress_and_notes_on_stderr(tmp_path: Path) -> None:
    out, curated, shards = tmp_path / "out", tmp_path / "curated", tmp_path / "shards"
    annotated = ok(run_cli("annotate", "--limit", "4", "-o", out, "--json"))
    summary = json.loads(annotated.stdout)
    assert summary["out"] == str(out) and summary["judges"] == ["heuristic"]
    assert summary["input"].endswith("openr1_sample.jsonl")  # the summary says what was read
    assert summary["this_run"]["annotated"] == 4 and sum(summary["in_out"]["status"].values()) == 4
    assert "input:" in annotated.stderr and "note:" in annotated.stderr  # notes stay on stderr

    quiet = ok(run_cli("annotate", "--limit", "4", "-o", out, "--json", "-q"))
    assert quiet.stderr == "" and json.loads(quiet.stdout)["this_run"]["already_done"] == 4

    exported = ok(run_cli("export", out, "-o", tmp_path / "sft.jsonl", "--json"))
    assert json.loads(exported.stdout)["rows"] == 4
    streamed = ok(run_cli("export", out, "-o", "-"))  # rows on stdout, the summary on stderr
    rows = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert len(rows) == 4 and all("messages" in row for row in rows)
    assert "wrote 4 examples to stdout" in streamed.stderr and not (Path.cwd() / "-").exists()
    assert_one_clean_error(run_cli("export", out, "-o", "-", "--json"), "give one")

    stats = json.loads(ok(run_cli("stats", out, "--json")).stdout)
    assert stats["traces"] == 4
    judges = json.loads(ok(run_cli("judges", "--json")).stdout)
    assert judges[0]["name"] == "heuristic"
    cur = json.loads(ok(run_cli("curate", "--limit", "6", "-o", curated, "--json", "--no-progress")).stdout)
    assert cur["counts"]["kept"] > 0 and cur["counts"]["traces_in"] >= cur["counts"]["kept"]
    sample = Path(summary["input"])
    shard = json.loads(ok(run_cli("shard", sample, "--out", shards, "--shards", "2", "--limit", "5",
                                  "--json")).stdout)  # the old --out still works
    assert sum(shard["shards"]) == shard["traces"] == 5

    piped = ok(run_cli("stats", out)).stdout  # captured = piped: plain columns, nothing cut
    assert "│" not in piped and "…" not in piped and "accepted" in piped
    assert_one_clean_error(run_cli("stats", out, "-q", "-v"), "--quiet and --verbose")


def test_dash_is_refused_where_the_output_is_a_directory(tmp_path: Path) -> None:
    """`-` streams one file to stdout; a directory output named `-` is one line, and no folder `-`
    is left to break a later `export -o -` ("file '-' is a directory")."""
    out = tmp_path / "out"
    ok(run_cli("annotate", "--limit", "2", "-o", out, "--no-progress"))
    (tmp_path / "p.jsonl").write_text('{"problem": "1+1?", "answer": "2"}\n', encoding="utf-8")
    for args, option in [(("export", out, "-o", "-", "--hf-dataset", "-"), "--hf-dataset -"),
                         (("annotate", "--limit", "2", "-o", "-"), "-o -"),
                         (("curate", out, "-o", "-"), "-o -"),
                         (("train", "grpo", "--model", "m", "--problems", "p.jsonl", "-o", "-"), "-o -"),
                         (("evaluate", "offload", "--small", "a", "--large", "b", "--eval-set", "p.jsonl", "-o", "-"),
                          "-o -")]:
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2 and not result.stdout, result.stdout
        assert_one_clean_error(result, option, "is a directory and cannot go to stdout")
        assert not (tmp_path / "-").exists(), args
    rows = ok(run_cli("export", out, "-o", "-", cwd=tmp_path)).stdout
    assert rows.strip() and all(json.loads(line) for line in rows.splitlines())


def test_grade_checks_its_local_file_before_the_hub(tmp_path: Path) -> None:
    # The hub is offline in tests: before, the missing file was noticed only after the hub line.
    assert_one_clean_error(run_cli("evaluate", "grade", tmp_path / "nofile.jsonl", "--eval-set", "aime24"),
                           "input not found", "nofile.jsonl")

"""`splitreason export`: SFT-ready JSONL (and optionally a Hugging Face dataset) from a run."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import INPUT, OUTPUT, AsJson, RunDirArg
from splitreason.errors import UsageError

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


class ExportFormat(StrEnum):
    messages = "messages"
    prompt_completion = "prompt-completion"


def export(
    run: RunDirArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write; - writes the rows to stdout "
                                         "(the summary stays on stderr).", dir_okay=False, allow_dash=True,
                                         rich_help_panel=OUTPUT)],
    format: Annotated[ExportFormat, typer.Option("--format", help="Row layout: chat messages, or a prompt and its "
                                                 "completion.", rich_help_panel=OUTPUT)] = ExportFormat.messages,
    instruction: Annotated[str | None, typer.Option(help="Offload instruction appended to the problem "
                                                    "(default: the bundled one).", rich_help_panel=OUTPUT)] = None,
    instruction_file: Annotated[Path | None, typer.Option(help="Read the offload instruction from a file.",
                                                          exists=True, dir_okay=False, rich_help_panel=OUTPUT)] = None,
    no_instruction: Annotated[bool, typer.Option("--no-instruction", help="Give the problem alone as the user "
                                                 "message.", rich_help_panel=OUTPUT)] = False,
    include_review: Annotated[bool, typer.Option(help="Also export traces still waiting for review.",
                                                 rich_help_panel=INPUT)] = False,
    hf_dataset: Annotated[Path | None, typer.Option(help="Also save as a Hugging Face dataset in this directory.",
                                                    file_okay=False, rich_help_panel=OUTPUT)] = None,
    push_to_hub: Annotated[str | None, typer.Option(help="Also push the rows to this Hugging Face Hub dataset "
                                                    "repo (datasets' push_to_hub; needs the hub and a token).",
                                                    metavar="REPO", rich_help_panel=OUTPUT)] = None,
    private: Annotated[bool, typer.Option("--private", help="--push-to-hub: create the repo private.",
                                          rich_help_panel=OUTPUT)] = False,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer (path or hub id) of the model to be trained, "
                                                  "to report the offload share in its tokens.",
                                                  rich_help_panel=INPUT)] = None,
    as_json: AsJson = False,
) -> None:
    """Write one SFT example per accepted or reviewed trace, difficult spans wrapped in <bigmodel> tags.

    Reviewed spans (OUT/review.sqlite) take the place of the judge's; traces rejected in review are left out.
    """
    from splitreason.exports.sft import default_instruction, write_export
    from splitreason.models.tokens import TokenCounter
    from splitreason.io.environment import environment_errors
    from splitreason.io.lock import claim_output_file
    from splitreason.tables.run import load_run

    from splitreason.io.lock import refuse_dash_for_directory

    to_stdout = str(output) == "-"
    if hf_dataset is not None:
        refuse_dash_for_directory(hf_dataset, "--hf-dataset")  # before anything is written
    if to_stdout and as_json:
        raise UsageError("-o - writes the rows to stdout; --json would mix the summary into them: give one")
    if push_to_hub is not None:
        _check_hub(push_to_hub)  # offline: one line now, before anything is written
    if no_instruction:
        text = ""
    elif instruction_file is not None:
        text = instruction_file.read_text(encoding="utf-8").strip()
    else:
        text = instruction if instruction is not None else default_instruction()
    loaded = load_run(run)
    if not loaded.shard_files:  # an empty export would look like success
        from splitreason.io.run_dir import RunDirError

        raise RunDirError(f"{run} holds no annotations (no annotations/shard-*.jsonl); "
                          "run `splitreason annotate -o` into it first")
    counter = TokenCounter(tokenizer) if tokenizer else None  # a wrong path or hub id: ModelError, one line
    statuses = frozenset({"accepted", "review"} if include_review else {"accepted"})
    # OUT is only read (a run writing it meanwhile is fine: only complete lines are read); the file
    # written is locked, and replaced in one step when complete.
    with ExitStack() as stack:
        if hf_dataset is not None:  # claimed first: a dataset directory in use refuses before any row is written
            stack.enter_context(claim_output_file(hf_dataset, f"dataset directory {hf_dataset}"))
        if to_stdout:  # written whole into a scratch file first: stdout gets only complete rows
            output = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="splitreason-export-"))) / "rows.jsonl"
        with claim_output_file(output, f"export target {output}"), \
                environment_errors(f"{output} was left as it was (it is replaced only when complete)", path=output):
            # Reviews reconciled by the loader every command uses, as each record is read.
            summary = write_export(loaded.iter_with_outcomes(), output, instruction=text, fmt=format.value,
                                   statuses=statuses, tokens=counter)  # type: ignore[arg-type]
        for warning in loaded.review_warnings():
            console.print(warning, highlight=False)
        _finish(summary, output, to_stdout=to_stdout, as_json=as_json, tokenizer=tokenizer, hf_dataset=hf_dataset,
                push_to_hub=push_to_hub, private=private)


def _check_hub(repo: str) -> None:
    from splitreason.io.hub import HubUnavailable, why_hub_unusable

    why = why_hub_unusable()
    if why is not None:
        raise HubUnavailable(f"cannot push to the hub dataset {repo}: {why}; the export itself needs no hub "
                             "(leave --push-to-hub out, or push later with `hf upload`)")


def _finish(summary, output: Path, *, to_stdout: bool, as_json: bool, tokenizer: str | None,  # type: ignore[no-untyped-def]
            hf_dataset: Path | None, push_to_hub: str | None, private: bool) -> None:
    """The rows to stdout (-o -), then what was written: on stderr, or as JSON on stdout."""
    from splitreason.exports.sft import save_hf_dataset
    from splitreason.io.environment import environment_errors

    if to_stdout:
        with open(output, "rb") as rows:
            shutil.copyfileobj(rows, sys.stdout.buffer)
        sys.stdout.flush()
        where = "stdout"
    else:
        where = str(output)
    skipped = ", ".join(f"{status} {n}" for status, n in sorted(summary.skipped.items())) or "none"
    console.print(f"wrote {summary.rows} examples to {where}, {summary.reviewed} of them reviewed "
                  f"(skipped: {skipped})", highlight=False)
    console.print(f"offload share: {summary.offload_char_share:.1%} of characters", highlight=False)
    if summary.heuristic:
        from splitreason.judges.kinds import HEURISTIC

        reviewed = f", {summary.heuristic_reviewed} of them reviewed by people" if summary.heuristic_reviewed else ""
        console.print(f"warning: {summary.heuristic} of {summary.rows} rows were marked by the offline heuristic judge"
                      f"{reviewed} (metadata judge_kind \"{HEURISTIC}\"): rules for trying the pipeline, not labels "
                      "to train a model on", highlight=False, soft_wrap=True)
    if summary.offload_token_share is not None:
        console.print(
            f"offload share: {summary.offload_token_share:.1%} of tokens "
            f"({summary.offload_tokens:,} of {summary.total_tokens:,}, tokenizer {tokenizer})",
            highlight=False,
        )
    if hf_dataset is not None:
        if summary.rows == 0:  # datasets cannot save an empty dataset (it fails deep inside)
            raise typer.BadParameter(f"no examples to save in {hf_dataset}: the export is empty (skipped: {skipped})",
                                     param_hint="--hf-dataset")
        # hf_dataset is claimed by the caller, before the rows were written
        with environment_errors(f"{output} is written; {hf_dataset} may be incomplete", path=hf_dataset):
            rows = save_hf_dataset(output, hf_dataset)
        console.print(f"saved {rows} rows as a Hugging Face dataset in {hf_dataset}", highlight=False)
    if push_to_hub is not None:
        from datasets import Dataset

        Dataset.from_json(str(output)).push_to_hub(push_to_hub, private=private)
        console.print(f"pushed {summary.rows} rows to the hub dataset {push_to_hub}", highlight=False)
    if as_json:
        print(json.dumps({"output": where, "rows": summary.rows, "reviewed": summary.reviewed,
                          "skipped": dict(summary.skipped), "offload_char_share": round(summary.offload_char_share, 6),
                          "offload_token_share": summary.offload_token_share, "heuristic_rows": summary.heuristic,
                          "hf_dataset": str(hf_dataset) if hf_dataset else None, "pushed_to": push_to_hub},
                         indent=2, ensure_ascii=False))

"""`splitreason export`: SFT-ready JSONL (and optionally a Hugging Face dataset) from a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from splitreason.commands.options import RunDirArg

console = Console(stderr=True, markup=False, emoji=False)  # paths like "a[b]" print as they are


def export(
    run: RunDirArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.", dir_okay=False)],
    format: Annotated[str, typer.Option("--format", help="messages or prompt-completion.")] = "messages",
    instruction: Annotated[str | None, typer.Option(help="Offload instruction appended to the problem "
                                                    "(default: the bundled one).")] = None,
    instruction_file: Annotated[Path | None, typer.Option(help="Read the offload instruction from a file.",
                                                          exists=True, dir_okay=False)] = None,
    no_instruction: Annotated[bool, typer.Option(help="Give the problem alone as the user message.")] = False,
    include_review: Annotated[bool, typer.Option(help="Also export traces still waiting for review.")] = False,
    hf_dataset: Annotated[Path | None, typer.Option(help="Also save as a Hugging Face dataset in this directory.",
                                                    file_okay=False)] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer (path or hub id) of the model to be trained, "
                                                  "to report the offload share in its tokens.")] = None,
) -> None:
    """Write one SFT example per accepted or reviewed trace, difficult spans wrapped in <bigmodel> tags.

    Reviewed spans (OUT/review.sqlite) take the place of the judge's; traces rejected in review are left out.
    """
    from splitreason.exports.sft import TokenCounter, default_instruction, save_hf_dataset, write_export
    from splitreason.io.environment import environment_errors
    from splitreason.io.lock import claim_output_file
    from splitreason.tables.run import load_run

    if format not in ("messages", "prompt-completion"):
        raise typer.BadParameter("--format must be messages or prompt-completion")
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
    try:
        counter = TokenCounter(tokenizer) if tokenizer else None
    except Exception as error:  # a wrong path or hub id is a user error, not an internal one
        detail = " ".join(str(error).split())[:300]
        raise typer.BadParameter(f"cannot load tokenizer {tokenizer}: {detail}", param_hint="--tokenizer") from error
    statuses = frozenset({"accepted", "review"} if include_review else {"accepted"})
    # OUT is only read (a run writing it meanwhile is fine: only complete lines are read); the file
    # written is locked, and replaced in one step when complete.
    with claim_output_file(output, f"export target {output}"), \
            environment_errors(f"{output} was left as it was (it is replaced only when complete)", path=output):
        # Reviews merged by the loader every command uses, as each record is read.
        summary = write_export(loaded.iter_with_outcomes(), output, instruction=text,
                               fmt=format, statuses=statuses, tokens=counter)  # type: ignore[arg-type]
    for warning in loaded.review_warnings():
        console.print(warning, highlight=False)
    skipped = ", ".join(f"{status} {n}" for status, n in sorted(summary.skipped.items())) or "none"
    console.print(f"wrote {summary.rows} examples to {output}, {summary.reviewed} of them reviewed "
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
        with claim_output_file(hf_dataset, f"dataset directory {hf_dataset}"), \
                environment_errors(f"{output} is written; {hf_dataset} may be incomplete", path=hf_dataset):
            rows = save_hf_dataset(output, hf_dataset)
        console.print(f"saved {rows} rows as a Hugging Face dataset in {hf_dataset}", highlight=False)

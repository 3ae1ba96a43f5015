"""`splitreason train grpo --model SFT_OUT --problems SET -o OUT`: GRPO on problems with gold answers.

    problems (answers required, decontaminated)  ->  OUT planned  ->  the model's prompt and tags
    (and, with --true-offload, the large model's tokenizer checked against the policy's)
    ->  OUT created and locked  ->  policy (+ LoRA)  ->  GRPOTrainer with our rewards
        (and, with --true-offload, rollouts through the handoff runtime)
    ->  OUT: model, tokenizer, train.json (kind grpo), log.jsonl, rollouts.jsonl

OUT is what `train sft` writes (same train.json, same prompt record), so `evaluate offload` and a
second GRPO run load it as they load an SFT model.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from splitreason.errors import UsageError
from splitreason.io.jsonl import atomic_write_json, atomic_write_text, atomic_writer
from splitreason.schemas.grpo import GRPOSettings, parse_reward_weights
from splitreason.schemas.training import TRAIN_RECORD, RowCounts, TrainedPrompt, TrainRecord
from splitreason.train import TrainDataError
from splitreason.train.fit import check_model, is_main_process, wait_for_main
from splitreason.train.out_dir import CONFIG, LOG, REJECTS, OutPlan, checkpoints_dir, claim, plan, trim_log, wipe
from splitreason.train.problems import Problems, load_problems

__all__ = ["GRPOResult", "ModelWithoutTags", "run_grpo"]

ROLLOUTS = "rollouts.jsonl"


class ModelWithoutTags(UsageError):
    """The model does not write the offload tags: neither one token each nor declared as text."""


@dataclass
class GRPOResult:
    record: TrainRecord | None
    already_finished: bool = False
    notes: list[str] = field(default_factory=list)


def check_settings(settings: GRPOSettings) -> None:
    """What can be checked without torch: the model directory, the rates profile, the packages."""
    from importlib.util import find_spec

    from splitreason.evaluate.rates import load_profile

    check_model(settings.model, "a `train sft` output")
    load_profile(settings.latency_profile)
    if settings.generation.startswith("vllm") and not find_spec("vllm"):
        raise TrainDataError(f"--generation {settings.generation} needs vLLM (TRL's vllm extra); "
                             "use --generation transformers")
    if settings.true_offload and settings.generation.startswith("vllm"):
        raise TrainDataError("--true-offload generates through the handoff runtime (transformers); "
                             "--generation vllm-* cannot be combined with it")
    if settings.deepspeed is not None and not Path(settings.deepspeed).is_file():
        raise TrainDataError(f"--deepspeed {settings.deepspeed}: no such file")


def run_grpo(settings: GRPOSettings, *, console=None) -> GRPOResult:
    """The run; under `accelerate launch` every process runs it, the main one alone (rank 0)
    checks, creates, locks and writes OUT, the others wait for it and train beside it."""
    main = is_main_process()
    console = console if main else None
    check_settings(settings)
    problems = load_problems(settings)
    notes = []
    if problems.contaminated:
        notes.append(f"{len(problems.contaminated)} of {problems.read} problems dropped as contaminated "
                     f"(listed in {settings.out / REJECTS})")
    data_files = [problems.file_record()]
    out_plan = plan(settings, data_files) if main else None
    if out_plan is not None and out_plan.note:
        notes.append(out_plan.note)
    if out_plan is not None and out_plan.action == "finished":
        return GRPOResult(out_plan.previous, already_finished=True, notes=notes)
    if settings.true_offload:
        from splitreason.train.true_offload import check_large

        check_large(settings.large or "")  # an unreachable URL or missing model: one line, before any work
    return _run(settings, problems, data_files, console, notes)


def model_prompt(settings: GRPOSettings, tokenizer) -> tuple[TrainedPrompt, Any]:
    """How to prompt the model (its train.json's record, else its own template) and its tag ids;
    `ModelWithoutTags` when it does not write the tags."""
    from splitreason.models.chat import choose_chat_template
    from splitreason.models.tags import tag_tokens

    tags = tag_tokens(tokenizer)
    record = TrainRecord.read(settings.model) if Path(settings.model).is_dir() else None
    if record is not None:
        if record.prompt.tags == "special" and not tags.single:
            raise ModelWithoutTags(f"--model {settings.model}: train.json says the tags are tokens, but its tokenizer "
                                   "splits them; is this the directory train sft wrote?")
        prompt = record.prompt
        if settings.instruction is not None:
            prompt = prompt.model_copy(update={"instruction": settings.instruction.strip()})
        return prompt, tags
    if not tags.single and not settings.text_tags:
        raise ModelWithoutTags(f"--model {settings.model} has no offload tags: its tokenizer has no <bigmodel> token "
                               "and it has no train.json; train it with `splitreason train sft` first, or pass "
                               "--text-tags if it writes the tags as text (like the paper's models)")
    from splitreason.evaluate.offload.prompts import default_instruction

    template = choose_chat_template(tokenizer, None)
    # as `evaluate offload` prompts a model without train.json: the export's default instruction
    instruction = settings.instruction.strip() if settings.instruction is not None else default_instruction()
    return TrainedPrompt(chat_template=template.text, chat_template_source=template.source,
                         chat_template_reason=template.reason, chat_template_sha256=template.sha256,
                         instruction=instruction, tags=tags.mode, open_ids=list(tags.open_ids),
                         close_ids=list(tags.close_ids)), tags


def _dataset(problems: Problems, prompt: TrainedPrompt, tokenizer):
    """The prompts as chat messages: TRL renders them with the tokenizer's template (set to the
    recorded one) and tokenizes them as the chat template says, with no second BOS."""
    from datasets import Dataset

    rows = {"prompt": [], "answer": [], "problem_id": [], "problem": [], "prompt_tokens": []}
    for problem in problems.kept:
        messages = prompt.messages(problem.problem)
        text = prompt.render(tokenizer, problem.problem)
        rows["prompt"].append(messages)
        rows["answer"].append(problem.answer)
        rows["problem_id"].append(problem.id)
        rows["problem"].append(problem.problem)
        rows["prompt_tokens"].append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return Dataset.from_dict(rows)


def _run(settings: GRPOSettings, problems: Problems, data_files: list[dict], console, notes: list[str]) -> GRPOResult:
    from splitreason.models.tokenizer import load_tokenizer

    _say(console, "loading the tokenizer")
    tokenizer = load_tokenizer(settings.model, what="model's tokenizer")
    prompt, tags = model_prompt(settings, tokenizer)
    tokenizer.chat_template = prompt.chat_template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = _dataset(problems, prompt, tokenizer)
    large_tokenizer = None
    if settings.true_offload:  # a bad --large is one line before OUT exists (a failed start leaves none)
        from splitreason.train.true_offload import check_large_tokenizer

        large_tokenizer = check_large_tokenizer(settings, tokenizer)

    main = is_main_process()
    lock = claim(settings, main=main)
    record = None
    try:
        if main:
            out_plan = plan(settings, data_files)  # again, under the lock
            record = _start(settings, out_plan, problems, data_files, prompt, lock.command)
        wait_for_main()
        started = record or TrainRecord.read(settings.out)
        _train(settings, tokenizer, tags, dataset, started.resumed_from if started else None, record, console,
               large_tokenizer)
        if record is None:  # not the main process
            return GRPOResult(None, notes=notes)
        record.grpo = {**(record.grpo or {}), "over_training": summarize_log(settings.out / LOG)}
        record.status = "done"
        record.finished_at = _now()
        atomic_write_json(settings.out / TRAIN_RECORD, record)
        if not settings.keep_checkpoints:
            shutil.rmtree(checkpoints_dir(settings.out), ignore_errors=True)
        return GRPOResult(record, notes=notes)
    finally:
        if lock is not None:
            lock.release()


def _start(settings: GRPOSettings, out_plan: OutPlan, problems: Problems, data_files: list[dict],
           prompt: TrainedPrompt, command: str) -> TrainRecord:
    from splitreason.train.record import git_revision, versions

    out = settings.out
    if out_plan.action == "overwrite":
        wipe(out)
    checkpoint = out_plan.checkpoint if out_plan.action == "resume" else None
    for name in (LOG, ROLLOUTS):
        if checkpoint is not None:
            trim_log(out, int(checkpoint.name.split("-")[-1]), name)
        elif (out / name).exists():
            (out / name).unlink()  # a resume with no checkpoint yet starts over
    base = TrainRecord.read(settings.model) if Path(settings.model).is_dir() else None
    record = TrainRecord(
        status="running", kind="grpo", command=command, settings=settings.model_dump(mode="json"), data=data_files,
        rows=RowCounts(read=problems.read, train=len(problems.kept)), prompt=prompt,
        base_model=base.base_model if base is not None else settings.model, versions=versions(),
        git_revision=git_revision(), resumed_from=str(checkpoint) if checkpoint else None,
        grpo={"policy_start": settings.model, "problems": problems.counts(),
              "decontamination": problems.decontamination,
              "reward_weights": parse_reward_weights(settings.reward_weights),
              "true_offload": settings.true_offload, "large": settings.large},
        started_at=out_plan.previous.started_at if out_plan.action == "resume" and out_plan.previous else _now())
    import yaml

    config = settings.model_dump(mode="json", exclude={"resume", "overwrite"})
    atomic_write_text(out / CONFIG, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    with atomic_writer(out / REJECTS, "w") as handle:
        for reject in problems.contaminated:
            handle.write(reject.model_dump_json() + "\n")
    atomic_write_json(out / TRAIN_RECORD, record)
    return record


def _train(settings: GRPOSettings, tokenizer, tags, dataset, checkpoint: str | None, record: TrainRecord | None,
           console, large_tokenizer=None) -> None:
    from splitreason.evaluate.grading import Grader
    from splitreason.evaluate.rates import load_profile
    from splitreason.train.fit import fit_and_save, note_training
    from splitreason.train.grpo_trainer import build_grpo_trainer
    from splitreason.train.model import load_base_model, precision
    from splitreason.train.progress import JsonlLog, ProgressBar
    from splitreason.train.rewards import RewardFunctions
    from splitreason.train.trainer import quiet_libraries

    quiet_libraries()
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(settings.out / "tensorboard"))
    _say(console, "loading the policy")
    model, model_info = load_base_model(settings, tokenizer, tags)
    bf16 = precision(settings) == "bf16"
    callbacks = [JsonlLog(settings.out / LOG)] + ([ProgressBar(console, "train grpo")] if settings.progress else [])
    with Grader(timeout_s=settings.grade_timeout) as grader:
        rewards = RewardFunctions(
            grader=grader, rates=load_profile(settings.latency_profile), weights=parse_reward_weights(settings.reward_weights),
            target_offload=settings.target_offload, tolerance=settings.offload_tolerance,
            open_id=tags.open_id if tags.single else None, close_id=tags.close_id if tags.single else None,
            count_tokens=lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
            schedule=settings.latency_schedule)
        rollout_func = None
        if settings.true_offload:
            from splitreason.train.true_offload import TrueOffloadRollouts

            _say(console, f"loading the large model {settings.large}")
            rollout_func = TrueOffloadRollouts.create(
                settings, tokenizer, {messages[-1]["content"]: problem
                                      for messages, problem in zip(dataset["prompt"], dataset["problem"])},
                large_tokenizer=large_tokenizer)
        trainer = build_grpo_trainer(settings, model, tokenizer, dataset, rewards=rewards,
                                     checkpoints=checkpoints_dir(settings.out), bf16=bf16, callbacks=callbacks,
                                     rollout_log=settings.out / ROLLOUTS,
                                     no_decay=model_info.get("rows_only_parameters", []), rollout_func=rollout_func)
        _say(console, "training")
        seconds = fit_and_save(trainer, settings, tokenizer, checkpoint)
    if record is not None:
        note_training(record, trainer, settings, model_info, seconds, bf16)


def summarize_log(path: Path) -> dict[str, Any]:
    """Reward components, offload share and accuracy over training, from OUT/log.jsonl: the first
    and last logged step and the means of the first and last quarter of the steps."""
    entries = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and "reward" in entry:
                entries.append(entry)
    keys = ["reward"] + sorted({k for e in entries for k in e if k.startswith("rewards/") and k.endswith("/mean")}) + [
        k for k in ("accuracy", "offload_share", "speedup", "well_formed", "kl", "completions/mean_length")
        if any(k in e for e in entries)]
    if not entries:
        return {"steps_logged": 0}
    quarter = max(1, len(entries) // 4)

    def mean(rows: list[dict], key: str) -> float | None:
        values = [row[key] for row in rows if isinstance(row.get(key), (int, float))]
        return round(sum(values) / len(values), 4) if values else None

    return {"steps_logged": len(entries), "first_step": entries[0]["step"], "last_step": entries[-1]["step"],
            "first_quarter": {key: mean(entries[:quarter], key) for key in keys},
            "last_quarter": {key: mean(entries[-quarter:], key) for key in keys}}


def _say(console, message: str) -> None:
    if console is not None:
        console.print(f"[dim]{message}…[/]", highlight=False, soft_wrap=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

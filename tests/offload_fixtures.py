"""A synthetic offload export and the one tiny tagged model trained on it, shared by the tests
of the trainer, the tag evaluator, the offload evaluator, GRPO and the model-grounded labels.

The export mimics `splitreason export`: a problem plus the offload instruction in the user turn,
an R1-style reply in the assistant turn. Its rule is simple enough for a 2-layer model to learn
in a minute and strict enough that a model which has not learned it fails: a hard step follows
a *cue sentence* ("Hmm, this next step is tricky.") and is wrapped in `<bigmodel>` …
`</bigmodel>`; near-miss sentences ("Hmm, this next step is easy.") are followed by plain
steps. Every problem has `GENERATIONS` rows (the held-out split is by problem).

    rows = synthetic_rows(400, seed=0)                  # export rows, messages shape
    write_export(path, rows, fmt="prompt-completion")   # either export shape
    build_base_model(dest, rows)                        # tiny Llama, tokenizer trained on the rows, no chat template
    train_tagged_model(out, data, base)                 # `splitreason train sft` through the CLI

Session fixtures in conftest.py: `offload_export` (files and base model) and `tagged_model`
(OUT of the one training run; read-only: copy it before writing into it).
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.exports.sft import default_instruction, user_content
from splitreason.exports.tags import strip_tags

GENERATIONS = 2  # rows per problem
CUES = ("Hmm, this next step is tricky.", "Wait, this part is hard.", "Careful, this one is subtle.")
NEAR_MISSES = ("Hmm, this next step is easy.", "Wait, this part is routine.", "Careful, this one is plain.")

# The recipe of the shared model: about 20 s of one CPU core (81 steps); open- and close-tag F1
# 1.0 on held-out rows (160 rows instead of 240 gave close-tag F1 0.45).
TRAIN_ROWS = 240
HELDOUT_ROWS = 60
TRAIN_ARGS = ("--epochs", "3", "--learning-rate", "3e-3", "--batch-size", "8", "--grad-accum", "1", "--max-length", "512",
              "--eval-fraction", "0.1", "--lr-scheduler", "cosine", "--warmup-ratio", "0.05", "--seed", "0",
              "--logging-steps", "5")


def _easy_step(rng: random.Random) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    return rng.choice([f"We add {a} and {b} to get {a + b}.", f"Next, {a} minus {b} is {a - b}.",
                       f"So the count goes from {a} to {a + 1}.", f"Note that {a * 2} is even."])


def _hard_step(rng: random.Random) -> str:
    a, b = rng.randint(11, 99), rng.randint(11, 99)
    return rng.choice([f"Multiplying {a} by {b} gives {a * b}.", f"The square of {a} is {a * a}.",
                       f"Dividing {a * b} by {b} leaves {a}."])


def synthetic_reply(rng: random.Random, *, steps: int | None = None) -> str:
    """An R1-style reply: easy steps, near misses, and cue sentences each followed by a tagged hard step."""
    steps = steps or rng.randint(5, 8)
    parts = []
    for _ in range(steps):
        kind = rng.random()
        if kind < 0.3:
            parts.append(f"{rng.choice(CUES)} {OPEN_TAG}{_hard_step(rng)}{CLOSE_TAG}")
        elif kind < 0.5:
            parts.append(f"{rng.choice(NEAR_MISSES)} {_easy_step(rng)}")
        else:
            parts.append(_easy_step(rng))
    if not any(OPEN_TAG in part for part in parts):
        parts[rng.randrange(len(parts))] = f"{rng.choice(CUES)} {OPEN_TAG}{_hard_step(rng)}{CLOSE_TAG}"
    answer = rng.randint(1, 999)
    return "<think>\n" + " ".join(parts) + f"\n</think>\n\nThe answer is \\boxed{{{answer}}}."


def synthetic_rows(n: int, *, seed: int = 0, first_problem: int = 0) -> list[dict]:
    """`n` export rows in the messages shape, `GENERATIONS` per problem, problems numbered from
    `first_problem` (give held-out rows another range so no problem is on both sides)."""
    rng = random.Random(seed)
    instruction = default_instruction()
    rows = []
    for index in range(n):
        problem_no = first_problem + index // GENERATIONS
        problem = f"Problem {problem_no}: work out the value step by step."
        reply = synthetic_reply(rng)
        rows.append({"id": f"p{problem_no}:{index % GENERATIONS}",
                     "messages": [{"role": "user", "content": user_content(problem, instruction)},
                                  {"role": "assistant", "content": reply}],
                     "metadata": {"source": "synthetic", "spans": reply.count(OPEN_TAG)}})
    return rows


def as_prompt_completion(row: dict) -> dict:
    user, reply = row["messages"]
    return {"id": row["id"], "prompt": [user], "completion": [reply], "metadata": row["metadata"]}


def write_export(path: Path, rows: Sequence[dict], *, fmt: str = "messages") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(as_prompt_completion(row) if fmt == "prompt-completion" else row) + "\n")
    return path


def build_base_model(dest: Path, rows: Sequence[dict]) -> Path:
    """A tiny random Llama whose byte-level BPE tokenizer is trained on the rows' text with the
    tags removed (a real tokenizer does not know them) and has no chat template."""
    from tests.tiny_model import build_tiny_model

    text = "\n".join(strip_tags(m["content"]) for row in rows for m in row["messages"])
    return build_tiny_model(dest, corpus=text + "\nUser: Assistant: \n", chat_template=None, vocab_size=1000)


@dataclass(frozen=True)
class OffloadExport:
    """The synthetic export in both shapes, held-out rows of other problems, and the base model."""

    train: Path              # TRAIN_ROWS rows, messages shape
    train_prompt_completion: Path  # the same rows, prompt-completion shape
    heldout: Path            # HELDOUT_ROWS rows of problems not in `train`
    base_model: Path         # tiny Llama + tokenizer trained on the text, no chat template


def make_offload_export(root: Path) -> OffloadExport:
    root = Path(root)
    train_rows = synthetic_rows(TRAIN_ROWS, seed=0)
    heldout_rows = synthetic_rows(HELDOUT_ROWS, seed=1, first_problem=10_000)
    return OffloadExport(
        train=write_export(root / "train.jsonl", train_rows),
        train_prompt_completion=write_export(root / "train_pc.jsonl", train_rows, fmt="prompt-completion"),
        heldout=write_export(root / "heldout.jsonl", heldout_rows),
        base_model=build_base_model(root / "base", train_rows + heldout_rows),
    )


def run_cli(*args, timeout: float = 600, env: dict | None = None, python_flags: Sequence[str] = ()
            ) -> subprocess.CompletedProcess:
    """tests/helpers.py's `run_cli` for model commands: a longer timeout and one torch thread:
    on a shared 2-core machine two OpenMP threads spin against the other tests' processes and a
    training step takes 20 times longer (measured: 0.18 s against 3.4 s)."""
    from tests import helpers

    return helpers.run_cli(*args, timeout=timeout, python_flags=tuple(python_flags),
                           env=helpers.cli_env(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **(env or {})))


def train_tagged_model(out: Path, data: Path, base: Path, *extra: str) -> Path:
    """`splitreason train sft DATA --model BASE -o OUT` with the shared recipe; OUT on success."""
    result = run_cli("train", "sft", data, "--model", base, "-o", out, *TRAIN_ARGS, "--no-progress", *extra)
    if result.returncode != 0:
        raise AssertionError(f"train sft failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return Path(out)


def build_large_model(dest: Path, tagged: Path, *, noise: float = 0.05, seed: int = 7) -> Path:
    """The offload evaluator's tiny "large" model: the tagged model's weights with seeded Gaussian
    noise (relative to each tensor's spread), the same tokenizer and chat template. Another model
    that shares the vocabulary, close enough to the small one that its text makes the small model's
    close check fire sometimes (and not always)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    dest = Path(dest)
    model = AutoModelForCausalLM.from_pretrained(tagged, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter += noise * parameter.std() * torch.randn(parameter.shape, generator=generator)
    model.save_pretrained(dest)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (Path(tagged) / name).is_file():
            shutil.copy(Path(tagged) / name, dest / name)
    return dest

"""Two tiny models made to disagree on planted steps, for the model-grounded judges and
`evaluate labels`.

Traces are R1-style: filler sentences drawn from a short fixed list (both models learn them),
and one or two *planted* sentences "The magic phrase now reads W1 W2 W3 W4." Trained on traces in
which the planted words are always the same four (`LARGE_WORDS`), the "large" model predicts them
with near certainty; trained on traces in which they are four random words from `POOL`, the
"small" model cannot. On traces written the large model's way, the planted steps are exactly
where the small model struggles and where the two disagree. Both models share one tokenizer
(trained on all the text); the large model starts from the small one. Building the pair takes
180 training steps of 8 rows of a tiny model.

    pair = build_pair(root)          # GroundedPair(small, large, other_tokenizer, short_context)
    traces = planted_traces(n, seed) # [(problem, trace, [(start, end), ...planted steps])]
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

FILLERS = (
    "First we write the equation down clearly and carefully.",
    "Next we collect the terms on the left hand side again.",
    "Then we check that every sign was copied over correctly.",
    "So the expression simplifies to something much shorter.",
    "Now we substitute the value back into the first equation.",
    "This matches what we expected from the earlier estimate.",
    "We keep the common factor outside of the brackets here.",
    "After that the remaining terms cancel out one by one.",
)
POOL = ("zebra", "quantum", "violet", "ember", "copper", "lantern", "meadow", "falcon", "harbor", "cinder",
        "marble", "thistle")
LARGE_WORDS = ("zebra", "quantum", "violet", "ember")
PROBLEM = "Problem: simplify the expression and report the value."


def planted_sentence(words) -> str:
    return "The magic phrase now reads " + " ".join(words) + "."


def make_trace(rng: random.Random, *, sentences: int = 10, planted: int | None = None,
               words=None) -> tuple[str, list[tuple[int, int]]]:
    """A trace and the character ranges of its planted sentences. `words`: None for the large
    model's fixed words, "random" for the small model's."""
    planted = planted if planted is not None else rng.choice((1, 2))
    where = set(rng.sample(range(1, sentences), planted))
    parts, spans = [], []
    text = "<think>\n"
    for index in range(sentences):
        if index in where:
            chosen = rng.sample(POOL, 4) if words == "random" else LARGE_WORDS
            sentence = planted_sentence(chosen)
        else:
            sentence = rng.choice(FILLERS)
        if parts:
            text += " "
        if index in where:
            spans.append((len(text), len(text) + len(sentence)))
        text += sentence
        parts.append(sentence)
    text += "\n</think>\n\nThe answer is 7."
    return text, spans


def planted_traces(n: int, seed: int, *, sentences: int = 10, planted: int = 2
                   ) -> list[tuple[str, str, list[tuple[int, int]]]]:
    """`n` traces written the large model's way: (problem, trace, planted character ranges)."""
    rng = random.Random(seed)
    return [(PROBLEM, *make_trace(rng, sentences=sentences, planted=planted)) for _ in range(n)]


def planted_share(traces) -> float:
    """The mean share of trace characters inside planted steps (the target coverage that fits them)."""
    return sum(sum(e - s for s, e in spans) / len(text) for _, text, spans in traces) / len(traces)


@dataclass(frozen=True)
class GroundedPair:
    small: Path
    large: Path
    other_tokenizer: Path  # an untrained model with a different vocabulary
    short_context: Path  # the small model with a 128-token context (the traces are ~140 tokens)


def _render(problem: str, trace: str) -> str:
    """The text as the judge reads it (tests/tiny_model.py's ChatML-like template), with the end of turn."""
    return f"<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n{trace}<|im_end|>\n"


def _train(model_dir: Path, texts: list[str], *, steps: int = 120, batch: int = 8, seed: int = 0) -> None:
    import torch
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(model_dir))
    model = LlamaForCausalLM.from_pretrained(str(model_dir)).train()
    encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3)
    rng = random.Random(seed)
    pad = tokenizer.pad_token_id
    for _ in range(steps):
        rows = rng.sample(encoded, batch)
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), pad)
        labels = torch.full((len(rows), width), -100)
        for row, seq in enumerate(rows):
            ids[row, :len(seq)] = torch.tensor(seq)
            labels[row, :len(seq)] = torch.tensor(seq)
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval().save_pretrained(str(model_dir), safe_serialization=True)


def build_pair(root: Path) -> GroundedPair:
    import torch

    from tests.tiny_model import build_tiny_model

    torch.set_num_threads(1)  # a shared 2-core machine: one thread is faster than two fighting
    root = Path(root)
    rng = random.Random(0)
    # Traces of 10 sentences, as the tests read them (past the lengths they were trained on, the two
    # models extrapolate differently and disagree where nothing was planted).
    small_texts = [_render(PROBLEM, make_trace(rng, words="random")[0]) for _ in range(200)]
    large_texts = [_render(PROBLEM, make_trace(rng)[0]) for _ in range(200)]
    corpus = "\n".join(small_texts + large_texts)
    base = build_tiny_model(root / "base", corpus=corpus, vocab_size=1000)
    small, large = root / "small", root / "large"
    shutil.copytree(base, small)
    _train(small, small_texts)
    # The large model is the small one trained on: the two agree on the fillers (as two models of
    # one family do on easy text) and part on the planted words.
    shutil.copytree(small, large)
    _train(large, large_texts, steps=60, seed=1)
    other = build_tiny_model(root / "other")  # the default corpus: another vocabulary
    short = root / "short"
    shutil.copytree(small, short)
    config = json.loads((short / "config.json").read_text())
    config["max_position_embeddings"] = 128
    (short / "config.json").write_text(json.dumps(config))
    return GroundedPair(small, large, other, short)

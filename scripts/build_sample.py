#!/usr/bin/env python3
"""Build the bundled sample dataset ``splitreason/data/openr1_sample.jsonl``.

Reads ``scripts/sample_src/records.toml`` (record metadata and per-generation
flags) plus one plain-text file per generation, and writes one JSON object per
line in the OpenR1-Math-220k schema::

    problem, solution, answer, problem_type, question_type, source, uuid,
    is_reasoning_complete, generations, correctness_math_verify,
    correctness_llama, finish_reasons, correctness_count, messages

The traces are original text written for this project in the style of
DeepSeek-R1 math reasoning traces; none is copied from a dataset.

The output is deterministic: records keep the order of ``records.toml`` and
generations the order of their ``[[record.generation]]`` tables.

Usage::

    python scripts/build_sample.py [--check]

``--check`` only validates and compares with the existing output file
(exit status 1 if it is missing or out of date).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = ROOT / "scripts" / "sample_src"
RECORDS_FILE = SRC_DIR / "records.toml"
OUT_FILE = ROOT / "splitreason" / "data" / "openr1_sample.jsonl"

FIELDS = (
    "problem",
    "solution",
    "answer",
    "problem_type",
    "question_type",
    "source",
    "uuid",
    "is_reasoning_complete",
    "generations",
    "correctness_math_verify",
    "correctness_llama",
    "finish_reasons",
    "correctness_count",
    "messages",
)
FORBIDDEN = ("<bigmodel>", "</bigmodel>", "\x00")
FINISH_REASONS = ("stop", "length")
QUESTION_TYPES = ("math-word-problem", "MCQ")


class BuildError(Exception):
    pass


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text`` (brace-matched), or None."""
    key = "\\boxed{"
    start = text.rfind(key)
    if start < 0:
        return None
    i = start + len(key)
    depth = 1
    j = i
    while j < len(text):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
        j += 1
    return None


def _norm(ans: str) -> str:
    return "".join(ans.split())


def _check_text(label: str, text: str) -> None:
    for bad in FORBIDDEN:
        if bad in text:
            raise BuildError(f"{label}: contains forbidden string {bad!r}")


def read_generation(name: str) -> str:
    path = SRC_DIR / name
    if not path.is_file():
        raise BuildError(f"missing generation file {path}")
    text = path.read_text(encoding="utf-8")
    # Normalise line endings and trailing whitespace at end of file only.
    text = text.replace("\r\n", "\n").rstrip() + "\n"
    return text.rstrip("\n")


def build_record(raw: dict) -> dict:
    uid = raw.get("uuid", "?")
    for key in ("uuid", "problem", "solution", "answer", "problem_type",
                "question_type", "source", "generation"):
        if key not in raw:
            raise BuildError(f"record {uid}: missing key {key!r}")
    if raw["question_type"] not in QUESTION_TYPES:
        raise BuildError(f"record {uid}: bad question_type {raw['question_type']!r}")
    gens_meta = raw["generation"]
    if not gens_meta:
        raise BuildError(f"record {uid}: no generations")

    generations: list[str] = []
    complete: list[bool] = []
    math_verify: list[bool] = []
    llama: list[bool] | None = []
    finish: list[str] = []
    for g in gens_meta:
        text = read_generation(g["file"])
        label = f"record {uid} / {g['file']}"
        _check_text(label, text)
        if not text.startswith("<think>\n"):
            raise BuildError(f"{label}: must start with '<think>\\n'")
        fr = g["finish_reason"]
        if fr not in FINISH_REASONS:
            raise BuildError(f"{label}: bad finish_reason {fr!r}")
        is_complete = bool(g["complete"])
        has_close = "</think>" in text
        if is_complete != has_close:
            raise BuildError(f"{label}: complete={is_complete} but '</think>' present={has_close}")
        if fr == "length" and is_complete:
            raise BuildError(f"{label}: a 'length' generation cannot be complete")
        mv = bool(g["math_verify"])
        boxed = last_boxed(text.split("</think>", 1)[1]) if has_close else None
        if mv and (boxed is None or _norm(boxed) != _norm(raw["answer"])):
            raise BuildError(f"{label}: marked correct but boxed {boxed!r} != answer {raw['answer']!r}")
        if not mv and boxed is not None and _norm(boxed) == _norm(raw["answer"]):
            raise BuildError(f"{label}: marked incorrect but boxed answer equals the reference")
        generations.append(text)
        complete.append(is_complete)
        math_verify.append(mv)
        finish.append(fr)
        if llama is not None:
            if "llama" in g:
                llama.append(bool(g["llama"]))
            else:
                llama = None

    for key in ("problem", "solution", "answer"):
        _check_text(f"record {uid} / {key}", raw[key])

    rec = {
        "problem": raw["problem"],
        "solution": raw["solution"],
        "answer": raw["answer"],
        "problem_type": raw["problem_type"],
        "question_type": raw["question_type"],
        "source": raw["source"],
        "uuid": raw["uuid"],
        "is_reasoning_complete": complete,
        "generations": generations,
        "correctness_math_verify": math_verify,
        "correctness_llama": llama,
        "finish_reasons": finish,
        "correctness_count": sum(math_verify),
        "messages": [
            {"role": "user", "content": raw["problem"]},
            {"role": "assistant", "content": generations[0]},
        ],
    }
    assert tuple(rec) == FIELDS
    return rec


def build() -> list[dict]:
    with RECORDS_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    records = [build_record(r) for r in data.get("record", [])]
    seen: set[str] = set()
    for r in records:
        if r["uuid"] in seen:
            raise BuildError(f"duplicate uuid {r['uuid']}")
        seen.add(r["uuid"])
    return records


def render(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def is_selected(rec: dict, i: int) -> bool:
    fr = rec["finish_reasons"]
    return (
        rec["correctness_math_verify"][i]
        and (fr is None or fr[i] == "stop")
        and rec["is_reasoning_complete"][i]
    )


def summary(records: list[dict]) -> str:
    lengths = [len(g) for r in records for g in r["generations"]]
    selected = [
        len(r["generations"][i])
        for r in records
        for i in range(len(r["generations"]))
        if is_selected(r, i)
    ]
    non_bmp = sum(
        1 for r in records for g in r["generations"] if any(ord(c) > 0xFFFF for c in g)
    )
    buckets = {"<4k": 0, "4k-9k": 0, "9k-16k": 0, "16k-30k": 0, ">30k": 0}
    for n in selected:
        if n < 4000:
            buckets["<4k"] += 1
        elif n < 9000:
            buckets["4k-9k"] += 1
        elif n < 16000:
            buckets["9k-16k"] += 1
        elif n <= 30000:
            buckets["16k-30k"] += 1
        else:
            buckets[">30k"] += 1
    types: dict[str, int] = {}
    for r in records:
        types[r["problem_type"]] = types.get(r["problem_type"], 0) + 1
    lines = [
        f"records:               {len(records)}",
        f"generations:           {len(lengths)}",
        f"length chars min/median/max: {min(lengths)} / {int(statistics.median(lengths))} / {max(lengths)}",
        f"total chars:           {sum(lengths)}",
        f"selected by default:   {len(selected)} (math_verify true, finish 'stop', reasoning complete)",
        "selected length buckets: " + ", ".join(f"{k}: {v}" for k, v in buckets.items()),
        f"generations with non-BMP chars: {non_bmp}",
        "problem types:         " + ", ".join(f"{k}: {v}" for k, v in sorted(types.items())),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="validate and compare with the existing output; do not write")
    args = ap.parse_args(argv)
    try:
        records = build()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = render(records)
    if args.check:
        current = OUT_FILE.read_text(encoding="utf-8") if OUT_FILE.exists() else None
        if current != text:
            print(f"{OUT_FILE.relative_to(ROOT)} is missing or out of date", file=sys.stderr)
            return 1
        print(f"{OUT_FILE.relative_to(ROOT)} is up to date")
    else:
        OUT_FILE.parent.mkdir(parents=True, exist_ok=True)
        with OUT_FILE.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        print(f"wrote {OUT_FILE.relative_to(ROOT)}")
    print(summary(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""OpenR1-schema parquet files of any size, with the mess curation must deal with.

    python benchmarks/scale_data.py OUT_DIR --traces 100000        # ~1.2 GB of trace text

Rows hold two generations each (a trace is one generation), ~12k characters on average
(log-normal, 3k-40k), assembled from a pool of R1-like paragraphs (benchmarks/routing_testset.py's
grammar: LaTeX, "Wait" repairs, case analysis) so the heuristic judge sees realistic text, with
a line of its own per trace so no two traces are equal. Problems come from
benchmarks/problem_synth.py. Of the rows: 2 % restate an earlier problem as another source
would (exact dedup after normalisation), 2 % reword one (near dedup), 0.5 % quote a problem of
`eval.jsonl`, written beside the data (decontamination), 3 % of generations are marked
incorrect, 0.1 % of rows are unusable (no generations). Deterministic in the seed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from problem_synth import make_eval_problem, make_problem, reformatted, reworded  # noqa: E402
from routing_testset import generated_trace  # noqa: E402

ROWS_PER_FILE = 10_000
ROWS_PER_GROUP = 1_000
SOURCES = ["olympiads", "cn_contest", "aops_forum", "amc_aime", "number_theory", "inequalities"]
TYPES = ["Algebra", "Number Theory", "Combinatorics", "Geometry", "Calculus", "Inequalities"]
EVAL_PROBLEMS = 60


def paragraph_pool(rng: random.Random, count: int = 60) -> list[str]:
    paragraphs: list[str] = []
    for i in range(count):
        text = generated_trace(rng, i, 20_000).text
        body = text.split("<think>", 1)[1].split("</think>", 1)[0]
        paragraphs += [p for p in body.split("\n\n") if p.strip()]
    return paragraphs


def make_trace(rng: random.Random, pool: list[str], index: int) -> str:
    size = min(40_000, max(3_000, int(rng.lognormvariate(math.log(11_000), 0.45))))
    parts = [f"Okay, let me work through this one (trace {index}) carefully before answering."]
    length = len(parts[0])
    while length < size:
        paragraph = rng.choice(pool)
        parts.append(paragraph)
        length += len(paragraph) + 2
    return "<think>\n" + "\n\n".join(parts) + f"\n</think>\n\nThe answer is \\( \\boxed{{{rng.randint(1, 999)}}} \\)."


def write_dataset(out: Path, traces: int, seed: int = 5) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    pool = paragraph_pool(rng)
    eval_problems = [make_eval_problem(rng) for _ in range(EVAL_PROBLEMS)]
    (out / "eval.jsonl").write_text("".join(json.dumps({"id": f"e{i}", "problem": p}) + "\n"
                                            for i, p in enumerate(eval_problems)))
    rows_total = math.ceil(traces / 2)
    earlier: list[str] = []
    counts = {"rows": 0, "traces": 0, "exact_copies": 0, "reworded": 0, "contaminated": 0, "incorrect": 0, "bad_rows": 0}
    writer, file_index, batch = None, 0, []
    for row in range(rows_total):
        roll = rng.random()
        if earlier and roll < 0.02:
            problem, counts["exact_copies"] = reformatted(rng.choice(earlier), rng), counts["exact_copies"] + 1
        elif earlier and roll < 0.04:
            problem, counts["reworded"] = reworded(rng.choice(earlier), rng), counts["reworded"] + 1
        elif roll < 0.045:
            problem, counts["contaminated"] = rng.choice(eval_problems), counts["contaminated"] + 1
        else:
            problem = make_problem(rng)[1] + f" (Variant {row}.)"
            if len(earlier) < 5_000:
                earlier.append(problem)
        generations = [make_trace(rng, pool, 2 * row + g) for g in range(2)]
        correct = [rng.random() > 0.03 for _ in generations]
        counts["incorrect"] += correct.count(False)
        record = {"problem": problem, "solution": "", "answer": str(rng.randint(1, 999)),
                  "problem_type": rng.choice(TYPES), "question_type": "math-word-problem",
                  "source": rng.choice(SOURCES), "uuid": f"scale-{seed}-{row:07d}",
                  "is_reasoning_complete": [True, True], "generations": generations,
                  "correctness_math_verify": correct, "correctness_llama": None,
                  "finish_reasons": ["stop", "stop"], "correctness_count": sum(correct)}
        if rng.random() < 0.001:
            record["generations"], counts["bad_rows"] = [], counts["bad_rows"] + 1
        batch.append(record)
        counts["rows"] += 1
        counts["traces"] += len(record["generations"])
        if len(batch) >= ROWS_PER_GROUP or row == rows_total - 1:
            table = pa.Table.from_pylist(batch)
            if writer is None or writer_rows >= ROWS_PER_FILE:
                if writer is not None:
                    writer.close()
                writer = pq.ParquetWriter(out / f"part-{file_index:04d}.parquet", table.schema)
                file_index, writer_rows = file_index + 1, 0
            writer.write_table(table.cast(writer.schema))
            writer_rows += len(batch)
            batch = []
    if writer is not None:
        writer.close()
    (out / "eval.jsonl").rename(out.parent / f"{out.name}-eval.jsonl")  # outside the input directory
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(write_dataset(args.out, args.traces, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

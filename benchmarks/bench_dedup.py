"""Where should near-duplicate detection draw the line? Measured on labelled problem pairs.

    python benchmarks/bench_dedup.py            # 600 base problems x 4 variants, ~20 s
    python benchmarks/bench_dedup.py --quick    # 150 base problems
    python benchmarks/bench_dedup.py --embedding   # also embedding dedup (extra [embed]; +1 min)

Each base problem (benchmarks/problem_synth.py, 20 competition-style templates with random
numbers) is paired with four variants: reformatted and reworded (duplicates: the same problem
as another source writes it), renumbered (the same template with other numbers: a different
problem) and different (another template). For each pair it reports what splitreason's own
steps decide: exact dedup (`problem_key` equality) and MinHash near-dup detection at several
Jaccard thresholds, exactly as `MinHashDedup` decides (word 3-gram shingles, 128 permutations,
the LSH banding datasketch picks for the threshold, the candidate confirmed by its estimated
Jaccard). Results: benchmarks/results/dedup.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from problem_synth import TEMPLATES, make_problem, renumbered, reformatted, reworded  # noqa: E402

from splitreason.curate.dedup import DEFAULT_NEAR_THRESHOLD, MinHashDedup  # noqa: E402
from splitreason.curate.index import DedupIndex  # noqa: E402
from splitreason.curate.text import numbers_key, problem_key  # noqa: E402

THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
EMBEDDING_THRESHOLDS = (0.85, 0.9, 0.95)
DUPLICATE_LABELS = ("reformatted", "reworded")
LABELS = ("reformatted", "reworded", "renumbered", "different")


def pairs(base_count: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(base_count):
        template, base = make_problem(rng)
        other = rng.choice([i for i in range(len(TEMPLATES)) if i != template])
        out += [("reformatted", base, reformatted(base, rng)), ("reworded", base, reworded(base, rng)),
                ("renumbered", base, renumbered(template, rng)), ("different", base, make_problem(rng, other)[1])]
    return out


def flagged(dedup: MinHashDedup, a: str, b: str) -> tuple[bool, float]:
    """Would MinHashDedup, holding `a`, call `b` a near duplicate? (one index per pair, so no other
    problem interferes), and the estimated Jaccard."""
    first, second = dedup.signature(a), dedup.signature(b)
    jaccard = float(np.mean(first.hashvalues == second.hashvalues))
    bands = [slice(i * dedup.rows, (i + 1) * dedup.rows) for i in range(dedup.bands)]  # datasketch's banding
    candidate = any(np.array_equal(first.hashvalues[band], second.hashvalues[band]) for band in bands)
    same = not dedup.same_numbers or numbers_key(a) == numbers_key(b)
    return candidate and same and jaccard >= dedup.threshold, jaccard


def embedding_shares(labelled: list[tuple[str, str, str]], counts: dict[str, int]) -> dict:
    """Share of pairs EmbeddingDedup (same numbers required) calls duplicates, per threshold."""
    from splitreason.curate.dedup import DEFAULT_EMBEDDING_THRESHOLD, EmbeddingDedup

    dedup = EmbeddingDedup()
    encode = lambda texts: dedup.model.encode(texts, batch_size=64, normalize_embeddings=True,  # noqa: E731
                                              show_progress_bar=False)
    cosine = (encode([a for _, a, _ in labelled]) * encode([b for _, _, b in labelled])).sum(axis=1)
    same = [numbers_key(a) == numbers_key(b) for _, a, b in labelled]
    shares = {}
    print(f"\nembedding ({dedup.model_name}), same numbers:  " + "  ".join(f"cos>={t}" for t in EMBEDDING_THRESHOLDS))
    for label in LABELS:
        rows = [i for i, item in enumerate(labelled) if item[0] == label]
        shares[label] = {str(t): round(sum(bool(cosine[i] >= t and same[i]) for i in rows) / counts[label], 4)
                         for t in EMBEDDING_THRESHOLDS}
        print(f"{label:12} " + "  ".join(f"{shares[label][str(t)]:9.1%}" for t in EMBEDDING_THRESHOLDS))
    return {"model": dedup.model_name, "default_threshold": DEFAULT_EMBEDDING_THRESHOLD, "flagged": shares}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bases", type=int)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--embedding", action="store_true", help="also measure embedding dedup (offline MiniLM)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dedup.json")
    args = parser.parse_args()
    labelled = pairs(args.bases or (150 if args.quick else 600), args.seed)
    result: dict = {"benchmark": "dedup", "pairs": len(labelled), "seed": args.seed, "labels": {}, "thresholds": {}}
    jaccards: dict[str, list[float]] = {label: [] for label in LABELS}
    exact = {label: 0 for label in LABELS}
    modes = {"same_numbers": True, "text_only": False}
    decisions = {(mode, t): {label: 0 for label in LABELS} for mode in modes for t in THRESHOLDS}
    index = DedupIndex()  # the checkers only band and sign here; nothing is stored in it
    checkers = {(mode, t): MinHashDedup(index, threshold=t, same_numbers=same) for mode, same in modes.items()
                for t in THRESHOLDS}
    for label, a, b in labelled:
        exact[label] += problem_key(a) == problem_key(b)
        for key, dedup in checkers.items():
            hit, jaccard = flagged(dedup, a, b)
            decisions[key][label] += hit
        jaccards[label].append(jaccard)
    counts = {label: sum(1 for item in labelled if item[0] == label) for label in LABELS}
    for label in LABELS:
        values = sorted(jaccards[label])
        cuts = statistics.quantiles(values, n=20, method="inclusive")
        result["labels"][label] = {"n": counts[label], "duplicate": label in DUPLICATE_LABELS,
                                   "exact_dedup": round(exact[label] / counts[label], 4),
                                   "jaccard": {"p05": round(cuts[0], 3), "median": round(statistics.median(values), 3),
                                               "p95": round(cuts[18], 3)}}
    for mode in modes:
        print(f"\nMinHash, {mode.replace('_', ' ')}:")
        print(f"{'pairs':12} {'n':>5} {'exact':>7}  " + "  ".join(f"J>={t:<4}" for t in THRESHOLDS)
              + "   Jaccard p05/median/p95")
        for label in LABELS:
            shares = [decisions[(mode, t)][label] / counts[label] for t in THRESHOLDS]
            q = result["labels"][label]["jaccard"]
            print(f"{label:12} {counts[label]:5} {exact[label] / counts[label]:7.1%}  "
                  + "  ".join(f"{s:7.1%}" for s in shares) + f"   {q['p05']:.2f} / {q['median']:.2f} / {q['p95']:.2f}")
        result["thresholds"][mode] = {}
        for threshold in THRESHOLDS:
            chosen = decisions[(mode, threshold)]
            caught = sum(chosen[label] for label in DUPLICATE_LABELS)
            duplicates = sum(counts[label] for label in DUPLICATE_LABELS)
            false = sum(chosen[label] for label in LABELS if label not in DUPLICATE_LABELS)
            result["thresholds"][mode][str(threshold)] = {
                "recall_duplicates": round(caught / duplicates, 4),
                "flagged": {label: round(chosen[label] / counts[label], 4) for label in LABELS},
                "precision": round(caught / (caught + false), 4) if caught + false else None,
                "lsh_bands_rows": [checkers[(mode, threshold)].bands, checkers[(mode, threshold)].rows]}
    chosen = result["thresholds"]["same_numbers"][str(DEFAULT_NEAR_THRESHOLD)]
    print(f"\ndefault (threshold {DEFAULT_NEAR_THRESHOLD}, same numbers): recall on duplicates "
          f"{chosen['recall_duplicates']:.1%} (with exact dedup first: reformatted ones never get here), "
          f"precision {chosen['precision']:.1%}, renumbered problems flagged {chosen['flagged']['renumbered']:.1%}")
    result["default_threshold"] = DEFAULT_NEAR_THRESHOLD
    if args.embedding:
        result["embedding"] = embedding_shares(labelled, counts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

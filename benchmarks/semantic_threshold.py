"""Measure where semantic rescue should draw the line: paraphrases of real steps vs. sentences
that are not in the trace. Justifies `splitreason.annotator.semantic.DEFAULT_THRESHOLD`.

Run from the repository root (needs the [embed] extra; never touches the network):

    python benchmarks/semantic_threshold.py            # ~1-2 min on 2 CPU cores
    python benchmarks/semantic_threshold.py --model PATH --per-trace 4

Workload: every generation of the bundled sample (splitreason/data/openr1_sample.jsonl), cut
into segments by the rescuer's own `segment_trace`. Excerpts scored against each trace:

  positives  rule     a segment (>= 40 chars) paraphrased by rule: LaTeX spelled out in words,
                      small numbers written as words, stock phrases reworded ("we get" -> "this
                      gives", "Let me" -> "I'll"), "A, so B" reordered to "B, since A"
             multi    2-3 consecutive segments paraphrased the same way, joined by spaces
             hand     paraphrases written by hand (HAND_WRITTEN), some of two sentences
  negatives  unrelated    cooking, sport, weather ... (UNRELATED), against every trace
             other_problem  real segments of traces of *other* problems (a made-up math step)
             wrong_step     plausible steps for the same problem that the trace never takes
                            (WRONG_STEP; reported, not used to pick the threshold: these are
                            indistinguishable from a paraphrase by meaning alone)

Only excerpts that `Aligner` (fuzzy threshold 0.85) fails to place are kept: exactly those
that reach semantic rescue. Each trace is one `SemanticRescuer.rescue` call with a near-zero
threshold, so the best similarity and the place chosen are the production code path's.
A positive counts as found at the right place when the rescued span overlaps its source.

Suggested threshold: the optimum of Youden's J on a 0.01 grid, J = (positives rescued at the
right place) - (unrelated + other_problem rescued anywhere), the lowest such value on ties; the
lowest value that keeps other_problem false rescues <= 5 % (and unrelated at 0) is reported
beside it. Rescue time per trace is recorded too (it moves with the machine's load).
Figures go to benchmarks/results/semantic_threshold.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from splitreason.annotator.align import Aligner  # noqa: E402
from splitreason.annotator.semantic import SemanticRescuer, segment_trace  # noqa: E402
from splitreason.judges.base import Excerpt  # noqa: E402

SAMPLE = ROOT / "splitreason" / "data" / "openr1_sample.jsonl"
MAX_OTHER_PROBLEM_FPR = 0.05

UNRELATED = [
    "Preheat the oven to 180 degrees and grease a round cake tin with butter.",
    "Whisk the eggs with sugar until pale, then fold in the flour gently.",
    "Simmer the tomato sauce for twenty minutes and season with basil.",
    "The striker curled the free kick into the top corner in the last minute.",
    "It will rain most of the afternoon, with wind from the north-west.",
    "Our train was delayed by forty minutes because of a signal failure.",
    "She planted tulip bulbs along the fence before the first frost.",
    "The museum opens at nine and closes early on public holidays.",
    "Remember to water the ferns twice a week during the summer.",
    "The concert sold out within an hour of the tickets going on sale.",
    "He repaired the bicycle chain and pumped up both tyres.",
    "Install the package and restart the server to apply the update.",
    "The hotel room had a balcony overlooking the harbour.",
    "Knead the dough for ten minutes, then let it rise in a warm place.",
    "The committee will vote on the new budget next Thursday.",
]

# (uuid prefix, verbatim anchors in one step of that trace, a paraphrase written by hand)
HAND_WRITTEN = [
    ("935f5ad6", ["Squaring those directly is doable but a bit messy"],
     "Computing the squares of the roots explicitly would be tedious, so it is easier to use Vieta's relations."),
    ("935f5ad6", ["Plugging in the values: \\( 7^2 - 2"],
     "Substituting the sum 7 and the product 3 yields 49 minus 6, which is 43."),
    ("0dbc85eb", ["So the exponent to reduce by is 6, not 7"],
     "The period should be six rather than seven, so my earlier answer of 2 is incorrect."),
    ("8baf551f", ["For sum 5 nothing like that can happen"],
     "Since no digit can exceed 5 here, the upper limit on each digit never comes into play."),
    ("1936d15b", ["Everything cancels except the last positive term"],
     "The sum telescopes, leaving only sqrt(100) minus sqrt(1), which equals 9."),
    ("41f1980e", ["Wait, that can't be right \u2014 replacing the numerator by 0"],
     "Setting the numerator to zero is a mistake because it discards exactly the term that matters."),
    ("13c1d8f9", ["And \\( \\sqrt{xy} \\leq \\frac{x + y}{2}"],
     "By AM-GM the geometric mean of x and y is at most one half, hence 4 over root xy is at least 8."),
    ("fe6b26f7", ["But if both \\( p, q \\leq 5 \\)"],
     "If p and q were both no bigger than five, their product would be at most 25, which is less than 36."),
    ("8b281d2a", ["Plugging in: \\( (sc)^2 = \\frac{9}{64} \\)"],
     "With (sin θ cos θ)² equal to 9/64 we obtain 1 − 18/64 = 23/32 for the sum of fourth powers."),
    ("5d2623cd", ["Hmm, let me double-check the product \\( 13 \\cdot 14 \\cdot 15"],
     "Verify the product of the side lengths: 13 times 14 is 182, and 182 times 15 is 2730."),
    ("d83cba4b", ["Since 𝑥 and 𝑦 both satisfy"],
     "Both 𝑥 and 𝑦 are roots of t² = 4t − 1, so multiplying by t^(n−2) and adding gives a recurrence."),
    ("ff7b40dd", ["No \u2014 every partial sum is"],
     "Each partial sum stays below 1 and keeps increasing while the gap shrinks to zero, so the series equals 1."),
    ("55f3466d", ["Now, the divisors of \\( n^2 \\) pair up"],
     "The divisors of n squared come in pairs, d matched with n squared over d."),
    ("eefcd217", ["But the problem clearly allows 0, so the answer"],
     "Zero is permitted by the statement, so the count the question asks for is 161."),
    ("3d9a0efb", ["The slope of \\( AC \\) is", "The perpendicular bisector: \\( y - 3"],
     "Side AC rises with slope 3, so a perpendicular line has slope -1/3. "
     "Hence the perpendicular bisector of AC is y - 3 = -(1/3)(x - 1)."),
    ("0dbc85eb", ["Fermat says \\( a^p", "So the exponent to reduce by is 6, not 7"],
     "Fermat's little theorem gives a to the p minus one congruent to 1 modulo p for p not dividing a. "
     "That means the cycle length is 6 and not 7, and 2 was the wrong answer."),
]

# (uuid prefix, a plausible step for that problem that the trace never takes)
WRONG_STEP = [
    ("935f5ad6", "Using the quadratic formula the roots are 3 and 4, so the sum of their squares is 25."),
    ("0dbc85eb", "By Wilson's theorem, 6 factorial is congruent to -1 modulo 7."),
    ("1936d15b", "Integrating one over root x from 1 to 100 estimates the sum at about 18."),
    ("3d9a0efb", "The incircle of the triangle touches side AB at the point (3, 0)."),
    ("fe6b26f7", "The Cauchy-Schwarz inequality gives a lower bound of 24 for x + y."),
    ("8b281d2a", "Squaring the double-angle identity expresses cos 4θ in terms of sin 2θ."),
    ("942f3b3e", "Reducing the equation to a Pell equation gives infinitely many solutions."),
    ("1fae7a27", "The probability is the number of geometric progressions divided by the number of pairs."),
]

_PHRASES = [
    (r"\bLet me\b", "I'll"), (r"\blet me\b", "I'll"), (r"\bwe get\b", "this gives"),
    (r"\bI get\b", "this gives"), (r"\bgives\b", "yields"), (r"\bdouble-check\b", "verify"),
    (r"\bcheck\b", "confirm"), (r"\bcompute\b", "calculate"), (r"\bfind\b", "determine"),
    (r"\bneed to\b", "have to"), (r"\bI need\b", "I require"), (r"\bbecause\b", "since"),
    (r"\bnumber\b", "quantity"), (r"\bequals\b", "is equal to"), (r"\bsimplifies\b", "reduces"),
    (r"\bactually\b", "in fact"), (r"\bprobably\b", "likely"), (r"\bexactly\b", "precisely"),
    (r"\btotal\b", "overall sum"), (r"\bproduct\b", "multiplication result"),
    (r"\bcorrect\b", "right"), (r"\bwrong\b", "incorrect"), (r"\bmatches\b", "agrees with"),
    (r"\bsolutions\b", "answers"), (r"\bsquare\b", "second power"), (r"\bThen\b", "Next"),
    (r"^(Hmm|Wait|Okay|OK|Alright|So|Actually|Now|And|But),?\s+", ""),
]
_LATEX = [  # in this order: \left before \le, \pmod before \pm, \sqrt inside \frac
    (r"\\left|\\right|\\[,;!]", ""), (r"\\[{}()\[\]]", " "), (r"\$", ""),
    (r"\\sqrt\{([^{}]*)\}", r" the square root of \1"), (r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}", r"\1 over \2"),
    (r"\\cdot|\\times", " times "), (r"\\pmod\s*\{?(\w+)\}?", r" modulo \1"), (r"\\pm\b", " plus or minus "),
    (r"\\equiv\b", " is congruent to "), (r"\\leq?\b", " at most "), (r"\\geq?\b", " at least "),
    (r"\^2\b", " squared"), (r"=", " equals "), (r"\\(\w+)", r"\1"), (r"[{}]", " "),
]
_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
         "sixteen seventeen eighteen nineteen twenty".split()


def paraphrase(sentence: str) -> str:
    """A rule-made paraphrase: reordered clauses, reworded phrases, LaTeX and numbers in words."""
    text = sentence
    match = re.match(r"^(.{15,}?), so (.{10,})$", text.rstrip("."))
    if match:  # "A, so B" -> "B, since A"
        first, second = match.group(1), match.group(2)
        text = f"{second[0].upper()}{second[1:]}, since {first[0].lower()}{first[1:]}."
    for pattern, repl in _PHRASES:
        text = re.sub(pattern, repl, text)
    for pattern, repl in _LATEX:
        text = re.sub(pattern, repl, text)
    text = re.sub(r"(?<![\w.])(1?\d|20)(?![\w.])", lambda m: _WORDS[int(m.group(1))], text)
    return " ".join(text.split())


def load_traces() -> list[tuple[str, str]]:
    traces = []
    with open(SAMPLE, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            traces.extend((row["uuid"], text) for text in row["generations"])
    return traces


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def build_cases(traces, rng: random.Random, per_trace: int) -> tuple[list[list[dict]], dict[str, int]]:
    """Per trace, the excerpts to score: {"group", "text", "source" (offsets or None)}; and per
    group, how many made excerpts were dropped because the aligner places them anyway."""
    segments = [[seg for group in segment_trace(text) for seg in group] for _, text in traces]
    all_cases, aligned = [], {}
    for index, (uuid, text) in enumerate(traces):
        aligner = Aligner(text, fuzzy_threshold=0.85)
        cases = []

        def add(group: str, excerpt: str, source) -> None:
            if aligner.align_excerpt(Excerpt(excerpt)) is None:  # else it never reaches rescue
                cases.append({"group": group, "text": excerpt, "source": source})
            else:
                aligned[group] = aligned.get(group, 0) + 1

        groups = segment_trace(text)
        long = [seg for seg in segments[index] if seg[1] - seg[0] >= 40]
        for lo, hi in rng.sample(long, min(per_trace, len(long))):
            add("rule", paraphrase(text[lo:hi]), (lo, hi))
        runs = [group[i:i + size] for group in groups for size in (2, 3) for i in range(len(group) - size + 1)]
        for run in rng.sample(runs, min(max(1, per_trace // 2), len(runs))):
            add("multi", " ".join(paraphrase(text[lo:hi]) for lo, hi in run), (run[0][0], run[-1][1]))
        for prefix, anchors, written in HAND_WRITTEN:
            if uuid.startswith(prefix) and all(anchor in text for anchor in anchors):
                spots = [(text.index(a), text.index(a) + len(a)) for a in anchors]
                covered = [seg for seg in segments[index] if any(overlaps(seg, spot) for spot in spots)]
                add("hand", written, (covered[0][0], covered[-1][1]))
        for prefix, written in WRONG_STEP:
            if uuid.startswith(prefix):
                add("wrong_step", written, None)
        for sentence in UNRELATED:
            add("unrelated", sentence, None)
        others = [j for j, (other, _) in enumerate(traces) if other != uuid]
        for j in rng.sample(others, min(per_trace, len(others))):
            candidates = [seg for seg in segments[j] if seg[1] - seg[0] >= 40]
            if candidates:
                lo, hi = rng.choice(candidates)
                add("other_problem", traces[j][1][lo:hi], None)
        all_cases.append(cases)
    return all_cases, aligned


def distribution(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"n": len(values), "min": round(min(values), 4), "p05": round(q[0], 4), "p25": round(q[1], 4),
            "median": round(q[2], 4), "p75": round(q[3], 4), "p95": round(q[4], 4), "max": round(max(values), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="sentence-transformers model folder (default: packaged)")
    parser.add_argument("--per-trace", type=int, default=6, help="rule paraphrases and other-problem steps per trace")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "semantic_threshold.json")
    args = parser.parse_args()

    traces = load_traces()
    cases, aligned = build_cases(traces, random.Random(args.seed), args.per_trace)
    rescuer = SemanticRescuer(args.model, threshold=1e-6)
    rescuer.load()
    scored, seconds = [], []
    for (uuid, text), trace_cases in zip(traces, cases):
        began = time.perf_counter()
        rescues = rescuer.rescue(text, [case["text"] for case in trace_cases])
        seconds.append(time.perf_counter() - began)
        for case, found in zip(trace_cases, rescues):
            place = None if found is None else (found.start, found.end)
            right = bool(place and case["source"] and overlaps(place, case["source"]))
            scored.append({**case, "similarity": 0.0 if found is None else found.similarity, "right_place": right})

    groups = ("rule", "multi", "hand", "unrelated", "other_problem", "wrong_step")
    sims = {g: [c["similarity"] for c in scored if c["group"] == g] for g in groups}
    positives = [c for c in scored if c["source"] is not None]
    grid = [round(t, 2) for t in np.arange(0.30, 0.91, 0.01)]
    sweep = []
    for t in grid:
        hit = sum(c["similarity"] >= t and c["right_place"] for c in positives) / len(positives)
        fpr = {g: sum(s >= t for s in sims[g]) / max(1, len(sims[g]))
               for g in ("unrelated", "other_problem", "wrong_step")}
        neg = sims["unrelated"] + sims["other_problem"]
        sweep.append({"threshold": t, "recall_right_place": round(hit, 4),
                      "recall": round(sum(c["similarity"] >= t for c in positives) / len(positives), 4),
                      **{f"rescued_{g}": round(v, 4) for g, v in fpr.items()},
                      "youden_j": round(hit - sum(s >= t for s in neg) / len(neg), 4)})
    bounded = next(row for row in sweep
                   if row["rescued_other_problem"] <= MAX_OTHER_PROBLEM_FPR and row["rescued_unrelated"] == 0)
    suggested = max(sweep, key=lambda row: row["youden_j"])  # max() keeps the first (lowest) on ties
    result = {
        "model": rescuer.info["model"], "seed": args.seed, "traces": len(traces), "per_trace": args.per_trace,
        "python": platform.python_version(), "machine": platform.machine(),
        "distributions": {g: distribution(v) for g, v in sims.items()},
        "dropped_because_the_aligner_places_them": aligned,
        "right_place_at_any_similarity": {
            g: round(float(np.mean([c["right_place"] for c in scored if c["group"] == g])), 4)
            for g in ("rule", "multi", "hand")},
        "rescue_seconds_per_trace": distribution(seconds),
        "rule": "Youden's J optimum: positives rescued at the right place minus unrelated+other_problem rescued",
        "suggested": suggested,
        "lowest_with_other_problem_at_most_5_percent": bounded, "sweep": sweep,
        "hand_written": [{k: c[k] for k in ("text", "similarity", "right_place")}
                         for c in scored if c["group"] == "hand"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    print(f"{'group':14} {'n':>4} {'min':>6} {'p05':>6} {'p25':>6} {'median':>6} {'p75':>6} {'p95':>6} {'max':>6}")
    for g, d in result["distributions"].items():
        quantiles = ("min", "p05", "p25", "median", "p75", "p95", "max")
        print(f"{g:14} {d['n']:>4} " + " ".join(f"{d[k]:6.3f}" for k in quantiles))
    print("right place (any similarity):", result["right_place_at_any_similarity"],
          "| made but dropped (the aligner places them):", aligned)
    for row in (bounded, suggested):
        print(f"threshold {row['threshold']:.2f}: positives rescued at the right place "
              f"{row['recall_right_place']:.1%} (rescued anywhere {row['recall']:.1%}); false rescues: "
              f"other_problem {row['rescued_other_problem']:.1%}, unrelated {row['rescued_unrelated']:.1%}, "
              f"wrong_step {row['rescued_wrong_step']:.1%}")
    print(f"suggested threshold ({result['rule']}): {suggested['threshold']:.2f}; "
          f"lowest with <= {MAX_OTHER_PROBLEM_FPR:.0%} other_problem rescued: {bounded['threshold']:.2f}")
    print(f"rescue time per trace: median {result['rescue_seconds_per_trace']['median']:.2f} s; wrote {args.out}")


if __name__ == "__main__":
    main()

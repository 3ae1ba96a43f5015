"""Issue 3's routing targets on a small seeded run of benchmarks/bench_routing.py: at least 95 % of
corrupted annotations (paraphrased or hallucinated quotes, coverage far off target, empty answers,
inconsistent samples) go to review or rejection, at most 10 % of clean ones do, for a run judged
once and a run judged k times alike. Default RoutingPolicy, no semantic rescue.

The full benchmark (2,100 cases) is `python benchmarks/bench_routing.py`; its figures are in
benchmarks/results/routing.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_routing import CLEAN_FLAGGED_MAX, CORRUPTED_FLAGGED_MIN, measure, summarize  # noqa: E402
from routing_testset import CORRUPTIONS, RoutingSetConfig, build_cases, paraphrase  # noqa: E402

from splitreason.annotator.align import normalize  # noqa: E402
from splitreason.annotator.routing import RoutingPolicy  # noqa: E402
from splitreason.judges.parsing import parse_answer  # noqa: E402

pytestmark = pytest.mark.slow  # about 6 s

SMALL = RoutingSetConfig(seed=29, clean=200, per_corruption=30)


@pytest.fixture(scope="module")
def cases():
    return build_cases(SMALL)


@pytest.fixture(scope="module")
def summary(cases):
    policy = RoutingPolicy(target_coverage=SMALL.target_coverage)
    return summarize(measure(cases, policy), policy)


def test_corrupted_annotations_go_to_a_person(summary):
    assert summary["corrupted"]["flagged"] >= CORRUPTED_FLAGGED_MIN
    for kind in CORRUPTIONS:
        assert summary["by_kind"][kind]["n"] == SMALL.per_corruption
        assert summary["by_kind"][kind]["flagged"] >= CORRUPTED_FLAGGED_MIN, (kind, summary["by_kind"][kind])


def test_clean_annotations_are_mostly_accepted(summary):
    assert summary["clean"]["flagged"] <= CLEAN_FLAGGED_MAX, summary["clean"]
    for variant in ("single", f"k{SMALL.samples}"):  # judged once, judged k times: each its own run
        shares = summary["by_variant"][f"clean/{variant}"]
        assert shares["n"] >= 60
        assert shares["flagged"] <= CLEAN_FLAGGED_MAX, (variant, shares)
    assert summary["all_met"]


def test_test_set_is_seeded_and_its_labels_hold(cases):
    tiny = RoutingSetConfig(seed=5, clean=12, per_corruption=4, generated=2)
    assert [(c.case_id, c.answers) for c in build_cases(tiny)] == [(c.case_id, c.answers) for c in build_cases(tiny)]
    by_kind = {kind: [c for c in cases if c.kind == kind] for kind in ("clean", *CORRUPTIONS)}
    for case in by_kind["hallucinated"]:  # injected quotes are not in the trace, even normalized
        trace = normalize(case.trace.text)
        assert case.corrupted_quotes and not any(normalize(q) in trace for q in case.corrupted_quotes)
    for case in by_kind["empty"]:
        assert any(parse_answer(answer) == [] for answer in case.answers)
    for case in by_kind["inconsistent"]:
        assert len(case.answers) == SMALL.samples and case.severity <= 0.3
    for case in by_kind["coverage_off"]:
        far = case.severity >= 0.38 / 0.15 if case.variant.startswith("half") else case.severity <= 0.2 + 1e-9
        assert far, (case.case_id, case.variant, case.severity)
    clean_multi = [c for c in by_kind["clean"] if c.variant != "single"]
    assert clean_multi and all(len(c.answers) == SMALL.samples for c in clean_multi)


def test_paraphrase_rewords_rather_than_copies():
    quote = r"Multiplying both sides by 4 gives \( 4x = 48 \), so \( x = 12 \), which we check next."
    reworded = paraphrase(quote)
    assert reworded != quote
    assert "equals" in reworded and "\\(" not in reworded and "If I multiply" in reworded

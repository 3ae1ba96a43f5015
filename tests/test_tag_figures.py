"""The pieces of train sft and evaluate tags that need no model: what a valid tagged reply is,
how the tag figures are counted from one teacher-forced pass, the instruction found in the
data, and the split by problem."""

from __future__ import annotations

import math

import pytest

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.evaluate.tag_counts import TagCounts, count_row, f1
from splitreason.evaluate.tags import metrics_of
from splitreason.schemas.export import ExportRow, RowProblem, tagged_spans
from splitreason.train.data import find_instruction, split_by_problem

O, C = OPEN_TAG, CLOSE_TAG


@pytest.mark.parametrize("text, problem", [
    (f"a {C} b", "unbalanced"),
    (f"a {O}b", "never closed"),
    (f"a {O}b {O}c{C}{C}", "nested"),
    (f"a {O} \n {C} b", "empty span"),
    (f"a {O}b{C} {C}", "unbalanced"),
])
def test_broken_tags_are_named(text, problem):
    with pytest.raises(RowProblem, match=problem):
        tagged_spans(text)


def test_spans_in_characters():
    text = f"x {O}hard{C} y {O}z{C}"
    spans = tagged_spans(text)
    assert [text[s.start:s.end] for s in spans] == ["hard", "z"]
    assert [text[s.open_at:s.close_end] for s in spans] == [f"{O}hard{C}", f"{O}z{C}"]


def test_both_export_shapes_read_the_same():
    user, reply = {"role": "user", "content": "p\n\ni"}, {"role": "assistant", "content": f"r {O}h{C}"}
    a = ExportRow.from_json({"id": "t:0", "messages": [user, reply]})
    b = ExportRow.from_json({"id": "t:0", "prompt": [user], "completion": [reply]})
    assert (a.prompt, a.completion, a.problem_key) == (b.prompt, b.completion, b.problem_key)
    assert (a.shape, b.shape) == ("messages", "prompt-completion")
    for bad, why in [({"id": 1, "text": "x"}, "not an export row"),
                     ({"id": "a", "messages": [user]}, "must end with the assistant"),
                     ({"id": "a", "messages": [{"role": "tool", "content": "x"}, reply]}, "role 'tool'"),
                     ({"messages": [user, reply]}, "no 'id'"),
                     ({"id": "a", "messages": [user, {"role": "assistant", "content": " "}]}, "reply is empty")]:
        with pytest.raises(RowProblem, match=why):
            ExportRow.from_json(bad)


class Row:
    """An encoded row as models.chat.EncodedRow lays it out (only what the counting reads)."""

    def __init__(self, prompt_len, learned_end, spans):
        self.prompt_len, self.learned_end, self.spans = prompt_len, learned_end, spans


class Span:
    def __init__(self, open_at, start, close_at, after):
        self.open_at, self.start, self.close_at, self.after = open_at, start, close_at, after


def test_counts_on_a_hand_made_row():
    # ids: 0-3 prompt, reply 4..19 (learned_end 20); spans: open tag 7, text 8-10, close 11;
    # open tag 15, text 16, close 17. Position t predicts token t+1.
    row = Row(4, 20, [Span(7, 8, 11, 12), Span(15, 16, 17, 18)])
    OPEN, CLOSE = 100, 101
    greedy = [0] * 19
    greedy[6] = OPEN     # right: the data opens at 7
    greedy[12] = OPEN    # wrong place, 2 positions before the second open (14): a span hit within ±2
    greedy[9] = CLOSE    # inside span 1, one early (the data closes at position 10)
    greedy[16] = CLOSE   # inside span 2, right (the data closes at 16)
    greedy[2] = OPEN     # a prompt position: not scored
    logprob = [math.log(0.5)] * 19
    counts = TagCounts()
    count_row(counts, row, greedy, logprob, {OPEN}, {CLOSE}, window=2)
    assert counts.positions == 16  # positions 3..18
    assert (counts.open_gold, counts.open_predicted, counts.open_hits) == (2, 2, 1)
    assert (counts.close_gold, counts.close_predicted, counts.close_hits) == (2, 2, 1)
    assert counts.span_found == 2
    assert counts.predicted_span_tokens == [2, 1]  # closes after 2 of 3 tokens; after its 1 token
    assert counts.inside_tokens == 4 and counts.reply_tokens == 16 - 4
    metrics = metrics_of(counts, mode="special", window=2)
    assert metrics.open_f1 == pytest.approx(0.5) and metrics.close_f1 == pytest.approx(0.5)
    assert metrics.span_f1 == pytest.approx(1.0)
    assert metrics.offload_share_data == pytest.approx(4 / 12)
    assert metrics.offload_share_predicted == pytest.approx(2 * 1.5 / 12)
    assert metrics.open_prob_mean == pytest.approx(0.5)
    # Span within ±1 only finds the first; a model that never opens has F1 0, not undefined.
    narrow = TagCounts()
    count_row(narrow, row, greedy, logprob, {OPEN}, {CLOSE}, window=1)
    assert narrow.span_found == 1
    silent = TagCounts()
    count_row(silent, row, [0] * 19, logprob, {OPEN}, {CLOSE}, window=2)
    silent_metrics = metrics_of(silent, mode="special", window=2)
    assert silent_metrics.open_f1 == 0.0 and silent_metrics.open_precision is None
    assert silent_metrics.offload_share_predicted == 0.0


def test_a_model_that_opens_but_never_closes_is_not_given_the_datas_share():
    """A predicted span runs to the model's first close at or after the gold open, or to the end of
    the reply: a model that never closes used to be credited with the data's span lengths, and so
    with exactly the data's offload share."""
    row = Row(4, 20, [Span(7, 8, 11, 12), Span(15, 16, 17, 18)])  # as above; tags at 7, 11, 15, 17
    OPEN, CLOSE = 100, 101
    greedy = [0] * 19
    greedy[6] = greedy[14] = OPEN  # both opens right, no close anywhere
    logprob = [math.log(0.5)] * 19
    never = TagCounts()
    count_row(never, row, greedy, logprob, {OPEN}, {CLOSE}, window=2)
    # to the end of the reply (token 19), tags not counted: 8-10, 12-14, 16, 18, 19; and 16, 18, 19
    assert never.predicted_span_tokens == [9, 3] and never.close_predicted == 0
    metrics = metrics_of(never, mode="special", window=2)
    assert metrics.offload_share_data == pytest.approx(4 / 12)
    assert metrics.offload_share_predicted > metrics.offload_share_data
    assert metrics.offload_share_predicted == pytest.approx(1.0)  # 2 opens x 6 tokens over 12, capped at 1
    # A close past the data's close ends the span there (the close tag itself not counted).
    greedy[12] = CLOSE
    late = TagCounts()
    count_row(late, row, greedy, logprob, {OPEN}, {CLOSE}, window=2)
    assert late.predicted_span_tokens == [4, 3] and late.close_predicted == 0  # closes outside spans are not judged


def test_a_text_tag_probability_is_the_product_of_its_tokens():
    row = Row(1, 12, [Span(3, 6, 7, 10)])  # open tag = tokens 3,4,5; close tag = tokens 7,8,9
    logprob = [math.log(0.9)] * 11
    counts = TagCounts()
    count_row(counts, row, [0] * 11, logprob, {1}, {2}, window=0)
    assert counts.open_probs == [pytest.approx(0.9 ** 3)] and counts.close_probs == [pytest.approx(0.9 ** 3)]


def test_f1_edges():
    assert f1(0, 0, 0) == (None, None, None)
    assert f1(0, 3, 0) == (0.0, None, 0.0)
    assert f1(2, 2, 4) == (1.0, 0.5, pytest.approx(2 / 3))


def test_the_instruction_is_the_common_last_paragraph():
    instruction = "While reasoning, wrap the hard steps.\n\nA larger model writes them."
    turns = [f"Problem {i}: add things.\n\n{instruction}" for i in range(3)]
    assert find_instruction(turns) == instruction
    assert find_instruction(["Problem 1.", "Problem 2."]) is None
    assert find_instruction([f"Same end.\n\n{instruction}", f"Other. Same end.\n\n{instruction}"]) == instruction


def test_split_keeps_each_problem_on_one_side():
    def located(problem, index):
        from splitreason.io.export_reader import LocatedRow

        row = ExportRow.from_json({"id": f"{problem}:{index}", "messages": [
            {"role": "user", "content": f"problem {problem}"}, {"role": "assistant", "content": "r"}]})
        return LocatedRow(row, "f.jsonl", problem * 4 + index + 1, "f.jsonl:1")

    rows = [located(p, i) for p in range(25) for i in range(4)]
    train, held = split_by_problem(rows, 0.2, seed=3)
    assert len(train) + len(held) == 100 and 16 <= len(held) <= 24
    assert not {r.row.problem_key for r in train} & {r.row.problem_key for r in held}
    assert split_by_problem(rows, 0.2, seed=3) == (train, held)
    assert split_by_problem(rows, 0.2, seed=4) != (train, held)
    assert split_by_problem(rows, 0.0, seed=3) == (rows, [])

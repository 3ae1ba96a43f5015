"""parse_answer: from what an LLM judge writes to excerpts, and the readings offered for LaTeX."""

from __future__ import annotations

import json

import pytest

from splitreason.judges.parsing import (
    MAX_REASON_CHARS,
    MAX_SPANS,
    UnparseableAnswer,
    answer_schema,
    parse_answer,
    repair_control_characters,
)


def texts(answer: str) -> list[str]:
    return [excerpt.text for excerpt in parse_answer(answer)]


def readings(answer: str) -> list[list[str]]:
    """Every reading of every excerpt, the decoded text first."""
    return [[excerpt.text, *excerpt.alternatives] for excerpt in parse_answer(answer)]


# -- shapes -----------------------------------------------------------------------------------------


def test_plain_object():
    excerpts = parse_answer(json.dumps({"spans": [{"text": "a quote", "reason": "hard"}]}))
    assert len(excerpts) == 1
    assert excerpts[0].text == "a quote" and excerpts[0].reason == "hard" and excerpts[0].alternatives == ()


@pytest.mark.parametrize("answer", [
    '```json\n{"spans": [{"text": "a quote", "reason": "r"}]}\n```',
    '```JSON\n{"spans": [{"text": "a quote", "reason": "r"}]}\n```',
    '```\n{"spans": [{"text": "a quote", "reason": "r"}]}\n```',
    'Here you go:\n```json\n{"spans": [{"text": "a quote", "reason": "r"}]}\n```\nLet me know if {more} is needed.',
    '{"spans": [{"text": "a quote", "reason": "r"}]}\n\nI picked these because {they} are hard.',
    'Sure. {"spans": [{"text": "a quote", "reason": "r"}]} That is all.',
    'I think [1] the {answer} is {"spans": [{"text": "a quote", "reason": "r"}]}',
])
def test_fences_and_prose_around_the_object(answer):
    assert texts(answer) == ["a quote"]


def test_top_level_list_and_plain_string_items():
    assert texts('[{"text": "q1", "reason": "r"}, "q2"]') == ["q1", "q2"]
    assert texts('{"spans": ["one quote", "another"]}') == ["one quote", "another"]
    excerpts = parse_answer('{"spans": ["one quote"]}')
    assert excerpts[0].reason == ""


def test_other_key_names_models_use():
    assert texts('{"excerpts": [{"quote": "q", "why": "w"}]}') == ["q"]
    assert parse_answer('{"difficult_spans": [{"excerpt": "q", "why": "w"}]}')[0].reason == "w"


def test_nested_braces_and_brackets_inside_strings():
    answer = json.dumps({"spans": [{"text": "the set {1, {2}} and ] and } and [x", "reason": "r"}]})
    assert texts(answer) == ["the set {1, {2}} and ] and } and [x"]
    fenced = "```json\n" + answer + "\n```"
    assert texts(fenced) == ["the set {1, {2}} and ] and } and [x"]


def test_raw_newline_inside_a_string_is_accepted():
    assert texts('{"spans": [{"text": "line one\nline two", "reason": "r"}]}') == ["line one\nline two"]


def test_empty_spans_and_blank_items():
    assert parse_answer('{"spans": []}') == []
    assert texts('{"spans": [{"text": "   ", "reason": "r"}, {"text": "kept", "reason": "r"}, 3, null]}') == ["kept"]


def test_long_reason_is_cut():
    excerpts = parse_answer(json.dumps({"spans": [{"text": "q", "reason": "x" * 1000}]}))
    assert len(excerpts[0].reason) == MAX_REASON_CHARS


@pytest.mark.parametrize("answer, message", [
    ("", "empty answer"),
    ("   \n ", "empty answer"),
    ("The hardest part is the algebra.", "no JSON object"),
    ('{"spans": [{"text": "cut off', "no JSON object"),
    ('{"answer": 42}', "no 'spans' key"),
    ('{"spans": "not a list"}', "not a list"),
])
def test_garbage_is_unparseable(answer, message):
    with pytest.raises(UnparseableAnswer, match=message):
        parse_answer(answer)


# -- LaTeX written into JSON without escaping --------------------------------------------------------


def test_properly_escaped_latex_needs_no_repair():
    excerpts = parse_answer(json.dumps({"spans": [{"text": r"\frac{1}{2} and \sqrt{2} and \neq", "reason": "r"}]}))
    assert excerpts[0].text == r"\frac{1}{2} and \sqrt{2} and \neq" and excerpts[0].alternatives == ()


def test_frac_decoded_as_form_feed_is_repaired_as_an_alternative():
    [reading] = readings(r'{"spans": [{"text": "\frac{1}{2} is half", "reason": "r"}]}')
    assert reading[0] == "\x0crac{1}{2} is half"  # what json decoding gives
    assert r"\frac{1}{2} is half" in reading[1:]


@pytest.mark.parametrize("command", [r"\beta", r"\binom", r"\forall", r"\theta", r"\times", r"\rho", r"\right"])
def test_commands_that_start_with_a_json_escape(command):
    [reading] = readings('{"spans": [{"text": "then ' + command + ' x", "reason": "r"}]}')
    assert f"then {command} x" in reading


def test_sqrt_is_an_invalid_escape_and_is_kept_literally():
    [reading] = readings(r'{"spans": [{"text": "\sqrt{2} and \(x\) and \{y\}", "reason": "r"}]}')
    assert reading[0] == r"\sqrt{2} and \(x\) and \{y\}"


def test_invalid_u_escape_keeps_its_letter():
    # "\underline" is not a \uXXXX escape: the backslash is doubled and the "u" kept.
    [reading] = readings(r'{"spans": [{"text": "\underline{x} and \u00e9", "reason": "r"}]}')
    assert reading[0] == "\\underline{x} and \u00e9"


def test_mixed_invalid_and_valid_escapes():
    [reading] = readings(r'{"spans": [{"text": "\sqrt{a} \times \frac{b}{c}", "reason": "r"}]}')
    assert r"\sqrt{a} \times \frac{b}{c}" in reading


def test_plain_item_before_a_latex_item_does_not_hide_the_answer():
    """The raw text fails on the second item's "\\sqrt"; the first item alone must not be taken
    for the answer (it has no "spans" key): the repaired whole object is."""
    answer = r'{"spans": [{"text": "plain words", "reason": "a"}, {"text": "\sqrt{2} is irrational", "reason": "b"}]}'
    assert texts(answer) == ["plain words", r"\sqrt{2} is irrational"]
    assert [excerpt.reason for excerpt in parse_answer(answer)] == ["a", "b"]


def test_newline_ambiguity_then_versus_neq():
    # "\nThen": a real line break before a sentence; "\neq": the LaTeX command.
    [then] = readings(r'{"spans": [{"text": "so x = 2.\nThen y = 3", "reason": "r"}]}')
    assert then[0] == "so x = 2.\nThen y = 3"  # the line break is the primary reading
    [neq] = readings(r'{"spans": [{"text": "x \neq y", "reason": "r"}]}')
    assert neq[0] == "x \neq y" and r"x \neq y" in neq[1:]
    both = parse_answer(r'{"spans": [{"text": "a \neq b.\nThen c", "reason": "r"}]}')[0]
    assert "a \\neq b.\nThen c" in both.alternatives  # repaired where it spells a command, kept elsewhere


def test_repair_control_characters():
    assert repair_control_characters("\x0crac{1}{2}") == r"\frac{1}{2}"
    assert repair_control_characters("\x08eta") == r"\beta"
    assert repair_control_characters("\tfrac12 and \times") == r"\tfrac12 and \times"
    assert repair_control_characters("a\tb") == "a\tb"  # a tab before no command stays a tab
    assert repair_control_characters("x\neq y\nThen") == "x\\neq y\nThen"
    assert repair_control_characters("\right)") == r"\right)"
    assert repair_control_characters("plain text") == "plain text"


def test_backslashes_in_reason_do_not_break_parsing():
    excerpts = parse_answer(r'{"spans": [{"text": "q", "reason": "uses \sqrt and \frac"}]}')
    assert [excerpt.text for excerpt in excerpts] == ["q"]


# -- the schema the judge is asked to follow ---------------------------------------------------------


def test_answer_schema_bounded_and_strict():
    bounded = answer_schema()
    assert bounded["properties"]["spans"]["maxItems"] == MAX_SPANS
    assert bounded["required"] == ["spans"] and bounded["additionalProperties"] is False
    unbounded = answer_schema(bounded=False)
    assert "maxItems" not in unbounded["properties"]["spans"]
    assert "maxLength" not in json.dumps(unbounded)


def test_complete_spans_of_a_truncated_answer() -> None:
    """An answer cut at max_tokens: the quotes it finished, read the way whole answers are."""
    from splitreason.judges.parsing import complete_spans

    cut = '{"spans": [{"text": "so \\\\frac{1}{2} of it", "reason": "a"}, {"text": "then \\sqrt{2}", "reason": "b"}, {"te'
    got = complete_spans(cut)
    assert [e.text for e in got] == ["so \\frac{1}{2} of it", "then \\sqrt{2}"] and [e.reason for e in got] == ["a", "b"]
    # An unescaped \frac decodes to a form feed; the repaired reading is offered, as for whole answers.
    assert "\\frac" in complete_spans('{"spans": [{"text": "\\frac{a}{b}", "reason": ""}, {"t')[0].alternatives[0]
    assert [e.text for e in complete_spans('Sure.\n```json\n{"spans": [{"text": "x y", "reason": "r"}, ')] == ["x y"]
    assert [e.text for e in complete_spans('[{"text": "q", "reason": ""}, {"text": "cut')] == ["q"]
    for nothing in ('{"spans": [{"text": "never finis', '{"spa', "", "prose only", '{"spans": []'):
        assert complete_spans(nothing) == []

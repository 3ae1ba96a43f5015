"""Grading with real math-verify: answers found in model text, compared gold first, from worker
threads, never hanging on a pathological answer; accuracy intervals and majority vote."""

from __future__ import annotations

import threading
import time

import pytest

from splitreason.evaluate.accuracy import majority_vote, summarize, wilson_interval
from splitreason.evaluate.answers import extract_answer
from splitreason.evaluate.grading import Grader, Grade, check_answer

# (model text, gold, correct?) in the shapes AIME and MATH-500 answers take
REAL_LOOKING = [
    ("<think>\n6 * 4 = 24, plus one is 25.\n</think>\nThe answer is \\(\\boxed{25}\\).", "025", True),
    ("So the count is $\\boxed{025}$.", "25", True),
    ("Therefore the answer is 24.", "025", False),
    ("We get $x = \\boxed{\\frac{14}{3}}$.", "\\frac{14}{3}", True),
    ("The final answer is: 14/3.", "\\frac{14}{3}", True),
    ("\\boxed{\\dfrac{14}{3}}", "14/3", True),
    ("Checking each option, the answer is \\boxed{\\text{(C)}}", "\\text{(C)}", True),
    ("**Final Answer**\n\n\\boxed{C}", "\\text{(C)}", True),
    ("**Final Answer**\n\n\\boxed{D}", "\\text{(C)}", False),
    ("The angle is $\\boxed{90^\\circ}$.", "90^\\circ", True),
    ("Answer: 90", "90^\\circ", True),
    ("The solution set is $\\boxed{[-2, 7)}$", "[-2,7)", True),
    ("The solution set is $\\boxed{(-2, 7)}$", "[-2,7)", False),
    ("The point is \\boxed{(3, -1)}.", "(3,-1)", True),
    ("The point is \\boxed{(-1, 3)}.", "(3,-1)", False),
    ("\\boxed{(-\\infty, 0) \\cup (1, \\infty)}", "(-\\infty,0)\\cup(1,\\infty)", True),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt{2}}", True),
    ("$\\frac{14}{3}$", "\\frac{14}{3}", True),  # a prediction made elsewhere: just the answer
    ("first \\boxed{7}, then on reflection \\boxed{8}", "8", True),  # the last box counts
]


def test_answers_are_found_where_a_model_states_them() -> None:
    assert extract_answer("so \\boxed{\\frac{1}{2}} and later \\boxed{\\text{(C)}}.") == "\\text{(C)}"
    assert extract_answer("The answer is 25.") == "25"
    assert extract_answer("Answer: 1, 2, 3") == "1, 2, 3"
    assert extract_answer("the answer is 12, because 3 * 4 = 12. Done.") == "12"
    assert extract_answer("The final answer is: $\\frac{14}{3}$.") == "\\frac{14}{3}"
    assert extract_answer("**Final Answer**\n\n\\[ 90^\\circ \\]") == "90^\\circ"
    assert extract_answer("x</think>The answer is 3. \\boxed{9} was a typo") == "9"
    assert extract_answer("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"
    assert extract_answer("025") == "025"
    # no answer: a cut-off box, an empty one, reasoning that never states one, a sentence, nothing
    for text in ("so we get \\boxed{\\frac{14", "\\boxed{}", "Let me compute 6 * 4 = 24.\nThen add 1 to get 25",
                 "still thinking about it", "", "   "):
        assert extract_answer(text) is None, text


def test_check_answer_in_process_gold_first() -> None:
    verdict = check_answer("\\boxed{25}", "025")
    assert verdict == Grade("correct", "25", "025", "25")
    assert check_answer("no answer anywhere in this long\ntext", "5").status == "no_answer"
    assert check_answer("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}").correct


@pytest.fixture(scope="module")
def grader():
    with Grader(timeout_s=8, workers=2) as grader:
        yield grader


def test_real_looking_answers_graded_from_worker_threads(grader: Grader) -> None:
    results: dict[int, Grade] = {}

    def grade(index: int) -> None:
        text, gold, _ = REAL_LOOKING[index]
        results[index] = grader.grade(text, gold)

    threads = [threading.Thread(target=grade, args=(index,)) for index in range(len(REAL_LOOKING))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == len(REAL_LOOKING)
    wrong = [(REAL_LOOKING[i][:2], results[i]) for i in range(len(REAL_LOOKING))
             if results[i].correct != REAL_LOOKING[i][2]]
    assert not wrong, wrong
    for index, verdict in results.items():
        assert verdict.gold == REAL_LOOKING[index][1] and verdict.answer  # the answer and the gold are kept
        assert verdict.status in ("correct", "wrong")


def test_no_answer_is_wrong_and_counted(grader: Grader) -> None:
    verdicts = grader.grade_many([("I am not sure how to proceed here\nso I stop", "5"), ("\\boxed{5}", "5")])
    assert [verdict.status for verdict in verdicts] == ["no_answer", "correct"]
    assert verdicts[0].answer is None and not verdicts[0].correct
    summary = summarize({"p": verdicts})
    assert summary.no_answer == 1 and summary.correct == 1 and summary.accuracy == 0.5


@pytest.mark.slow
def test_pathological_answer_times_out_softly_and_the_worker_is_reused(grader: Grader) -> None:
    killed_before = grader.killed_workers
    started = time.monotonic()
    verdict = grader.grade("so the result is \\boxed{9^{9^{9^{9}}}}", "1")
    elapsed = time.monotonic() - started
    assert verdict.status == "timeout" and not verdict.correct
    assert verdict.answer == "9^{9^{9^{9}}}" and verdict.gold == "1"
    assert elapsed < grader.timeout_s + 2
    assert grader.killed_workers == killed_before  # the soft limit ended it inside the worker
    assert grader.grade("\\boxed{2}", "2").correct  # and the grader goes on


@pytest.mark.slow
def test_hard_limit_kills_a_stuck_worker_and_a_fresh_one_takes_over() -> None:
    # A soft limit beyond the hard one leaves only the kill: what happens when a computation
    # ignores signals (a C-level big-integer operation).
    with Grader(timeout_s=3, soft_timeout_s=60, workers=1) as grader:
        assert grader.grade("\\boxed{3}", "3").correct  # the worker is up before the clock runs
        started = time.monotonic()
        verdict = grader.grade("\\boxed{10^{10^{10}}}", "1")
        assert verdict.status == "timeout" and time.monotonic() - started < 3 + 2
        assert grader.killed_workers == 1
        assert grader.grade("The answer is 4.", "4").correct  # a new worker


def test_wilson_interval() -> None:
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.3968, abs=1e-4) and high == pytest.approx(0.8922, abs=1e-4)
    assert wilson_interval(0, 30)[0] == 0.0 and 0.1 < wilson_interval(0, 30)[1] < 0.12  # never below 0
    assert wilson_interval(30, 30)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def _v(status: str, answer: str | None, canonical: str | None = None) -> Grade:
    return Grade(status, answer, "g", canonical if canonical is not None else answer)  # type: ignore[arg-type]


def test_majority_vote() -> None:
    # one answer written two ways counts as one ("1/2" and "\frac{1}{2}" parse alike)
    wrong_twice = [_v("wrong", "\\frac{1}{2}", "1/2"), _v("correct", "3"), _v("wrong", "1/2", "1/2")]
    assert not majority_vote(wrong_twice).correct
    assert majority_vote([_v("correct", "3"), _v("correct", "03"), _v("wrong", "4")]).correct
    # a tie goes to the answer given first
    assert majority_vote([_v("wrong", "4"), _v("correct", "3")]).answer == "4"
    assert majority_vote([_v("correct", "3"), _v("wrong", "4")]).correct
    # samples without an answer, or whose grading timed out, do not vote
    assert majority_vote([_v("no_answer", None), _v("timeout", "x"), _v("correct", "3")]).correct
    assert majority_vote([_v("no_answer", None)]) is None


def test_summary_over_problems() -> None:
    summary = summarize({
        "a": [_v("correct", "1"), _v("wrong", "2"), _v("correct", "1")],  # majority right
        "b": [_v("wrong", "5"), _v("wrong", "5"), _v("correct", "7")],  # majority wrong, covered
        "c": [_v("no_answer", None), _v("no_answer", None), _v("no_answer", None)],  # nothing to vote on
    })
    assert (summary.samples, summary.correct, summary.no_answer) == (9, 3, 3)
    assert summary.accuracy == pytest.approx(3 / 9)
    assert summary.accuracy_ci95 == wilson_interval(3, 9)
    assert (summary.problems, summary.majority_correct) == (3, 1)
    assert summary.majority_accuracy == pytest.approx(1 / 3) and summary.coverage == pytest.approx(2 / 3)
    assert summary.samples_per_problem == (3, 3)


@pytest.mark.slow
def test_a_worker_stuck_in_a_computation_dies_with_its_killed_parent(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, threading\n"
        "from splitreason.evaluate.grading import Grader\n"
        "grader = Grader(timeout_s=120, soft_timeout_s=120, workers=1)\n"
        "assert grader.grade('\\\\boxed{1}', '1').correct\n"
        "threading.Thread(target=grader.grade, args=('\\\\boxed{10^{10^{10}}}', '1'), daemon=True).start()\n"
        "print('stuck', flush=True)\n"
        "threading.Event().wait()\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout.readline().strip() == "stuck"
        time.sleep(1)
        workers = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 1
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)

    def running(pid: str) -> bool:  # a zombie waiting for its reaper has stopped running
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running(workers[0]):
        time.sleep(0.2)
    assert not running(workers[0]), "the worker outlived its parent"

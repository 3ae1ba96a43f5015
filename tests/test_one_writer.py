"""One run per output directory, and nothing half-made by a failed start (issue 9, items 1 and 2).

Real `splitreason` processes on one OUT: through the offline judge and through the scripted
OpenAI-compatible judge server (tests/judge_server.py, a test double for an LLM server). The
second writer must be refused at once with the holder named, no trace may be written twice, and
run.json must say what happened; a SIGKILLed holder never blocks the next run. A run that cannot
start leaves OUT as it was, and no OUT where there was none.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from splitreason.io.lock import LOCK_NAME, OutputLock, lock_path_for_file
from tests.helpers import (annotations, assert_one_clean_error, cli_command, cli_env, free_port, ok, openr1_record,
                           read_jsonl, reasoning_trace, run_cli)
from tests.judge_server import case_rows

JUDGE = "openai:scripted-judge"


def rows(count: int, paragraphs: int = 3) -> list[dict]:
    return [openr1_record(f"w{i}", [reasoning_trace(i, paragraphs)]) for i in range(count)]


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(XDG_CONFIG_HOME="/nonexistent"))


def finish(process: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def wait_for_holder(out: Path, process: subprocess.Popen, timeout: float = 60) -> dict:
    """The holder line `process` wrote into OUT/.lock once it took the lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, finish(process).stderr
        try:
            holder = json.loads((out / LOCK_NAME).read_text())
            if holder["pid"] == process.pid:
                return holder
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"{out} was never locked by pid {process.pid}")


def wait_for_lines(path: Path, lines: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it wrote enough to be stopped mid-run"
        if path.exists() and path.read_bytes().count(b"\n") >= lines:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {lines} lines")


def judged_run(write_jsonl, server, out: Path, traces: int) -> tuple:
    """`annotate` arguments for `traces` traces judged by the scripted server, two at a time."""
    source = write_jsonl("in.jsonl", case_rows(["ok"] * traces, paragraphs=4))
    return ("annotate", source, "-o", out, "--judge", JUDGE, "--base-url", server.base_url, "--concurrency", "2",
            "--no-progress")


def assert_refused_by(result: subprocess.CompletedProcess, holder_pid: int, out: Path) -> str:
    line = assert_one_clean_error(result, f"output directory {out} is in use by pid {holder_pid} on "
                                          f"{socket.gethostname()} (splitreason annotate", ", since 20")
    assert result.returncode == 1
    return line


def assert_each_trace_once(out: Path, expected: int) -> None:
    """No trace twice, done.json and run.json saying what the file holds, no lock left behind."""
    records = annotations(out)
    ids = Counter(record["trace_id"] for record in records)
    assert len(records) == expected and max(ids.values()) == 1
    [done] = (out / "annotations").glob("*.done.json")
    done = json.loads(done.read_text())
    assert done["count"] == expected
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["state"] == "complete"
    assert sum(manifest["totals"]["status"].values()) == expected
    assert not (out / LOCK_NAME).exists()


# -- item 1: one writer per OUT ------------------------------------------------------------------


@pytest.mark.slow
def test_two_annotate_runs_on_one_out_one_is_refused_no_trace_twice(tmp_path: Path, write_jsonl) -> None:
    """The issue's scenario: two runs half a second apart used to write 4,167 lines for 2,400 traces."""
    source = write_jsonl("in.jsonl", rows(2400))
    out = tmp_path / "out"
    first = start("annotate", source, "-o", out, "--no-progress")
    holder = wait_for_holder(out, first)
    assert holder["command"].startswith("splitreason annotate") and str(out) in holder["command"]
    second = finish(start("annotate", source, "-o", out, "--no-progress"))
    assert first.poll() is None, "the first run should still be running when the second is refused"
    assert_refused_by(second, first.pid, out)
    ok(finish(first))
    assert_each_trace_once(out, 2400)
    assert len(json.loads((out / "run.json").read_text())["invocations"]) == 1  # the refused run wrote nothing


@pytest.mark.slow
def test_two_runs_through_an_openai_judge_one_is_refused_no_request_twice(tmp_path: Path, judge_server,
                                                                          write_jsonl) -> None:
    server = judge_server(latency=0.1)  # 120 traces, 2 at a time: the first run lasts ~6 s
    out = tmp_path / "out"
    args = judged_run(write_jsonl, server, out, 120)
    first = start(*args)
    wait_for_holder(out, first)
    second = finish(start(*args))
    assert_refused_by(second, first.pid, out)
    ok(finish(first))
    assert_each_trace_once(out, 120)
    assert len(server.log) == 120  # every trace asked once: the refused run sent nothing
    manifest = json.loads((out / "run.json").read_text())
    assert len(manifest["invocations"]) == 1 and manifest["invocations"][0]["requests"] == 120


@pytest.mark.slow
def test_a_sigkilled_holder_never_blocks_the_rerun_and_readers_work_meanwhile(tmp_path: Path, judge_server,
                                                                              write_jsonl) -> None:
    server = judge_server(latency=0.2)  # 100 traces, 2 at a time: ~10 s, long enough to read and kill it
    out = tmp_path / "out"
    args = judged_run(write_jsonl, server, out, 100)
    holder = start(*args)
    wait_for_holder(out, holder)
    wait_for_lines(out / "annotations" / "shard-00000-of-00001.jsonl", 10, holder)

    # Readers take no lock: stats and export read OUT while the run writes it, complete lines only.
    stats = ok(run_cli("stats", out, "--json"))
    assert json.loads(stats.stdout)["traces"] >= 10
    exported = tmp_path / "partial.jsonl"
    ok(run_cli("export", out, "-o", exported))
    assert all(json.loads(line)["messages"] for line in exported.read_text().splitlines())

    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    done_before = len(annotations(out))
    assert (out / LOCK_NAME).exists()  # the dead holder's stale file stays; its lock is gone
    rerun = ok(run_cli(*args, timeout=300))
    assert "error" not in rerun.stderr.lower()
    assert_each_trace_once(out, 100)
    manifest = json.loads((out / "run.json").read_text())
    assert [invocation["already_done"] for invocation in manifest["invocations"]] == [done_before]


@pytest.mark.slow
def test_every_writer_is_refused_while_another_process_holds_its_output(tmp_path: Path, sample_in_review: Path,
                                                                        write_jsonl) -> None:
    """annotate, merge, shard, curate into a locked directory; export and report onto a locked file:
    each refused at once with one line naming the holder (exit 1), after its own checks passed, and
    the output untouched."""
    source = write_jsonl("in.jsonl", rows(3))
    dirs = {name: tmp_path / name for name in ("annotate", "merge", "shard", "curate")}
    files = {"export": tmp_path / "train.jsonl", "report": tmp_path / "report.html"}
    locks = [OutputLock(path / LOCK_NAME, f"output directory {path}", command="splitreason test holder")
             for path in dirs.values()]
    locks += [OutputLock(lock_path_for_file(path), f"{name} target {path}", command="splitreason test holder")
              for name, path in files.items()]
    for path in dirs.values():
        path.mkdir()
    for lock in locks:
        lock.acquire()
    try:
        attempts = {
            "annotate": run_cli("annotate", source, "-o", dirs["annotate"], "--no-progress"),
            "merge": run_cli("merge", sample_in_review, "-o", dirs["merge"]),
            "shard": run_cli("shard", source, "-o", dirs["shard"], "--shards", "2"),
            "curate": run_cli("curate", source, "-o", dirs["curate"], "--no-progress"),
            "export": run_cli("export", sample_in_review, "-o", files["export"]),
            "report": run_cli("report", sample_in_review, "-o", files["report"], "--no-progress"),
        }
    finally:
        for lock in locks:
            lock.release()
    _each_refused_by_this_holder(attempts, dirs)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*dirs, "in.jsonl"])


@pytest.mark.slow
def test_grade_hf_export_training_and_offload_are_refused_while_their_output_is_held(
        tmp_path: Path, write_jsonl, offload_export, tagged_model: Path, large_model: Path) -> None:
    """`evaluate grade -o`, `export --hf-dataset`, `train sft`, `train grpo` and `evaluate offload`,
    each with its output held by this process: refused with one line naming the holder (exit 1),
    before any model is loaded, the held output untouched (export claims its dataset directory before
    it writes a row, so its -o JSONL is not written either). Run side by side: each is a fresh
    interpreter importing torch."""
    from tests.offload_fixtures import TRAIN_ARGS

    sample = tmp_path / "sample"
    ok(run_cli("annotate", "-o", sample, "--no-progress"))  # the bundled sample: some traces accepted
    problem = "Problem 20000: there are 10 apples in a basket, and 3 more arrive; work out the value step by step."
    eval_set = write_jsonl("eval.jsonl", [{"id": f"q{i}", "problem": problem.replace("20000", str(20000 + i)),
                                           "answer": "13"} for i in range(4)])
    predictions = write_jsonl("predictions.jsonl", [{"id": "q0", "text": "\\boxed{13}"}])
    files = {"grade": tmp_path / "graded.jsonl", "hf": tmp_path / "hf"}
    dirs = {name: tmp_path / name for name in ("sft", "grpo", "offload")}
    locks = [OutputLock(lock_path_for_file(path), f"{name} output {path}", command="splitreason test holder")
             for name, path in files.items()]
    locks += [OutputLock(path / LOCK_NAME, f"output directory {path}", command="splitreason test holder")
              for path in dirs.values()]
    for path in dirs.values():
        path.mkdir()
    commands = {
        "grade": ("evaluate", "grade", predictions, "--eval-set", eval_set, "-o", files["grade"]),
        "hf": ("export", sample, "-o", tmp_path / "train.jsonl", "--hf-dataset", files["hf"]),
        "sft": ("train", "sft", offload_export.train, "--model", offload_export.base_model, "-o", dirs["sft"],
                *TRAIN_ARGS, "--no-progress"),
        "grpo": ("train", "grpo", "--model", tagged_model, "--problems", eval_set, "-o", dirs["grpo"],
                 "--num-generations", "2", "--batch-size", "2", "--max-completion-length", "16", "--no-progress"),
        "offload": ("evaluate", "offload", "--small", tagged_model, "--large", large_model, "--eval-set", eval_set,
                    "-o", dirs["offload"], "--max-tokens", "16", "--no-progress"),
    }
    env = cli_env(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for lock in locks:
        lock.acquire()
    try:
        processes = {name: subprocess.Popen(cli_command(*args), env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
                     for name, args in commands.items()}
        attempts = {}
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=600)
            attempts[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    finally:
        for lock in locks:
            lock.release()
    _each_refused_by_this_holder(attempts, dirs)
    assert not files["grade"].exists() and not files["hf"].exists() and not (tmp_path / "train.jsonl").exists()


@pytest.mark.slow
def test_curate_holds_its_lock_through_the_swap_into_place(tmp_path: Path, write_jsonl) -> None:
    """curate writes into a work directory and swaps it in at the end: the lock goes with it, and a
    finished curate leaves no lock file."""
    source = write_jsonl("in.jsonl", rows(6))
    out = tmp_path / "curated"
    ok(run_cli("curate", source, "-o", out, "--no-progress"))
    ok(run_cli("curate", source, "-o", out, "--overwrite", "--no-progress"))
    assert not any(p.name.endswith(".lock") for p in out.iterdir())
    assert not list(tmp_path.glob(".curated.curate-*"))
    ok(run_cli("annotate", out, "-o", tmp_path / "annotated", "--no-progress"))


# -- item 2: nothing half-made by a failed start -----------------------------------------------------


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("why", ["missing input", "unknown hub id", "unreachable judge", "parent is a file"])
def test_a_run_that_cannot_start_creates_nothing(tmp_path: Path, write_jsonl, why: str) -> None:
    source = write_jsonl("in.jsonl", rows(2))
    out = tmp_path / "o2"
    args = {
        "missing input": ("annotate", tmp_path / "missing.jsonl", "-o", out),
        "unknown hub id": ("annotate", "nonexistent-owner-xyz/no-such-dataset", "-o", out),
        "unreachable judge": ("annotate", source, "-o", out, "--judge", JUDGE, "--base-url",
                              f"http://127.0.0.1:{free_port()}/v1"),
        "parent is a file": ("annotate", source, "-o", source / "out"),
    }[why]
    result = run_cli(*args, "--no-progress")
    assert_one_clean_error(result)
    # The tests' hub is offline: an unknown id cannot be told from an unreachable hub, so exit 1.
    assert result.returncode == (1 if why in ("unreachable judge", "unknown hub id") else 2)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_fixing_the_input_and_changing_a_setting_after_a_failed_start_works(tmp_path: Path, write_jsonl) -> None:
    """The issue's sequence: `annotate missing.jsonl -o o2` used to leave run.json, and the fixed
    command with another setting was then refused as "made with different settings"."""
    out = tmp_path / "o2"
    assert run_cli("annotate", tmp_path / "missing.jsonl", "-o", out, "--no-progress").returncode == 2
    source = write_jsonl("in.jsonl", rows(3))
    ok(run_cli("annotate", source, "-o", out, "--target-coverage", "0.2", "--no-progress"))
    assert json.loads((out / "run.json").read_text())["config"]["target_coverage"] == 0.2


@pytest.mark.slow
def test_an_out_that_annotated_nothing_is_not_bound_to_its_first_settings(tmp_path: Path, write_jsonl) -> None:
    bad = write_jsonl("bad.jsonl", ['{"not": "a record"}', "[1, 2]"])
    out = tmp_path / "out"
    ok(run_cli("annotate", bad, "-o", out, "--target-coverage", "0.3", "--no-progress"))
    assert len(read_jsonl(out / "rejects.jsonl")) == 2 and not annotations(out)

    good = write_jsonl("good.jsonl", rows(3))
    ok(run_cli("annotate", good, "-o", out, "--no-progress"))  # other input, other setting: accepted
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["config"]["target_coverage"] == 0.15 and manifest["config"]["input"] == str(good)
    assert len(manifest["invocations"]) == 1 and manifest["totals"]["input_rejects"] == 0
    assert not (out / "rejects.jsonl").exists()  # the other input's rejects went with its settings
    assert len(annotations(out)) == 3

    # Now OUT holds annotations: it is bound to their settings, and a refused run changes nothing.
    before = snapshot(out)
    refused = run_cli("annotate", good, "-o", out, "--target-coverage", "0.3", "--no-progress")
    assert_one_clean_error(refused, "different settings", "target_coverage: 0.15 -> 0.3")
    assert refused.returncode == 2 and snapshot(out) == before


@pytest.mark.slow
def test_a_run_refused_at_the_start_leaves_an_existing_out_byte_for_byte(tmp_path: Path, write_jsonl) -> None:
    source = write_jsonl("in.jsonl", rows(3))
    out = tmp_path / "out"
    ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    before = snapshot(out)
    for args in ([source, "--judge", JUDGE, "--base-url", f"http://127.0.0.1:{free_port()}/v1"],  # unreachable
                 [source, "--judge", "nope"],  # unknown judge
                 [source, "--samples", "3"],  # the offline judge cannot sample
                 [tmp_path / "missing.jsonl"]):  # no input
        result = run_cli("annotate", *args, "-o", out, "--no-progress")
        assert_one_clean_error(result)
        assert snapshot(out) == before, args


def _each_refused_by_this_holder(attempts: dict, dirs: dict) -> None:
    """Every command refused in one line naming this test process as the holder (exit 1); the held
    directories left empty."""
    for name, result in attempts.items():
        line = assert_one_clean_error(result, f"is in use by pid {os.getpid()}", "(splitreason test holder, since")
        assert result.returncode == 1, (name, line)
    assert all(not any(path.iterdir()) for path in dirs.values())

"""SIGKILL in the middle of `splitreason annotate`, then the same command again.

The contract: every selected trace ends in OUT exactly once (no duplicates, no torn lines), the
resumed OUT equals an uninterrupted run, and no judge answer that was already committed to the
request cache before the kill is ever requested again.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import openr1_record, reasoning_trace
from tests.helpers import annotations, cli_command, cli_env, ok, read_jsonl, run_cli

SHARD = "annotations/shard-00000-of-00001.jsonl"


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_when(command: list[str], path: Path, lines: int, *, deadline: float = 60.0) -> tuple[int, bool]:
    """Start `command`, SIGKILL it once `path` has `lines` lines; (lines at the kill, whether it was killed)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env())
    try:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            seen = _count_lines(path)
            if seen >= lines:
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                return seen, process.returncode == -signal.SIGKILL
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                assert process.returncode == 0, stderr
                return seen, False
            time.sleep(0.005)
        raise AssertionError(f"{path} never reached {lines} lines")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stderr:
            process.stderr.close()


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())


def finish(process: subprocess.Popen, timeout: float = 120) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _cached_trace_ids(out: Path) -> set[str]:
    """Trace ids with a committed answer in OUT/cache.sqlite (read after the writer was killed)."""
    db = sqlite3.connect(out / "cache.sqlite")
    try:
        return {trace_id for (trace_id,) in db.execute("SELECT trace_id FROM answers WHERE ok = 1")}
    finally:
        db.close()


def _cache_keys(out: Path) -> set[str]:
    db = sqlite3.connect(out / "cache.sqlite")
    try:
        return {key for (key,) in db.execute("SELECT key FROM answers")}
    finally:
        db.close()


def _assert_each_once(out: Path, expected_ids: set[str]) -> list[dict]:
    raw = (out / SHARD).read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.decode("utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line is a whole JSON object
    ids = [record["trace_id"] for record in records]
    assert len(ids) == len(set(ids)), "a trace was annotated twice"
    assert set(ids) == expected_ids
    return records


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path: Path, judge_server, write_jsonl) -> None:
    # One case tag per trace, so the server's log says which trace every request was for.
    traces = 40
    rows = [openr1_record(f"u{i:03d}", [reasoning_trace(i, 5)], problem=f"Problem {i} [case:t{i:03d}]")
            for i in range(traces)]
    source = write_jsonl("in.jsonl", rows)
    case_to_trace = {f"t{i:03d}": f"u{i:03d}:0" for i in range(traces)}
    server = judge_server(latency=0.08)
    out, reference = tmp_path / "out", tmp_path / "reference"

    def command(target: Path, url: str = server.base_url) -> list[str]:
        return cli_command("annotate", source, "-o", target, "--judge", "openai:scripted-judge", "--base-url",
                           url, "--concurrency", "4", "--no-progress")

    uninterrupted = start(command(reference, judge_server(latency=0.08).base_url))
    seen, killed = _kill_when(command(out), out / SHARD, 10)
    assert killed, "the run finished before it could be killed; raise the server latency"
    assert 10 <= seen < traces
    log_before_kill = list(server.log)
    cached_before = _cached_trace_ids(out)
    keys_before = _cache_keys(out)
    raw = (out / SHARD).read_bytes()
    lines = raw[: raw.rfind(b"\n") + 1].splitlines(keepends=True)  # without a torn tail, if any
    done_before = {json.loads(line)["trace_id"] for line in lines}
    print(f"killed at {seen} lines: {len(done_before)} done, {len(cached_before)} cached, "
          f"{len(log_before_kill)} requests logged, {sum(e.answered for e in log_before_kill)} answered")
    assert done_before <= cached_before  # an annotation is written only after its answer is cached
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["state"] == "running"

    # Lose the last three records (as a power cut before the fsync could), whose answers the
    # cache does hold, and leave a write cut short: a partial line for a trace not done yet.
    lost = {json.loads(line)["trace_id"] for line in lines[-3:]}
    done_before -= lost
    pending = sorted(set(case_to_trace.values()) - done_before - lost)[0]
    (out / SHARD).write_bytes(b"".join(lines[:-3]) + b'{"trace_id": "' + pending.encode() + b'", "problem": "Pro')

    resumed = ok(subprocess.run(command(out), capture_output=True, text=True, env=cli_env(), timeout=120))
    log_after = server.log[len(log_before_kill):]
    records = _assert_each_once(out, set(case_to_trace.values()))
    assert pending in {record["trace_id"] for record in records}
    assert lost <= cached_before

    # No answer that was committed before the kill was requested again; the resumed requests are
    # exactly the traces that had no cached answer.
    answered_and_cached = {entry.payload_sha for entry in log_before_kill
                           if entry.answered and case_to_trace[entry.case] in cached_before}
    resent = [entry for entry in log_after if entry.payload_sha in answered_and_cached]
    assert not resent, f"cached answers requested again: {[e.case for e in resent]}"
    assert {case_to_trace[entry.case] for entry in log_after} == set(case_to_trace.values()) - cached_before
    assert _cache_keys(out) >= keys_before
    assert "resumed (already done)" in resumed.stderr
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["state"] == "complete"
    assert manifest["totals"]["status"] == {"accepted": traces}
    last = manifest["invocations"][-1]
    assert last["already_done"] == len(done_before)
    assert last["cache_hits"] == len(cached_before - done_before)
    assert last["requests"] == len(log_after)

    # The same command into a fresh OUT, never interrupted (run alongside, on its own server),
    # gives the same records.
    ok(finish(uninterrupted))
    assert annotations(out) == annotations(reference)

    # Run again: nothing left to do, nothing sent, files unchanged.
    before = (out / SHARD).read_bytes()
    log_size = len(server.log)
    ok(subprocess.run(command(out), capture_output=True, text=True, env=cli_env(), timeout=120))
    assert len(server.log) == log_size
    assert (out / SHARD).read_bytes() == before


def test_torn_last_lines_in_outputs_are_repaired_on_resume(tmp_path: Path, write_jsonl) -> None:
    rows = [openr1_record(f"u{i}", [reasoning_trace(i, 4)]) for i in range(6)]
    rows.insert(2, "{not json")  # so that rejects.jsonl exists
    source = write_jsonl("in.jsonl", rows)
    out = tmp_path / "out"
    ok(run_cli("annotate", source, "-o", out, "--no-progress", "--limit", "3"))
    full = (out / SHARD).read_bytes()
    # Cut the last annotation in half (as a crash mid-write would), and tear rejects.jsonl too.
    lines = full.splitlines(keepends=True)
    (out / SHARD).write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    rejects = (out / "rejects.jsonl").read_bytes()
    (out / "rejects.jsonl").write_bytes(rejects + b'{"origin": "x", "ro')

    # Reading commands must not choke on a torn tail either.
    stats = json.loads(ok(run_cli("stats", out, "--json")).stdout)
    assert stats["traces"] == 2

    ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    records = _assert_each_once(out, {f"u{i}:0" for i in range(6)})
    assert all(record["status"] == "accepted" for record in records)
    assert read_jsonl(out / "rejects.jsonl") == [json.loads(line) for line in rejects.splitlines()]

    reference = tmp_path / "reference"
    ok(run_cli("annotate", source, "-o", reference, "--no-progress"))
    assert (out / SHARD).read_bytes() == (reference / SHARD).read_bytes()


@pytest.mark.slow
def test_heuristic_kill_and_resume_on_a_larger_input(tmp_path: Path, write_jsonl) -> None:
    traces = 300
    rows = [openr1_record(f"h{i:04d}", [reasoning_trace(i, 16)]) for i in range(traces)]
    source = write_jsonl("big.jsonl", rows)
    out, reference = tmp_path / "out", tmp_path / "reference"
    expected = {f"h{i:04d}:0" for i in range(traces)}

    # A first pass with --limit (settings unchanged: --limit only bounds the work of one call).
    ok(run_cli("annotate", source, "-o", out, "--no-progress", "--limit", "40"))
    assert len(read_jsonl(out / SHARD)) == 40

    # Then the full run, killed part-way when the machine is slow enough to catch it.
    uninterrupted = start(cli_command("annotate", source, "-o", reference, "--no-progress"))
    seen, killed = _kill_when(cli_command("annotate", source, "-o", out, "--no-progress"), out / SHARD, 80)
    print(f"killed: {killed} at {seen} lines")
    ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    _assert_each_once(out, expected)
    manifest = json.loads((out / "run.json").read_text())
    if killed:
        assert manifest["invocations"][-1]["already_done"] >= seen
    assert manifest["totals"]["status"] == {"accepted": traces}

    ok(finish(uninterrupted))
    # The heuristic judge runs one trace at a time in input order: byte-identical files.
    assert (out / SHARD).read_bytes() == (reference / SHARD).read_bytes()


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_the_run_resumes(tmp_path: Path, judge_server, write_jsonl) -> None:
    rows = [openr1_record(f"c{i:02d}", [reasoning_trace(i, 4)], problem=f"Problem {i} [case:c{i:02d}]")
            for i in range(24)]
    source = write_jsonl("in.jsonl", rows)
    server = judge_server(latency=0.1)
    out = tmp_path / "out"
    command = cli_command("annotate", source, "-o", out, "--judge", "openai:scripted-judge", "--base-url",
                          server.base_url, "--concurrency", "2", "--no-progress")
    process = start(command)
    deadline = time.monotonic() + 60
    while _count_lines(out / SHARD) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    result = finish(process)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "interrupted" in result.stderr and "run the same command again to resume" in result.stderr
    done = read_jsonl(out / SHARD)  # nothing torn: Ctrl-C lets the writers close
    assert 3 <= len(done) < 24
    logged = len(server.log)

    ok(subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=120))
    _assert_each_once(out, {f"c{i:02d}:0" for i in range(24)})
    resent = {entry.case for entry in server.log[logged:]} & {record["trace_id"].replace(":0", "") for record in done}
    assert not resent


@pytest.mark.slow
def test_resume_keeps_judge_failures_until_retry_rejected(tmp_path: Path, judge_server, write_jsonl) -> None:
    cases = {"good0": ["ok"], "good1": ["ok"], "flaky": ["nonjson", "nonjson", "ok"], "refused": ["400", "ok"]}
    rows = [openr1_record(f"{case}", [reasoning_trace(i, 4)], problem=f"Problem {i} [case:{case}]")
            for i, case in enumerate(cases)]
    source = write_jsonl("in.jsonl", rows)
    server = judge_server(script=cases)
    out = tmp_path / "out"
    command = ["annotate", source, "-o", out, "--judge", "openai:scripted-judge", "--base-url", server.base_url,
               "--no-progress", "--max-attempts", "2", "--retry-initial", "0"]

    ok(run_cli(*command))
    status = {record["trace_id"]: (record["status"], record["status_reason"].split(":")[0])
              for record in annotations(out)}
    assert status == {"good0:0": ("accepted", "ok"), "good1:0": ("accepted", "ok"),
                      "flaky:0": ("rejected", "judge_unusable_answer"),
                      "refused:0": ("rejected", "judge_request_refused")}
    assert server.actions_for("flaky") == ["nonjson", "nonjson"] and server.actions_for("refused") == ["400"]

    # A plain resume keeps the judge's failures (their answers are cached) and sends nothing.
    logged = len(server.log)
    ok(run_cli(*command))
    assert len(server.log) == logged and len(annotations(out)) == 4

    # --retry-rejected asks the judge again for exactly those traces, and nothing else.
    result = ok(run_cli(*command, "--retry-rejected"))
    assert sorted(entry.case for entry in server.log[logged:]) == ["flaky", "refused"]
    records = annotations(out)
    assert [record["trace_id"] for record in records] == sorted(f"{case}:0" for case in cases)
    assert all(record["status"] == "accepted" for record in records), [r["status_reason"] for r in records]
    assert json.loads((out / "run.json").read_text())["invocations"][-1]["retried_rejected"] == 2
    assert "Traceback" not in result.stderr

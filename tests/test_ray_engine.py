"""`annotate --engine ray` on a real local Ray cluster (`ray start --head`, bound to 127.0.0.1).

The cluster is started once for the module as a subprocess with its own port and temp dir and is
stopped with every process it started. Every run is the real CLI in a subprocess; a Ray run must
end byte for byte like a local run of every shard, and resume like one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.judge_server import case_rows
from tests.helpers import free_port, assert_one_clean_error, cli_command, cli_env, ok, run_cli
from tests.builders import SHARDS, annotate, files, input_rows, shard_file, write_rows

pytestmark = pytest.mark.ray

# Ray swaps 127.0.0.1 for the machine's address unless it is told the cluster stays on this host;
# with this, the GCS, raylet and workers all listen on 127.0.0.1 only.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
_RAY_CLI = "import sys; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"


@pytest.fixture(scope="module")
def ray_address() -> str:
    port = free_port()
    # A short path: Ray's unix sockets live under it, and socket paths are limited to ~107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="sr-ray-", dir="/tmp"))
    log = open(temp / "ray-start.log", "w")  # noqa: SIM115
    command = [sys.executable, "-c", _RAY_CLI, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
               "--port", str(port), "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats",
               "--object-store-memory", str(100 * 2**20), "--temp-dir", str(temp),
               "--dashboard-agent-listen-port", str(free_port())]
    if importlib.util.find_spec("grpc") is not None:
        # Ray starts its client server (default port 10001) when grpcio is there (ray[client] or
        # ray[default]); give it a free port. Plain `ray`, as CI installs it, has no client server.
        command += ["--ray-client-server-port", str(free_port())]
    # --block: this process stays the parent of every Ray process and stops them on SIGTERM; its own
    # session (process group) lets the teardown kill whatever is left, and nothing else.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **RAY_ENV},
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in (temp / "ray-start.log").read_text(errors="replace"):
            assert process.poll() is None, (temp / "ray-start.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "ray start did not come up in 90 s"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything of the group still there
        except ProcessLookupError:
            pass
        log.close()
        _wait_group_gone(process.pid)
        subprocess.run(["rm", "-rf", str(temp)], check=False)


def _wait_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"Ray processes of group {pgid} are still running")


def ray_annotate(*args, address: str) -> subprocess.CompletedProcess:
    return run_cli("annotate", *args, "--engine", "ray", "--ray-address", address, timeout=240, env=cli_env(**RAY_ENV))


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("ray-local")
    source = write_rows(tmp / "input.jsonl", input_rows())
    annotate(source, tmp / "local", num_shards=SHARDS)
    return {"tmp": tmp, "source": source, "local": tmp / "local"}


def mtimes(out: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in (out / "annotations").iterdir()}


@pytest.mark.slow
def test_a_ray_run_equals_a_local_run_and_resumes_like_one(ray_address, local, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = ok(ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), address=ray_address))
    for shard in range(SHARDS):
        assert f"shard {shard} of 3 done on" in result.stderr
    assert files(out) == files(local["local"])  # shard files, done.json, rejects.jsonl
    assert not (out / "parts").exists()  # the parts were merged and removed
    run = json.loads((out / "run.json").read_text())
    assert run["state"] == "complete" and run["config"]["shard_index"] is None
    assert run["totals"] == json.loads((local["local"] / "run.json").read_text())["totals"]
    assert json.loads(ok(run_cli("stats", out, "--json")).stdout) == \
        json.loads(ok(run_cli("stats", local["local"], "--json")).stdout)

    # The same command again: every shard is finished, nothing is touched.
    before = mtimes(out)
    again = ok(ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), address=ray_address))
    assert "all 3 shards are finished" in again.stderr
    assert mtimes(out) == before

    # One shard deleted: only that shard is annotated again.
    for path in (out / "annotations").glob("shard-00001-*"):
        path.unlink()
    redo = ok(ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), address=ray_address))
    assert "1 of 3 shards submitted" in redo.stderr and "shard 1 of 3 done" in redo.stderr
    assert "shard 0 of 3 done" not in redo.stderr
    after = mtimes(out)
    # The other shards' files were not written again (their done.json is re-sealed, same bytes).
    assert {name: after[name] for name in after if name.endswith(".jsonl") and "00001" not in name} == \
        {name: before[name] for name in before if name.endswith(".jsonl") and "00001" not in name}
    assert files(out) == files(local["local"])

    # Changed annotation settings are refused before any task starts.
    refused = ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), "--target-coverage", "0.2",
                           address=ray_address)
    assert_one_clean_error(refused, "different settings", "target_coverage")
    assert mtimes(out) == after


@pytest.mark.slow
def test_a_shard_directory_on_ray_is_checked_against_its_manifest(ray_address, local, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    ok(run_cli("shard", local["source"], "-o", shards, "--shards", str(SHARDS)))
    out = tmp_path / "out"
    result = ok(ray_annotate(shards, "-o", out, "--no-progress", address=ray_address))
    assert "checked against the shard manifest: every trace annotated exactly once" in result.stderr
    annotate(shards, tmp_path / "local")
    assert files(out) == files(tmp_path / "local")


@pytest.mark.slow
def test_a_failed_shard_is_reported_the_others_merged_and_a_rerun_finishes(ray_address, local,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    # A part whose shard file is corrupt in the middle: that shard's task fails, not the run.
    broken = out / "parts" / "shard-00001" / "annotations" / f"shard-00001-of-{SHARDS:05d}.jsonl"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"trace_id": "x"\n{"trace_id": "y", "status": "accepted"}\n')
    result = ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), "--no-progress",
                          address=ray_address)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr  # a run that could not finish
    assert "shard 1 of 3 failed on" in result.stderr and "corrupt JSONL line" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 3 shards failed (shard 1") and "run the same command again" in last
    assert sorted(path.name for path in (out / "annotations").glob("*.done.json")) == \
        [f"shard-0000{i}-of-00003.done.json" for i in (0, 2)]
    assert json.loads((out / "run.json").read_text())["state"] == "failed"
    assert broken.exists()  # kept for the next run, never deleted behind the user's back

    broken.unlink()
    ok(ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), "--no-progress", address=ray_address))
    assert files(out) == files(local["local"])
    assert json.loads((out / "run.json").read_text())["state"] == "complete"


@pytest.mark.slow
def test_a_killed_ray_run_resumes_from_its_parts_and_cache(ray_address, tmp_path: Path, judge_server,
                                                           write_jsonl) -> None:
    server = judge_server(latency=0.3)
    source = write_jsonl("cases.jsonl", case_rows([f"c{i}" for i in range(12)], paragraphs=4))
    out = tmp_path / "out"
    args = [source, "-o", out, "--num-shards", str(SHARDS), "--judge", "openai:scripted-judge", "--base-url",
            server.base_url, "--concurrency", "1", "--no-progress"]
    driver = subprocess.Popen(cli_command("annotate", *args, "--engine", "ray", "--ray-address", ray_address),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(**RAY_ENV))
    parts = [out / "parts" / f"shard-{i:05d}" for i in range(SHARDS)]
    try:
        deadline = time.monotonic() + 120
        while sum(_lines(shard_file(part, i)) for i, part in enumerate(parts)) < 2:
            assert driver.poll() is None and time.monotonic() < deadline, "the Ray run ended before it was killed"
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)  # the driver dies; Ray stops the tasks it owned
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
    _wait_still(parts)
    done_before = sum(_lines(shard_file(part, i)) for i, part in enumerate(parts))
    assert 2 <= done_before < 12
    cached = {f"c{trace_id.split(':')[0][1:]}" for part in parts for trace_id in _cached_trace_ids(part)}
    assert len(cached) >= done_before
    log_at_kill = len(server.log)

    result = ok(run_cli("annotate", *args, "--engine", "ray", "--ray-address", ray_address, timeout=240,
                        env=cli_env(**RAY_ENV)))
    resumed = [int(n) for n in re.findall(r"shard \d of 3 done on .*?: \d+ annotated, (\d+) already done",
                                          result.stderr)]
    assert len(resumed) == SHARDS and sum(resumed) == done_before  # the parts resumed, nothing redone
    asked_again = [entry.case for entry in server.log[log_at_kill:] if entry.case in cached]
    assert asked_again == []  # every answer cached before the kill came from the part's cache
    assert {entry.case for entry in server.log} == {f"c{i}" for i in range(12)}
    reference = tmp_path / "reference"
    # One request at a time, as the Ray run: records are written as answers come, so with several
    # in flight the file order would depend on which answer the server sends first.
    annotate(source, reference, num_shards=SHARDS, judge=["openai:scripted-judge"], base_url=server.base_url,
             concurrency=1)
    assert files(out) == files(reference)

    # A shard deleted from OUT is annotated again with OUT's cached answers: not one request.
    asked = len(server.log)
    for path in (out / "annotations").glob("shard-00001-*"):
        path.unlink()
    redo = ok(run_cli("annotate", *args, "--engine", "ray", "--ray-address", ray_address, timeout=240,
                      env=cli_env(**RAY_ENV)))
    assert "shard 1 of 3 done" in redo.stderr and "0 judge requests" in redo.stderr
    assert len(server.log) == asked and files(out) == files(reference)


def _cached_trace_ids(part: Path) -> set[str]:
    if not (part / "cache.sqlite").exists():
        return set()
    db = sqlite3.connect(part / "cache.sqlite")
    try:
        return {trace_id for (trace_id,) in db.execute("SELECT trace_id FROM answers WHERE ok = 1")}
    finally:
        db.close()


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait_still(parts: list[Path], quiet: float = 2.0) -> None:
    """Until no part's files change for `quiet` seconds: the killed driver's tasks have stopped."""
    def state():
        return [(p, p.stat().st_size) for part in parts if part.exists() for p in sorted(part.rglob("*"))
                if p.is_file()]
    last, since = state(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.2)
        if (now := state()) != last:
            last, since = now, time.monotonic()


_TASK_SCRIPT = """
import json, sys
import ray
from pathlib import Path
from splitreason.schemas.annotate import AnnotateSettings
from splitreason.executors.ray_parts import annotate_part, write_check_file

address, cases = sys.argv[1], json.loads(sys.argv[2])
ray.init(address=address, log_to_driver=False)
task = ray.remote(num_cpus=1)(annotate_part)
for out, check, input_path in cases:
    if check == "driver":
        check = str(write_check_file(Path(out))[0])
    token = json.loads(Path(check).read_text())["token"] if Path(check).exists() else "not-the-driver's"
    request = AnnotateSettings(input=input_path, out=Path(out) / "parts" / "shard-00000", num_shards=1,
                              shard_index=0, progress=False)
    print(json.dumps(ray.get(task.remote(request, 0, check, token, input_path))))
"""


@pytest.mark.slow
def test_a_task_that_cannot_see_out_or_the_input_says_what_ray_needs(ray_address, tmp_path: Path) -> None:
    sample = str(Path(__file__).resolve().parents[1] / "splitreason" / "data" / "openr1_sample.jsonl")
    cases = [
        # The driver's token is not where the task looks: another machine's local directory, say.
        (str(tmp_path / "out"), str(tmp_path / "elsewhere" / "parts" / ".ray-driver.json"), sample),
        (str(tmp_path / "out"), "driver", str(tmp_path / "not-here.jsonl")),
        (str(tmp_path / "out"), "driver", sample),
    ]
    result = subprocess.run([sys.executable, "-c", _TASK_SCRIPT, ray_address, json.dumps(cases)],
                            capture_output=True, text=True, timeout=180, env=cli_env(**RAY_ENV))
    assert result.returncode == 0, result.stderr
    unseen, missing, seen = (json.loads(line) for line in result.stdout.strip().splitlines()[-3:])
    assert not unseen["ok"] and "needs OUT on a filesystem shared by all nodes" in unseen["error"]
    assert not missing["ok"] and "cannot read the input" in missing["error"]
    assert seen["ok"] and seen["counts"]["annotated"] > 0


@pytest.mark.slow
def test_no_cluster_no_shard_count_or_no_ray_are_one_clear_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("annotate", "-o", out, "--num-shards", "2", "--engine", "ray", "--ray-address",
                     f"127.0.0.1:{free_port()}", env=cli_env(**RAY_ENV))
    assert_one_clean_error(result, "no Ray cluster at 127.0.0.1:", "ray start --head")
    assert result.returncode == 1 and not out.exists()  # no cluster: a service that cannot be reached

    result = run_cli("annotate", "-o", out, "--engine", "ray", "--ray-address", "127.0.0.1:1")
    assert_one_clean_error(result, "--engine ray splits the input into shards", "--num-shards N")
    assert result.returncode == 2 and not out.exists()  # a usage error

    without_ray = "import sys; sys.modules['ray'] = None; from splitreason.cli import main; sys.argv[0] = " \
                  "'splitreason'; main()"
    result = subprocess.run([sys.executable, "-c", without_ray, "annotate", "-o", str(out), "--num-shards", "2",
                             "--engine", "ray"], capture_output=True, text=True, timeout=120, env=cli_env())
    assert_one_clean_error(result, "--engine ray needs Ray: pip install 'splitreason[ray]'")
    assert result.returncode == 1 and not out.exists()  # a missing optional package


def test_a_part_left_with_another_limit_is_refused_before_the_cluster(local, tmp_path: Path) -> None:
    """The merge at the end compares --limit too: the driver refuses before it connects (here to an
    address where nothing listens, which it would report otherwise), not after every task ran."""
    out = tmp_path / "out"
    annotate(local["source"], out / "parts" / "shard-00000", num_shards=SHARDS, shard_index=0, limit=5)
    # OUT's run.json as a stopped Ray run of this very command leaves it (the settings of a local run).
    (out / "run.json").write_bytes((local["local"] / "run.json").read_bytes())
    result = run_cli("annotate", local["source"], "-o", out, "--num-shards", str(SHARDS), "--engine", "ray",
                     "--ray-address", f"127.0.0.1:{free_port()}", env=cli_env(**RAY_ENV))
    assert_one_clean_error(result, "different settings", "limit: 5 -> None")


@pytest.mark.slow
def test_the_driver_and_each_part_are_locked_against_other_writers(ray_address, local, tmp_path: Path) -> None:
    """The driver holds OUT for the whole run; a part an earlier run left is locked while the driver
    prepares it (a task still writing it refuses the new driver); both with the holder named."""
    from splitreason.io.lock import LOCK_NAME, OutputLock

    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out / LOCK_NAME, f"output directory {out}", command="splitreason test holder"):
        refused = ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), address=ray_address)
    assert_one_clean_error(refused, f"output directory {out} is in use by pid {os.getpid()}")
    assert refused.returncode == 1 and list(out.iterdir()) == []

    part = out / "parts" / "shard-00001"
    part.mkdir(parents=True)
    with OutputLock(part / LOCK_NAME, "a leftover task", command="splitreason test holder"):
        refused = ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), address=ray_address)
    assert_one_clean_error(refused, f"part {part} of shard 1 is in use by pid {os.getpid()}")
    assert refused.returncode == 1
    ok(ray_annotate(local["source"], "-o", out, "--num-shards", str(SHARDS), address=ray_address))
    assert files(out) == files(local["local"])  # no lock file left, nothing of the refused runs

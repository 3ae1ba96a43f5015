"""When the machine says no (issue 9, item 5): a full disk, a read-only file system, permission
denied, a parent that is a file. Each is one line with the exit code of its kind (1 for a disk
full: what was saved is kept and the same command resumes; 2 for an output that cannot be
written), never "internal error", never a traceback.

The failures are real, not simulated: a private mount namespace (`unshare -rm`) with a tiny tmpfs
gives a real "No space left on device", remounting it read-only a real read-only file system, and
a process that keeps uid 0 but drops every capability (`setpriv`) meets real permission checks.
These tests skip, saying why, only where the kernel refuses them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from splitreason.io.lock import LOCK_NAME
from tests.judge_server import case_rows
from tests.helpers import REPO, assert_one_clean_error, cli_env, ok, openr1_record, reasoning_trace, run_cli

CLI = f"{shlex.quote(sys.executable)} -m splitreason.cli"


@cache
def namespaces_refused() -> str | None:
    """Why `unshare -rm` with a tmpfs cannot run here (None when it can)."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && "
                                                          "umount /mnt"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"the kernel refuses unshare -rm: {probe.stderr.strip()}"


needs_namespaces = pytest.mark.skipif("namespaces_refused() is not None", reason="unshare -rm not permitted here")


def in_namespace(tmp_path: Path, script: str, **env: str) -> subprocess.CompletedProcess:
    """Run `script` (sh) in a private mount namespace where $MNT is a fresh tmpfs; `size` sets it."""
    reason = namespaces_refused()
    if reason is not None:
        pytest.skip(reason)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    full = f"set -u\nMNT={shlex.quote(str(mnt))}\nCLI={shlex.quote(CLI)}\n{script}"
    return subprocess.run(["unshare", "-rm", "sh", "-c", full], capture_output=True, text=True, timeout=600,
                          cwd=REPO, env=cli_env(**env))


def outcome(tmp_path: Path, name: str) -> tuple[int, str]:
    """(exit code, stderr) of a command the namespace script ran as `run NAME ...`."""
    return int((tmp_path / f"{name}.rc").read_text()), (tmp_path / f"{name}.err").read_text()


RUN = """run() {{ name=$1; shift; "$@" > {out}/$name.out 2> {out}/$name.err; echo $? > {out}/$name.rc; }}
"""


def rows(count: int, paragraphs: int = 6) -> list[dict]:
    return [openr1_record(f"d{i}", [reasoning_trace(i, paragraphs)]) for i in range(count)]


def assert_whole_lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "a half-written last line was left behind"
    return [json.loads(line) for line in data.splitlines()]


@needs_namespaces
@pytest.mark.slow
def test_a_full_disk_is_one_line_saves_whole_lines_and_the_same_command_resumes(tmp_path: Path,
                                                                                 write_jsonl) -> None:
    source = write_jsonl("in.jsonl", rows(200))
    script = RUN.format(out=shlex.quote(str(tmp_path))) + f"""
mount -t tmpfs -o size=256k tmpfs "$MNT"
run full $CLI annotate {shlex.quote(str(source))} -o "$MNT/out" --no-progress
cp -a "$MNT/out" {shlex.quote(str(tmp_path / "after_full"))}
mount -o remount,size=16m "$MNT"
run resumed $CLI annotate {shlex.quote(str(source))} -o "$MNT/out" --no-progress
cp -a "$MNT/out" {shlex.quote(str(tmp_path / "after_resume"))}
"""
    result = in_namespace(tmp_path, script)
    assert result.returncode == 0, result.stderr
    code, stderr = outcome(tmp_path, "full")
    line = assert_one_clean_error(subprocess.CompletedProcess([], code, "", stderr), "disk full: no space left",
                                  "annotations/shard-00000-of-00001.jsonl", "no line cut short",
                                  "run the same command again to resume")
    assert code == 1
    saved = assert_whole_lines(tmp_path / "after_full" / "annotations" / "shard-00000-of-00001.jsonl")
    assert 0 < len(saved) < 200 and f"{len(saved)} traces annotated by this run" in line
    # "failed" when there was room left to say so; on a disk this full, run.json may keep "running".
    assert json.loads((tmp_path / "after_full" / "run.json").read_text())["state"] in ("failed", "running")

    code, stderr = outcome(tmp_path, "resumed")
    assert code == 0, stderr
    records = assert_whole_lines(tmp_path / "after_resume" / "annotations" / "shard-00000-of-00001.jsonl")
    assert len(records) == len({r["trace_id"] for r in records}) == 200
    assert records[: len(saved)] == saved  # what was saved stayed as it was; the rest was added once
    assert not (tmp_path / "after_resume" / LOCK_NAME).exists()


@needs_namespaces
@pytest.mark.slow
def test_a_full_disk_under_the_judge_cache_is_one_line_too(tmp_path: Path, judge_server, write_jsonl) -> None:
    """SQLite says "database or disk is full" without a path: still one line, exit 1, resumable."""
    server = judge_server()
    source = write_jsonl("in.jsonl", case_rows(["ok"] * 60, paragraphs=8))
    judge = f"--judge openai:scripted-judge --base-url {server.base_url}"
    script = RUN.format(out=shlex.quote(str(tmp_path))) + f"""
mount -t tmpfs -o size=160k tmpfs "$MNT"
run full $CLI annotate {shlex.quote(str(source))} -o "$MNT/out" {judge} --no-progress
mount -o remount,size=16m "$MNT"
run resumed $CLI annotate {shlex.quote(str(source))} -o "$MNT/out" {judge} --no-progress
cp -a "$MNT/out" {shlex.quote(str(tmp_path / "after"))}
"""
    result = in_namespace(tmp_path, script, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    assert result.returncode == 0, result.stderr
    code, stderr = outcome(tmp_path, "full")
    assert_one_clean_error(subprocess.CompletedProcess([], code, "", stderr), "disk full",
                           "run the same command again to resume")
    assert code == 1
    code, stderr = outcome(tmp_path, "resumed")
    assert code == 0, stderr
    records = assert_whole_lines(tmp_path / "after" / "annotations" / "shard-00000-of-00001.jsonl")
    assert len(records) == len({r["trace_id"] for r in records}) == 60


@needs_namespaces
def test_sqlite_on_a_full_disk_is_translated_to_disk_full(tmp_path: Path) -> None:
    """SQLite reports a full disk in its own words ("database or disk is full"), with no path: the
    real error, from a real full tmpfs, becomes DiskFull naming the database."""
    probe = tmp_path / "probe.py"
    probe.write_text(f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from splitreason.io.environment import environment_error
from splitreason.judges.cache import Completion, RequestCache
path = Path(sys.argv[1])
cache = RequestCache(path)
try:
    for i in range(100_000):
        cache.put(f"key{{i}}", f"trace{{i}}", Completion(text="x" * 3000))
except Exception as error:
    translated = environment_error(error, saved="the answers before are kept", path=path)
    print(type(error).__name__, "|", error, "|", type(translated).__name__, "|", translated)
""")
    script = RUN.format(out=shlex.quote(str(tmp_path))) + f"""
mount -t tmpfs -o size=200k tmpfs "$MNT"
run probe {shlex.quote(sys.executable)} {shlex.quote(str(probe))} "$MNT/cache.sqlite"
"""
    result = in_namespace(tmp_path, script)
    assert result.returncode == 0, result.stderr
    code, _ = outcome(tmp_path, "probe")
    raw, message, kind, line = (tmp_path / "probe.out").read_text().strip().split(" | ")
    assert code == 0 and raw == "OperationalError" and "full" in message
    assert kind == "DiskFull" and "cache.sqlite" in line and "the answers before are kept" in line


@needs_namespaces
def test_curate_on_a_full_disk_names_its_dedup_database(tmp_path: Path, write_jsonl) -> None:
    """The dedup index is an SQLite file made before the first row: SQLite's "database or disk is
    full" names no file, so the line must (not "a database file")."""
    source = shlex.quote(str(write_jsonl("in.jsonl", rows(3, 3))))
    script = RUN.format(out=shlex.quote(str(tmp_path))) + f"""
mount -t tmpfs -o size=64k tmpfs "$MNT"
dd if=/dev/zero of="$MNT/fill" bs=1k 2>/dev/null
run curate $CLI curate {source} -o "$MNT/curated" --no-progress
ls -A "$MNT" > {shlex.quote(str(tmp_path / "left.txt"))}
"""
    result = in_namespace(tmp_path, script)
    assert result.returncode == 0, result.stderr
    code, stderr = outcome(tmp_path, "curate")
    line = assert_one_clean_error(subprocess.CompletedProcess([], code, "", stderr), "disk full",
                                  "dedup-index.sqlite", "nothing was written")
    assert code == 1 and str(tmp_path / "mnt") in line and "a database file" not in line
    assert (tmp_path / "left.txt").read_text().split() == ["fill"]  # no CURATED, no work directory


@pytest.mark.slow
@needs_namespaces
def test_an_output_on_a_read_only_file_system_is_one_line_exit_2(tmp_path: Path, write_jsonl) -> None:
    source = shlex.quote(str(write_jsonl("in.jsonl", rows(3, 3))))
    script = RUN.format(out=shlex.quote(str(tmp_path))) + f"""
mount -t tmpfs -o size=4m tmpfs "$MNT"
run first $CLI annotate {source} -o "$MNT/out" --no-progress
mount -o remount,ro "$MNT"
run resume $CLI annotate {source} -o "$MNT/out" --no-progress
run new $CLI annotate {source} -o "$MNT/new" --no-progress
run export $CLI export "$MNT/out" -o "$MNT/out/train.jsonl"
run curate $CLI curate {source} -o "$MNT/curated" --no-progress
run shard $CLI shard {source} -o "$MNT/shards"
ls -A "$MNT" > {shlex.quote(str(tmp_path / "left.txt"))}
"""
    result = in_namespace(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert outcome(tmp_path, "first")[0] == 0
    for name in ("resume", "new", "export", "curate", "shard"):
        code, stderr = outcome(tmp_path, name)
        assert_one_clean_error(subprocess.CompletedProcess([], code, "", stderr), "read-only file system",
                               "choose an output on a writable file system")
        assert code == 2, (name, stderr)
    assert (tmp_path / "left.txt").read_text().split() == ["out"]


@needs_namespaces
def test_review_serve_on_a_read_only_run_says_what_to_do_without_an_o_option(tmp_path: Path,
                                                                            sample_in_review: Path) -> None:
    """`review serve` writes OUT/review.sqlite and has no -o: the line names the database and says to
    copy the run somewhere writable, not "choose an output (-o)" nor "permission denied"."""
    script = RUN.format(out=shlex.quote(str(tmp_path))) + f"""
mount -t tmpfs -o size=4m tmpfs "$MNT"
cp -a {shlex.quote(str(sample_in_review))} "$MNT/out"
mount -o remount,ro "$MNT"
run serve timeout 60 $CLI review serve "$MNT/out" --port 0
"""
    result = in_namespace(tmp_path, script)
    assert result.returncode == 0, result.stderr
    code, stderr = outcome(tmp_path, "serve")
    line = assert_one_clean_error(subprocess.CompletedProcess([], code, "", stderr),
                                  f"cannot write {tmp_path / 'mnt' / 'out' / 'review.sqlite'}: it is on a read-only "
                                  "file system", "copy it somewhere writable", "splitreason review serve COPY")
    assert code == 2 and "(-o)" not in line and "permission denied" not in line


def without_capabilities() -> list[str]:
    """A command prefix under which permission checks apply: as root, uid 0 without any capability
    (root's permission bypass is CAP_DAC_OVERRIDE); as another user, nothing is needed."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permission checks cannot be made to apply")
    prefix = ["setpriv", "--securebits", "+noroot", "--bounding-set", "-all", "--inh-caps", "-all"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.strip()}")
    return prefix


@pytest.mark.slow
def test_permission_denied_is_one_line_exit_2(tmp_path: Path, write_jsonl) -> None:
    source = write_jsonl("in.jsonl", rows(3, 3))
    closed = tmp_path / "closed"
    closed.mkdir()
    ok(run_cli("annotate", source, "-o", closed / "existing", "--no-progress"))
    before = sorted(p.name for p in (closed / "existing").rglob("*"))
    (closed / "existing").chmod(0o555)
    closed.chmod(0o555)
    prefix = without_capabilities()
    try:
        attempts = {
            "new": ["annotate", str(source), "-o", str(closed / "new"), "--no-progress"],
            "existing": ["annotate", str(source), "-o", str(closed / "existing"), "--no-progress"],
            "export": ["export", str(closed / "existing"), "-o", str(closed / "train.jsonl")],
            "merge": ["merge", str(closed / "existing"), "-o", str(closed / "merged")],
        }
        for name, args in attempts.items():
            result = subprocess.run([*prefix, sys.executable, "-m", "splitreason.cli", *args], capture_output=True,
                                    text=True, env=cli_env(), cwd=REPO, timeout=120)
            assert_one_clean_error(result, "permission denied", "choose an output this user may write to")
            assert result.returncode == 2, (name, result.stderr)
    finally:
        closed.chmod(0o755)
        (closed / "existing").chmod(0o755)
    assert sorted(p.name for p in closed.iterdir()) == ["existing"]
    assert sorted(p.name for p in (closed / "existing").rglob("*")) == before


@pytest.mark.slow
def test_an_output_whose_parent_is_a_file_is_one_line_exit_2(tmp_path: Path, write_jsonl,
                                                             sample_in_review: Path) -> None:
    source = write_jsonl("in.jsonl", rows(2, 3))
    afile = tmp_path / "afile"
    afile.write_text("x")
    attempts = {
        "annotate": ("annotate", source, "-o", afile / "out", "--no-progress"),
        "shard": ("shard", source, "-o", afile / "out"),
        "curate": ("curate", source, "-o", afile / "out", "--no-progress"),
        "merge": ("merge", sample_in_review, "-o", afile / "out"),
        "export": ("export", sample_in_review, "-o", afile / "train.jsonl"),
    }
    for name, args in attempts.items():
        result = run_cli(*args)
        assert_one_clean_error(result, f"{afile} is a file, not a directory")
        assert result.returncode == 2, (name, result.stderr)
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "in.jsonl"]

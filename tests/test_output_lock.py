"""The output lock (splitreason/io/lock.py) on its own: real flock, real processes, real files.

The commands' use of it (two `annotate` runs on one OUT, a SIGKILLed holder) is in
tests/test_one_writer.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from splitreason.io.environment import OutputNotWritable
from splitreason.io.lock import (
    LOCK_NAME,
    LockHeld,
    OutputLock,
    claim_output_dir,
    claim_output_file,
    lock_path_for_file,
    replace_locked_dir,
)

REPO = Path(__file__).resolve().parents[1]


def hold_in_child(path: Path, command: str = "splitreason annotate -o out") -> subprocess.Popen:
    """Another process that takes the lock on `path` and keeps it until it is killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from splitreason.io.lock import OutputLock
        OutputLock(Path({str(path)!r}), "output directory out", command={command!r}).acquire()
        print("held", flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_writer_is_refused_at_once_with_the_holder_named(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    child = hold_in_child(path)
    try:
        started = time.monotonic()
        with pytest.raises(LockHeld) as refused:
            OutputLock(path, "output directory out").acquire()
        assert time.monotonic() - started < 1  # refused, never waited for
        message = str(refused.value)
        assert f"pid {child.pid} on {os.uname().nodename}" in message
        assert "(splitreason annotate -o out, since 20" in message and "\n" not in message
        assert refused.value.exit_code == 1
    finally:
        child.kill()
        child.wait()


def test_a_killed_holder_never_blocks_the_next_run(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    child = hold_in_child(path)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert path.exists()  # the killed holder's stale file stays; the kernel released its lock
    with OutputLock(path, "output directory out") as lock:
        assert lock.held
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid()  # our line replaced the dead holder's
    assert not path.exists()  # released: removed, a finished run leaves no lock file


def test_the_same_lock_object_never_refuses_itself(tmp_path: Path) -> None:
    lock = OutputLock(tmp_path / LOCK_NAME, "out").acquire()
    assert lock.acquire() is lock  # a driver holding OUT asks again
    with pytest.raises(LockHeld):  # another lock, even in this process, is another writer
        OutputLock(tmp_path / LOCK_NAME, "out").acquire()
    lock.release()
    lock.release()  # twice is harmless


def test_a_lock_file_removed_under_a_waiting_opener_is_not_a_second_holder(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The race that makes removing lock files unsafe without a check: B opened the file, A released
    and removed it, C created a new one and locked it, then B's flock on the old file succeeds. B
    must notice that the file at the path is no longer the one it locked, and open again.

    The race is made to happen inside B's own `acquire`: its first flock call first lets A go and
    C take a new file, then flocks the old inode B opened."""
    import fcntl
    import types

    from splitreason.io import lock as lock_module

    path = tmp_path / LOCK_NAME
    first = OutputLock(path, "out").acquire()  # A
    third = OutputLock(path, "out")  # C, once A has let go
    raced: list[int] = []

    def flock_after_a_release(fd: int, operation: int) -> None:
        if not raced:
            raced.append(os.fstat(fd).st_ino)  # the inode B opened: A's file
            first.release()  # A unlinks its file and unlocks it
            third.acquire()  # C creates a new file at the path and locks it
        fcntl.flock(fd, operation)

    monkeypatch.setattr(lock_module, "fcntl", types.SimpleNamespace(
        flock=flock_after_a_release, LOCK_EX=fcntl.LOCK_EX, LOCK_NB=fcntl.LOCK_NB))
    try:
        with pytest.raises(LockHeld):  # B's flock on A's old inode succeeded, but C holds the path
            OutputLock(path, "out").acquire()
        assert raced and raced[0] != os.stat(path).st_ino  # the race did happen: B had opened A's file
    finally:
        third.release()


def test_claim_creates_the_directory_and_discard_removes_only_what_it_made(tmp_path: Path) -> None:
    out = tmp_path / "a" / "out"
    lock = claim_output_dir(out)
    assert out.is_dir() and (out / LOCK_NAME).exists() and lock.created_dir == out
    lock.discard()
    assert not out.exists()  # a failed start leaves no OUT behind

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("x")
    lock = claim_output_dir(existing)
    assert lock.created_dir is None
    lock.discard()
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]

    written = claim_output_dir(tmp_path / "written")
    (tmp_path / "written" / "run.json").write_text("{}")
    written.discard()  # it made OUT, but OUT holds more than the lock now: kept
    assert (tmp_path / "written" / "run.json").exists()


def test_claim_refuses_a_file_or_a_path_through_a_file_in_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OutputNotWritable, match="exists and is not a directory") as refused:
        claim_output_dir(afile)
    assert refused.value.exit_code == 2
    with pytest.raises(OutputNotWritable, match=f"{afile} is a file, not a directory"):
        claim_output_dir(afile / "out")
    assert afile.read_text() == "x"


def test_a_file_written_in_place_is_locked_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "out" / "train.jsonl"
    with claim_output_file(target, "export target train.jsonl"):
        assert lock_path_for_file(target).exists() and lock_path_for_file(target).name == ".train.jsonl.lock"
        with pytest.raises(LockHeld, match="export target train.jsonl is in use by pid"):
            claim_output_file(target, "export target train.jsonl")
        claim_output_file(tmp_path / "out" / "other.jsonl").release()  # another file: another lock
    assert list((tmp_path / "out").iterdir()) == []


def test_a_finished_directory_is_swapped_in_without_letting_go(tmp_path: Path) -> None:
    out = tmp_path / "out"
    lock = claim_output_dir(out)
    (out / "old.txt").write_text("old")
    new = tmp_path / "work" / "new"
    new.mkdir(parents=True)
    (new / "new.txt").write_text("new")
    replace_locked_dir(lock, new, tmp_path / "work" / "previous")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "new.txt"]
    assert (tmp_path / "work" / "previous" / "old.txt").read_text() == "old"
    with pytest.raises(LockHeld):  # the lock at OUT/.lock is still the one held
        OutputLock(out / LOCK_NAME, "out").acquire()
    lock.release()
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]


def test_the_holder_line_carries_no_secret(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-argv-secret-123456")
    monkeypatch.setattr(sys, "argv", ["splitreason", "annotate", "--base-url",
                                      "http://alice:hunter2-pass@gpu-box:8000/v1?api_key=sk-argv-secret-123456",
                                      "-o", "out"])
    with OutputLock(tmp_path / LOCK_NAME, "out") as lock:
        text = lock.path.read_text()
    assert "hunter2" not in text and "sk-argv-secret" not in text and "alice" not in text
    assert "http://***@gpu-box:8000/v1?api_key=***" in json.loads(text)["command"]

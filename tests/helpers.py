"""Helpers shared by the test modules: the CLI as a subprocess, reading outputs, OpenR1 records,
free ports. Fixtures live in conftest.py; helpers that build whole runs for several modules live
in tests/builders.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

# Judge keys and URLs, and splitreason's own settings, never leak from the developer's shell into a test.
_HERMETIC_PREFIXES = ("OPENAI_", "ANTHROPIC_", "DEEPSEEK_", "SPLITREASON_")

REPO = Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment a CLI subprocess runs in: no judge keys, URLs or splitreason settings from the
    developer's shell (tests pass what they need in `extra`), plain output, hubs offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_HERMETIC_PREFIXES)}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb", "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1", "PYTHONIOENCODING": "utf-8"})
    env.update(extra)
    return env


def run_cli(*args: str | os.PathLike, timeout: float = 120, env: dict[str, str] | None = None,
            cwd: Path | None = None, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run `splitreason ARGS` in a fresh interpreter; stdout and stderr are captured as text."""
    return subprocess.run([sys.executable, *python_flags, "-m", "splitreason.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env or cli_env(), cwd=cwd or REPO)


def cli_command(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "splitreason.cli", *map(str, args)]


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def annotations(out: Path) -> list[dict]:
    """Every annotation record in OUT (all shard files), sorted by trace id."""
    records = [record for path in sorted((out / "annotations").glob("shard-*.jsonl")) for record in read_jsonl(path)]
    return sorted(records, key=lambda record: record["trace_id"])


def assert_one_clean_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{result.stderr}"
    assert lines[0].startswith("error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def openr1_record(uuid: str, generations: list[str], *, problem: str | None = None, **overrides) -> dict:
    """A record in the OpenR1-Math-220k schema; every generation correct, stopped and complete."""
    n = len(generations)
    record = {
        "problem": problem if problem is not None else f"Compute the thing for record {uuid}.",
        "solution": "A short reference solution.",
        "answer": "42",
        "problem_type": "Algebra",
        "question_type": "math-word-problem",
        "source": "olympiads",
        "uuid": uuid,
        "is_reasoning_complete": [True] * n,
        "generations": generations,
        "correctness_math_verify": [True] * n,
        "correctness_llama": None,
        "finish_reasons": ["stop"] * n,
        "correctness_count": n,
        "messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": generations[0] if n else ""}],
    }
    record.update(overrides)
    return record


def reasoning_trace(seed: int, paragraphs: int = 12) -> str:
    """A deterministic R1-like trace with LaTeX, reflections and long enough sentences to quote."""
    lines = ["<think>", f"Okay, so I need to work through problem number {seed} carefully and check every step."]
    for i in range(paragraphs):
        a, b = seed + i + 2, 2 * i + 3
        lines.append(
            f"Let me compute step {i}: we have \\( \\frac{{{a}}}{{{b}}} + \\sqrt{{{a * b}}} \\) which simplifies "
            f"after multiplying through by {b} to give {a} plus {b} times the root of {a * b}."
        )
        lines.append(f"Wait, I should double-check that the factor {b} was applied to both terms in step {i} here.")
        lines.append(f"So the running total after step {i} becomes {a * b + i}, and that matches the estimate.")
    lines += ["</think>", f"The answer is \\(\\boxed{{{seed}}}\\)."]
    return "\n\n".join(lines)

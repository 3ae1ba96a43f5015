"""Do `stats` and `report` on the run's polars frames stay as fast and as small as before?

    python benchmarks/bench_run_tables.py --run OUT --before 5efa5c7        # an annotated run you have
    python benchmarks/bench_run_tables.py --workdir /tmp/scale --before 5efa5c7   # make the scale run first

Each command (`stats OUT --json`, `report OUT -o FILE --no-progress`) runs as the real CLI in its
own process, once with the code of commit BEFORE (extracted with `git archive` into a temp dir and
put first on PYTHONPATH) and once with this tree, alternating, `--repeat` times; wall time, CPU
time (user + sys) and peak RSS (ru_maxrss) come from os.wait4, as in bench_scale.py. The outputs
of both must be identical (stats JSON byte for byte; the report page except its generation time),
or the benchmark fails. With --workdir and no --run, the run is bench_scale.py's: scale_data.py's
parquet (100,000 traces by default) curated and annotated with the heuristic judge, kept in the
workdir and reused by later calls. Results: benchmarks/results/run_tables.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def checkout(commit: str, into: Path) -> Path:
    """The package as it was at `commit`, extracted (not a git worktree: nothing to clean up in git)."""
    archive = into / "before.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit, "splitreason"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "before", filter="data")
    return into / "before"


def measure(code: Path, args: list[str], stdout_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "160"}
    env.pop("_RJEM_MALLOC_CONF", None)  # each side's own allocator settings
    started = time.perf_counter()
    with open(stdout_path, "wb") as out, open(str(stdout_path) + ".err", "wb") as err:
        # cwd outside any checkout: `python -m` puts the working directory before PYTHONPATH.
        process = subprocess.Popen([sys.executable, "-m", "splitreason.cli", *args], stdout=out, stderr=err, env=env,
                                   cwd=stdout_path.parent)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"{args[0]} with {code} failed with exit {process.returncode}:\n"
                         + Path(str(stdout_path) + ".err").read_text(errors="replace")[-2000:])
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "user_s": round(usage.ru_utime, 2), "sys_s": round(usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def make_run(work: Path, traces: int) -> Path:
    """bench_scale.py's data, curated and annotated (reused when already there)."""
    data, curated, run = work / "raw", work / "curated", work / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "splitreason.cli"]
    if not (data / "part-0000.parquet").exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale_data.py"), str(data), "--traces", str(traces)],
                       check=True, capture_output=True, env=env)
    if not (curated / "curate.json").exists():
        subprocess.run([*cli, "curate", str(data), "-o", str(curated), "--shards", "8", "--eval-set",
                        str(work / "raw-eval.jsonl"), "--language", "en", "--no-progress"], check=True, env=env)
    if not (run / "run.json").exists() or json.loads((run / "run.json").read_text()).get("state") != "complete":
        subprocess.run([*cli, "annotate", str(curated), "-o", str(run), "--no-progress"], check=True, env=env)
    return run


def without_generation_time(html: str) -> str:
    return "\n".join(line for line in html.splitlines() if " UTC" not in line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an annotated run to measure on")
    parser.add_argument("--workdir", type=Path, help="make (or reuse) the scale run here when --run is not given")
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--before", required=True, help="commit whose code is the baseline (e.g. the merge base)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "run_tables.json")
    args = parser.parse_args()
    if args.run is None and args.workdir is None:
        parser.error("give --run OUT or --workdir DIR")
    run = args.run or make_run(args.workdir, args.traces)
    run_json = json.loads((run / "run.json").read_text())
    traces = sum(run_json.get("totals", {}).get("status", {}).values()) or None

    with tempfile.TemporaryDirectory(prefix="splitreason-run-tables-") as tmp:
        tmp = Path(tmp)
        codes = {"before": checkout(args.before, tmp), "after": ROOT}
        commands = {"stats": lambda o: ["stats", str(run), "--json"],
                    "report": lambda o: ["report", str(run), "-o", str(o), "--no-progress"]}
        results: dict = {name: {"before": [], "after": []} for name in commands}
        outputs: dict = {}
        for round_ in range(args.repeat):
            for name, make_args in commands.items():
                # Alternate which code runs first, so a busy machine penalises neither side alone.
                order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                for side in order:
                    page = tmp / f"{name}-{side}.html"
                    result = measure(codes[side], make_args(page), tmp / f"{name}-{side}.out")
                    results[name][side].append(result)
                    print(f"{name:6} {side:6} wall {result['wall_s']:6.1f} s  cpu {result['cpu_s']:6.1f} s "
                          f"(sys {result['sys_s']:4.1f})  peak RSS {result['peak_rss_mb']:6.1f} MB", flush=True)
                    outputs[(name, side)] = (page.read_text() if name == "report" else
                                             (tmp / f"{name}-{side}.out").read_text())
        same_stats = outputs[("stats", "before")] == outputs[("stats", "after")]
        same_report = without_generation_time(outputs[("report", "before")]) == \
            without_generation_time(outputs[("report", "after")])

    summary = {}
    for name, sides in results.items():
        summary[name] = {side: {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
                         for side, runs in sides.items()}
        summary[name]["ratio_after_to_before"] = {
            key: round(summary[name]["after"][key] / summary[name]["before"][key], 3)
            for key in ("wall_s", "cpu_s", "peak_rss_mb")}
    result = {"benchmark": "run_tables", "python": platform.python_version(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "run": str(run), "traces": traces,
              "run_mb": round(sum(p.stat().st_size for p in (run / "annotations").glob("*.jsonl")) / 2**20, 1),
              "before": args.before, "repeat": args.repeat, "identical_output": {"stats": same_stats, "report": same_report},
              "median": summary, "runs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, data in summary.items():
        print(f"{name}: median after/before  wall {data['ratio_after_to_before']['wall_s']}  "
              f"cpu {data['ratio_after_to_before']['cpu_s']}  peak RSS {data['ratio_after_to_before']['peak_rss_mb']}")
    print(f"identical output: stats {same_stats}, report {same_report}")
    return 0 if same_stats and same_report else 1


if __name__ == "__main__":
    sys.exit(main())

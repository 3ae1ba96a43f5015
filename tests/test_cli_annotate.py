"""`splitreason annotate` through the real CLI: bad input rows, unusable sources, other formats.

Every command runs as a subprocess (`python -m splitreason.cli`), so what is checked is what a
user sees: exit code, stderr, and the files in OUT.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.helpers import (
    annotations,
    assert_one_clean_error,
    cli_env,
    free_port,
    ok,
    openr1_record,
    read_jsonl,
    reasoning_trace,
    run_cli,
)

def rows_of(count: int, *, start: int = 0, generations: int = 1, paragraphs: int = 6) -> list[dict]:
    return [openr1_record(f"u{i:04d}", [reasoning_trace(i * 10 + g, paragraphs) for g in range(generations)])
            for i in range(start, start + count)]


def summary_row(text: str, label: str) -> list[str]:
    """The cells after `label` in the end-of-run summary table of `splitreason annotate`."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 2 and cells[1] == label:
            return [cell for cell in cells[2:] if cell]
    raise AssertionError(f"no {label!r} row in:\n{text}")


# -- bad rows ---------------------------------------------------------------------------------


def _bad_input_lines() -> tuple[list[str], dict[int, tuple[str, str | None]], set[str]]:
    """Lines of a JSONL file mixing good and bad rows; expected {line: (reason, trace id)}; good ids."""
    good = [openr1_record(f"good{i}", [reasoning_trace(100 + i, 5)]) for i in range(4)]
    lines: list[str] = []
    expected: dict[int, tuple[str, str | None]] = {}
    good_ids: set[str] = set()

    def add(row, reason: str | None = None, trace_id: str | None = None) -> None:
        lines.append(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
        if reason is not None:
            expected[len(lines)] = (reason, trace_id)

    add(good[0]); good_ids.add("good0:0")
    add('{"uuid": "broken", "problem": "x", "generations": ["a"', "invalid_json")
    add('["a", "list", "not", "an", "object"]', "not_an_object")
    add({k: v for k, v in openr1_record("nogens", ["x"]).items() if k != "generations"}, "missing_field")
    add(openr1_record("badprob", [reasoning_trace(1, 3)], problem=17), "bad_field")  # type: ignore[arg-type]
    add({**openr1_record("badgens", [reasoning_trace(1, 3)]), "generations": "just a string"}, "bad_field")
    add(openr1_record("empty", ["   \n  "]), "empty_generation", "empty:0")
    add(openr1_record("tagged", [reasoning_trace(2, 4) + " <bigmodel>hard</bigmodel>"]), "contains_tag", "tagged:0")
    add(openr1_record("closing", ["Only a closing tag </bigmodel> here, and more text follows."]),
        "contains_tag", "closing:0")
    add(good[1]); good_ids.add("good1:0")
    add(openr1_record("nul", [reasoning_trace(3, 4) + "\x00 end"]), "nul_character", "nul:0")
    # A lone high surrogate written as a JSON escape: valid JSON, invalid Unicode text.
    surrogate = json.dumps(openr1_record("surrogate", ["placeholder"])).replace("placeholder", "x = \\ud835 y")
    add(surrogate, "lone_surrogate", "surrogate:0")
    add(openr1_record("nulprob", [reasoning_trace(4, 3)], problem="Find x\x00."), "nul_character", "nulprob:0")
    # A surrogate *pair* written as escapes is a valid character (𝑥) and must be kept.
    pair = json.dumps(openr1_record("pair", [reasoning_trace(7, 4) + " placeholder"])).replace(
        "placeholder", "so \\ud835\\udc65 = 3")
    assert "\\ud835\\udc65" in pair
    add(pair); good_ids.add("pair:0")
    add(good[2]); good_ids.add("good2:0")
    add(good[0], "duplicate_trace_id", "good0:0")  # the same uuid again
    add(good[3]); good_ids.add("good3:0")
    add("")  # blank lines are skipped silently
    return lines, expected, good_ids


def test_bad_rows_are_rejected_with_reasons_and_good_rows_annotated(tmp_path: Path) -> None:
    lines, expected, good_ids = _bad_input_lines()
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = ok(run_cli("annotate", source, "-o", out, "--no-progress"))

    rejects = read_jsonl(out / "rejects.jsonl")
    got = {reject["row"]: (reject["reason"], reject["trace_id"]) for reject in rejects}
    assert got == expected
    assert len(rejects) == len(expected)  # each bad row once
    for reject in rejects:
        assert reject["origin"] == str(source)
        assert reject["detail"] and "\n" not in reject["detail"] and len(reject["detail"]) <= 300
    assert {record["trace_id"] for record in annotations(out)} == good_ids
    assert next(r for r in annotations(out) if r["trace_id"] == "pair:0")["trace"].endswith("so \U0001d465 = 3")

    # The end-of-run summary counts them: in the table, and one count per reject reason.
    reasons = {reason for reason, _ in expected.values()}
    summary = result.stderr
    assert "input rejects" in summary
    rejects_line = next(line for line in summary.splitlines() if line.startswith("input rejects:"))
    for reason in reasons:
        count = sum(1 for r, _ in expected.values() if r == reason)
        assert f"{reason} {count}" in rejects_line, rejects_line
    assert summary_row(summary, "input rejects") == [str(len(expected)), str(len(expected))]
    assert summary_row(summary, "accepted") == [str(len(good_ids))] * 2
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["totals"]["input_rejects"] == len(expected)
    assert sum(manifest["totals"]["status"].values()) == len(good_ids)

    # Resuming does not write the rejects twice, nor annotate anything again.
    again = ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    assert read_jsonl(out / "rejects.jsonl") == rejects
    assert len(annotations(out)) == len(good_ids)
    assert summary_row(again.stderr, "resumed (already done)")[0] == str(len(good_ids))
    assert summary_row(again.stderr, "input rejects")[1] == str(len(expected))
    assert summary_row(again.stderr, "accepted") == ["0", str(len(good_ids))]


def test_generation_level_rejects_carry_trace_ids_per_generation(tmp_path: Path, write_jsonl) -> None:
    row = openr1_record("multi", [reasoning_trace(5, 4), "", reasoning_trace(6, 4) + "<bigmodel>"])
    source = write_jsonl("multi.jsonl", [row])
    out = tmp_path / "out"
    ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    rejects = {r["trace_id"]: r["reason"] for r in read_jsonl(out / "rejects.jsonl")}
    assert rejects == {"multi:1": "empty_generation", "multi:2": "contains_tag"}
    assert [record["trace_id"] for record in annotations(out)] == ["multi:0"]


@pytest.mark.parametrize(
    "make_source, needles",
    [
        (lambda tmp: tmp / "missing.jsonl", ("input not found", "missing.jsonl")),
        (lambda tmp: _touch(tmp / "data.csv", "a,b\n1,2\n"), ("unsupported input file", "data.csv")),
        (lambda tmp: _touch(tmp / "empty_dir" / "notes.txt", "x"), ("no input files in directory",)),
        (lambda tmp: "nonexistent-owner-xyz/no-such-dataset-xyz", ("nonexistent-owner-xyz/no-such-dataset-xyz",)),
    ],
    ids=["missing-file", "unsupported-extension", "dir-without-inputs", "unknown-hub-id"],
)
def test_unusable_sources_give_one_clear_error(tmp_path: Path, make_source, needles) -> None:
    source = make_source(tmp_path)
    if isinstance(source, Path) and source.name == "notes.txt":
        source = source.parent
    out = tmp_path / "out"
    result = run_cli("annotate", source, "-o", out, "--no-progress")
    assert_one_clean_error(result, *needles)
    assert not list((out / "annotations").glob("*.jsonl")) if out.exists() else True


def _touch(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_parquet_gzip_and_directory_inputs_give_the_same_annotations(tmp_path: Path, write_jsonl) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = rows_of(6, generations=2, paragraphs=5)
    rows[2] = {**rows[2], "generations": None}  # one bad row, in every format
    plain = write_jsonl("all.jsonl", rows)
    gz = tmp_path / "all.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    parquet = tmp_path / "all.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    folder = tmp_path / "folder"
    (folder / "part").mkdir(parents=True)
    write_jsonl("folder/a.jsonl", rows[:3])
    (folder / "part" / "b.jsonl.gz").write_bytes(gzip.compress(
        "".join(json.dumps(row) + "\n" for row in rows[3:]).encode()))
    (folder / "README.txt").write_text("ignored", encoding="utf-8")

    def essentials(out: Path) -> list[tuple]:
        return [(r["trace_id"], r["trace"], r["problem"], r["status"], [(s["start"], s["end"]) for s in r["spans"]])
                for r in annotations(out)]

    results = {}
    expected_rejects = {"jsonl": (plain, 3), "gz": (gz, 3), "parquet": (parquet, 2), "dir": (folder / "a.jsonl", 3)}
    for name, source in (("jsonl", plain), ("gz", gz), ("parquet", parquet), ("dir", folder)):
        out = tmp_path / f"out-{name}"
        ok(run_cli("annotate", source, "-o", out, "--no-progress"))
        results[name] = essentials(out)
        [reject] = read_jsonl(out / "rejects.jsonl")
        origin, row = expected_rejects[name]  # jsonl lines count from 1, parquet rows from 0
        assert (reject["origin"], reject["row"], reject["reason"]) == (str(origin), row, "missing_field")
    assert len(results["jsonl"]) == 10
    assert results["gz"] == results["jsonl"]
    assert results["parquet"] == results["jsonl"]
    assert results["dir"] == results["jsonl"]


def test_default_run_on_the_bundled_sample(tmp_path: Path) -> None:
    from splitreason.io.inputs import bundled_sample

    assert bundled_sample().exists(), "the bundled sample splitreason/data/openr1_sample.jsonl is missing"
    out = tmp_path / "sample-out"
    result = ok(run_cli("annotate", "-o", out, "--no-progress", cwd=tmp_path))
    records = annotations(out)
    assert len(records) >= 20
    assert len({record["trace_id"] for record in records}) == len(records)
    accepted = [record for record in records if record["status"] == "accepted"]
    assert len(accepted) >= 20, {r["trace_id"]: r["status_reason"] for r in records if r["status"] != "accepted"}
    # The sample holds generations the default selection skips; the summary says so.
    assert "not selected:" in result.stderr, result.stderr
    manifest = json.loads((out / "run.json").read_text())
    selection = manifest["invocations"][-1]["selection"]
    assert selection["selected"] == len(records)
    assert sum(selection["not_selected"].values()) > 0
    assert manifest["config"]["input"] == str(bundled_sample())

    export = tmp_path / "train.jsonl"
    ok(run_cli("export", out, "-o", export))
    assert len(read_jsonl(export)) == len(accepted)


def test_out_that_is_a_file_and_bad_policy_are_clear_errors(tmp_path: Path, write_jsonl) -> None:
    source = write_jsonl("in.jsonl", rows_of(2))
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    assert_one_clean_error(run_cli("annotate", source, "-o", afile, "--no-progress"), "not a directory")
    bad = run_cli("annotate", source, "-o", tmp_path / "o2", "--no-progress", "--min-coverage", "0.3",
                  "--target-coverage", "0.1")
    assert_one_clean_error(bad, "coverage")
    assert bad.returncode == 2


def test_unreachable_judge_is_a_clear_error_and_writes_nothing(tmp_path: Path, write_jsonl) -> None:
    port = free_port()  # nothing listens on it
    source = write_jsonl("in.jsonl", rows_of(2))
    out = tmp_path / "out"
    result = run_cli("annotate", source, "-o", out, "--no-progress", "--judge", "openai:m",
                     "--base-url", f"http://127.0.0.1:{port}/v1", "--timeout", "2")
    assert_one_clean_error(result, "judge openai:m: cannot reach")  # ":m:" is not turned into an emoji
    assert not list(out.glob("annotations/*.jsonl"))


def test_paths_with_brackets_and_colons_print_as_they_are(tmp_path: Path, write_jsonl) -> None:
    folder = tmp_path / "runs[bold]:smile:"
    folder.mkdir()
    source = folder / "in[red].jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows_of(2)) + "{bad\n", encoding="utf-8")
    out = folder / "out[/]"
    result = ok(run_cli("annotate", source, "-o", out, "--no-progress"))
    squeezed = "".join(result.stderr.split())  # the table title may wrap
    assert "".join(f"splitreason annotate → {out}".split()) in squeezed
    assert "".join(f"(see {out / 'rejects.jsonl'})".split()) in squeezed
    export = ok(run_cli("export", out, "-o", folder / "train[x].jsonl"))
    assert f"wrote 2 examples to {folder / 'train[x].jsonl'}" in " ".join(export.stderr.split())
    missing = run_cli("annotate", folder / "nope[x].jsonl", "-o", out, "--no-progress")
    assert_one_clean_error(missing, f"input not found: {folder / 'nope[x].jsonl'}")


def test_out_inside_the_input_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows_of(2)) + "{bad\n", encoding="utf-8")
    # `splitreason annotate .` from the data folder: the default OUT (./splitreason-out) would be
    # read back as input on resume, its rejects.jsonl growing from its own lines without end.
    result = run_cli("annotate", ".", "--no-progress", cwd=data, timeout=60)
    assert_one_clean_error(result, "inside the input directory")
    assert not (data / "splitreason-out").exists()
    # A hidden folder is never read as input, so it may hold OUT.
    ok(run_cli("annotate", data, "-o", data / ".out", "--no-progress"))
    ok(run_cli("annotate", data, "-o", data / ".out", "--no-progress", timeout=60))
    assert len(read_jsonl(data / ".out" / "rejects.jsonl")) == 1


def test_judges_command_lists_heuristic(tmp_path: Path) -> None:
    result = ok(run_cli("judges", env=cli_env(HOME=str(tmp_path))))
    assert "heuristic" in result.stdout and "rules (for trying the pipeline offline)" in result.stdout
    # What the heuristic judge is, said once and plainly, on one line: a note, so on stderr.
    assert "Note:" not in result.stdout
    [note] = [line for line in result.stderr.splitlines() if line.startswith("Note:")]
    assert "for trying the pipeline offline" in note and "barely above chance" in note
    assert "not that it chose the right steps" in note


def test_a_jsonl_gz_that_is_not_gzip_leaves_no_output_directory(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"garbage\n")
    out = tmp_path / "q2"
    result = run_cli("annotate", bad, "-o", out, "--no-progress", timeout=60)
    assert result.returncode == 2, result.stderr
    assert_one_clean_error(result, "corrupt or truncated gzip file", str(bad))
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))

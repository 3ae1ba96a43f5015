"""`splitreason export` through the real CLI: the SFT rows, their tags, and the other outputs."""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path

import pytest

from splitreason import CLOSE_TAG, OPEN_TAG
from tests.builders import SCRIPTED_CASES, write_scripted_input
from tests.judge_server import ScriptedJudgeServer
from tests.helpers import annotations, assert_one_clean_error, ok, read_jsonl, run_cli

DEFAULT_INSTRUCTION = (Path(__file__).resolve().parents[1] / "splitreason/prompts/offload_instruction.txt") \
    .read_text(encoding="utf-8").strip()


def annotate_scripted(tmp: Path) -> Path:
    """One OUT holding accepted, review and rejected traces, from the scripted judge."""
    source = write_scripted_input(tmp / "scripted.jsonl")
    out = tmp / "scripted-out"
    script = {case: [action] for case, action in SCRIPTED_CASES.items()}
    with ScriptedJudgeServer(script=script) as server:
        ok(run_cli("annotate", source, "-o", out, "--judge", "openai:scripted-judge", "--base-url", server.base_url,
                   "--no-progress", "--max-attempts", "2", "--retry-initial", "0"))
    return out


@pytest.fixture(scope="module")
def scripted_out(tmp_path_factory) -> Path:
    return annotate_scripted(tmp_path_factory.mktemp("export-scripted"))


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory) -> Path:
    """The bundled sample (real-looking LaTeX traces) through the heuristic judge."""
    from splitreason.io.inputs import bundled_sample

    assert bundled_sample().exists(), "the bundled sample is missing"
    out = tmp_path_factory.mktemp("export-sample") / "out"
    ok(run_cli("annotate", bundled_sample(), "-o", out, "--no-progress"))
    return out


def _is_word(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char).startswith("M")


def check_spans_are_clean(record: dict) -> None:
    """Tags never split a word or a LaTeX command, never hug whitespace, never cut a think tag."""
    text = record["trace"]
    for span in record["spans"]:
        start, end = span["start"], span["end"]
        assert text[start:end] == span["text"]
        where = f"{record['trace_id']} {start}:{end} {text[max(0, start - 15):end + 15]!r}"
        assert not text[start].isspace() and not text[end - 1].isspace(), where
        if start > 0:
            assert not (_is_word(text[start - 1]) and _is_word(text[start])), where
            backslashes = len(text[:start]) - len(text[:start].rstrip("\\"))
            assert backslashes % 2 == 0, where  # not between a backslash and its command
        if end < len(text):
            assert not (_is_word(text[end - 1]) and _is_word(text[end])), where
            if text[end - 1] == "\\":
                backslashes = len(text[:end]) - len(text[:end].rstrip("\\"))
                assert backslashes % 2 == 0, where
        for tag in ("<think>", "</think>"):
            assert tag not in span["text"], where
            for cut in range(1, len(tag)):
                assert not (text[start - cut:start + len(tag) - cut] == tag), where
                assert not (text[end - cut:end + len(tag) - cut] == tag), where


def check_rows(rows: list[dict], records: dict[str, dict], instruction: str, fmt: str = "messages") -> None:
    for row in rows:
        record = records[row["id"]]
        if fmt == "messages":
            assert set(row) == {"id", "messages", "metadata"}
            user, assistant = row["messages"]
        else:
            assert set(row) == {"id", "prompt", "completion", "metadata"}
            [user], [assistant] = row["prompt"], row["completion"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        expected_user = f"{record['problem'].rstrip()}\n\n{instruction}" if instruction else record["problem"]
        assert user["content"] == expected_user
        content = assistant["content"]
        assert content.replace(OPEN_TAG, "").replace(CLOSE_TAG, "") == record["trace"]  # the round trip
        assert content.count(OPEN_TAG) == content.count(CLOSE_TAG) == len(record["spans"])
        # Tags sit exactly at the span offsets, properly nested and in order.
        pieces = re.findall(re.escape(OPEN_TAG) + "(.*?)" + re.escape(CLOSE_TAG), content, flags=re.S)
        assert pieces == [span["text"] for span in record["spans"]]
        assert row["metadata"]["status"] == record["status"]
        assert row["metadata"]["spans"] == len(record["spans"])
        assert row["metadata"]["coverage"] == record["coverage"]


def test_messages_export_round_trips_every_row(scripted_out: Path, tmp_path: Path) -> None:
    records = {record["trace_id"]: record for record in annotations(scripted_out)}
    statuses = {status: sorted(i for i, r in records.items() if r["status"] == status)
                for status in ("accepted", "review", "rejected")}
    assert all(statuses.values()), statuses  # the scripted run has every status

    train = tmp_path / "train.jsonl"
    result = ok(run_cli("export", scripted_out, "-o", train))
    rows = read_jsonl(train)
    assert sorted(row["id"] for row in rows) == statuses["accepted"]
    check_rows(rows, records, DEFAULT_INSTRUCTION)
    assert all(row["metadata"]["reviewed"] is False for row in rows)
    assert f"wrote {len(rows)} examples" in result.stderr
    skipped = f"rejected {len(statuses['rejected'])}, review {len(statuses['review'])}"
    assert f"(skipped: {skipped})" in result.stderr, result.stderr
    chars = sum(len(records[i]["trace"]) for i in statuses["accepted"])
    inside = sum(s["end"] - s["start"] for i in statuses["accepted"] for s in records[i]["spans"])
    assert f"offload share: {inside / chars:.1%} of characters" in result.stderr
    assert "of tokens" not in result.stderr
    # Written atomically through a temp file, yet with the mode any new file gets (not mkstemp's 0600).
    plain = tmp_path / "plain.txt"
    plain.write_text("x", encoding="utf-8")
    mode = plain.stat().st_mode & 0o777
    assert train.stat().st_mode & 0o777 == mode
    assert (scripted_out / "run.json").stat().st_mode & 0o777 == mode
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    with_review = tmp_path / "with-review.jsonl"
    ok(run_cli("export", scripted_out, "-o", with_review, "--include-review"))
    rows = read_jsonl(with_review)
    assert sorted(row["id"] for row in rows) == sorted(statuses["accepted"] + statuses["review"])
    check_rows(rows, records, DEFAULT_INSTRUCTION)
    # A review row without spans is the plain trace.
    plain = [row for row in rows if records[row["id"]]["status_reason"] == "no_spans"]
    assert plain and all(row["messages"][1]["content"] == records[row["id"]]["trace"] for row in plain)


@pytest.mark.slow
def test_instructions_and_prompt_completion(scripted_out: Path, tmp_path: Path) -> None:
    records = {record["trace_id"]: record for record in annotations(scripted_out)}
    accepted = sorted(i for i, r in records.items() if r["status"] == "accepted")

    custom = tmp_path / "custom.jsonl"
    ok(run_cli("export", scripted_out, "-o", custom, "--instruction", "Use <bigmodel> when stuck."))
    check_rows(read_jsonl(custom), records, "Use <bigmodel> when stuck.")

    instruction_file = tmp_path / "instruction.txt"
    instruction_file.write_text("\n  Line one of the instruction.\nLine two.  \n\n", encoding="utf-8")
    from_file = tmp_path / "from-file.jsonl"
    ok(run_cli("export", scripted_out, "-o", from_file, "--instruction-file", instruction_file))
    check_rows(read_jsonl(from_file), records, "Line one of the instruction.\nLine two.")

    bare = tmp_path / "bare.jsonl"
    ok(run_cli("export", scripted_out, "-o", bare, "--no-instruction"))
    rows = read_jsonl(bare)
    check_rows(rows, records, "")
    assert all(row["messages"][0]["content"] == records[row["id"]]["problem"] for row in rows)

    pc = tmp_path / "pc.jsonl"
    ok(run_cli("export", scripted_out, "-o", pc, "--format", "prompt-completion"))
    rows = read_jsonl(pc)
    assert sorted(row["id"] for row in rows) == accepted
    check_rows(rows, records, DEFAULT_INSTRUCTION, fmt="prompt-completion")

    bad = run_cli("export", scripted_out, "-o", tmp_path / "x.jsonl", "--format", "chatml")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--format" in bad.stderr
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.slow
def test_hf_dataset_and_tokenizer_share(sample_out: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    records = {record["trace_id"]: record for record in annotations(sample_out)}
    texts = [record["trace"] for record in records.values()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    folder = tmp_path / "tiny-tokenizer"
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))

    train, dataset_dir = tmp_path / "train.jsonl", tmp_path / "hf"
    result = ok(run_cli("export", sample_out, "-o", train, "--hf-dataset", dataset_dir, "--tokenizer", folder))
    rows = read_jsonl(train)
    accepted = sorted(i for i, r in records.items() if r["status"] == "accepted")
    assert sorted(row["id"] for row in rows) == accepted and len(rows) >= 20
    check_rows(rows, records, DEFAULT_INSTRUCTION)

    text = " ".join(result.stderr.split())
    char_share = float(re.search(r"offload share: ([\d.]+)% of characters", text).group(1)) / 100
    match = re.search(r"offload share: ([\d.]+)% of tokens \(([\d,]+) of ([\d,]+), tokenizer", text)
    assert match, result.stderr
    token_share = float(match.group(1)) / 100
    inside, total = int(match.group(2).replace(",", "")), int(match.group(3).replace(",", ""))
    assert total == sum(len(tokenizer.encode(records[i]["trace"]).ids) for i in accepted)
    assert 0 < inside < total and abs(inside / total - token_share) < 0.001
    assert abs(token_share - char_share) < 0.04, (token_share, char_share)
    assert f"saved {len(rows)} rows as a Hugging Face dataset" in text

    from datasets import load_from_disk

    dataset = load_from_disk(str(dataset_dir))
    assert len(dataset) == len(rows)
    assert dataset[0]["id"] == rows[0]["id"] and dataset[0]["messages"] == rows[0]["messages"]
    assert [row["messages"][1]["content"] for row in dataset] == [row["messages"][1]["content"] for row in rows]


def test_tags_never_split_words_or_commands(sample_out: Path, scripted_out: Path) -> None:
    checked = 0
    for out in (sample_out, scripted_out):
        for record in annotations(out):
            check_spans_are_clean(record)
            checked += len(record["spans"])
    assert checked > 50
    fuzzy = [span for record in annotations(scripted_out) for span in record["spans"] if span["match"] != "exact"]
    assert fuzzy  # the paraphrased quotes went through fuzzy alignment and snapping


def test_export_without_annotations_is_a_clear_error(tmp_path: Path, scripted_out: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("export", empty, "-o", tmp_path / "train.jsonl")
    assert_one_clean_error(result, "no annotations")
    assert result.returncode == 2
    assert not (tmp_path / "train.jsonl").exists()

    missing = run_cli("export", tmp_path / "nope", "-o", tmp_path / "train.jsonl")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "does not exist" in missing.stderr

    # A run directory whose annotations folder has no shard file holds nothing to export either.
    hollow = tmp_path / "hollow"
    (hollow / "annotations").mkdir(parents=True)
    result = run_cli("export", hollow, "-o", tmp_path / "train.jsonl")
    assert_one_clean_error(result, "no annotations")

    # Options that cannot be honoured are refused in one clear message, not an internal error.
    bad_tokenizer = run_cli("export", scripted_out, "-o", tmp_path / "t.jsonl", "--tokenizer", tmp_path / "no-tok")
    assert bad_tokenizer.returncode == 2 and "Traceback" not in bad_tokenizer.stderr
    assert "internal error" not in bad_tokenizer.stderr and "cannot load tokenizer" in bad_tokenizer.stderr
    unaccepted = tmp_path / "unaccepted"
    shutil.copytree(scripted_out, unaccepted)
    for shard in (unaccepted / "annotations").glob("shard-*.jsonl"):
        kept = [line for line in shard.read_text(encoding="utf-8").splitlines(keepends=True)
                if json.loads(line)["status"] != "accepted"]
        shard.write_text("".join(kept), encoding="utf-8")
    nothing = run_cli("export", unaccepted, "-o", tmp_path / "none.jsonl", "--hf-dataset", tmp_path / "hf")
    assert nothing.returncode == 2 and "Traceback" not in nothing.stderr
    assert "internal error" not in nothing.stderr and "the export is empty" in nothing.stderr
    assert read_jsonl(tmp_path / "none.jsonl") == [] and not (tmp_path / "hf").exists()

    # A corrupt line in the middle of an annotation file is reported, not skipped.
    broken = tmp_path / "broken"
    shutil.copytree(scripted_out, broken)
    shard = next((broken / "annotations").glob("shard-*.jsonl"))
    lines = shard.read_text(encoding="utf-8").splitlines(keepends=True)
    shard.write_text(lines[0] + "{garbage\n" + "".join(lines[1:]), encoding="utf-8")
    result = run_cli("export", broken, "-o", tmp_path / "train.jsonl")
    assert_one_clean_error(result, shard.name, ":2")
    assert not (tmp_path / "train.jsonl").exists()


def test_heuristic_rows_are_marked_and_export_warns_once(sample_out: Path, scripted_out: Path, tmp_path: Path) -> None:
    """Rows from the offline heuristic judge say so in their metadata, and export says so in one line;
    an LLM judge's rows are "llm" and get no warning."""
    result = ok(run_cli("export", sample_out, "-o", tmp_path / "h.jsonl"))
    rows = read_jsonl(tmp_path / "h.jsonl")
    assert rows and {row["metadata"]["judge_kind"] for row in rows} == {"offline heuristic"}
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("warning")]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"warning: {len(rows)} of {len(rows)} rows were marked by the offline heuristic judge")
    assert 'judge_kind "offline heuristic"' in warnings[0] and "not labels to train a model on" in warnings[0]

    result = ok(run_cli("export", scripted_out, "-o", tmp_path / "llm.jsonl"))
    rows = read_jsonl(tmp_path / "llm.jsonl")
    assert rows and {row["metadata"]["judge_kind"] for row in rows} == {"llm"}
    assert not [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("warning")]


def test_annotate_with_the_heuristic_judge_says_what_it_is(tmp_path: Path, scripted_out: Path) -> None:
    result = ok(run_cli("annotate", "-o", tmp_path / "out", "--limit", "3", "--no-progress"))
    notes = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "for trying the pipeline offline" in notes[0] and "LLM judge" in notes[0]


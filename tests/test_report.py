"""`splitreason report`: the HTML page and terminal summary, through the real CLI.

The main run is the bundled sample (and a few rows with duplicates, a leaked evaluation problem
and markup in problem texts) curated by the real `splitreason curate`, annotated with thresholds
that put traces in all three statuses, plus reviews saved in the real review store.
Judge tokens and prices come from runs against the scripted judge server (tests/judge_server.py,
a test double for an LLM server). Numbers are checked against `splitreason stats --json`,
`splitreason export` and counts made here from the files.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
import tracemalloc
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from splitreason.curate.decontaminate import RULE_MEANINGS
from splitreason.exports.tags import strip_tags
from tests.builders import CORPUS, EVAL, SCRIPT_PROBLEM, URN, build_curated_run, save_reviews
from tests.browser import launch_chromium
from tests.helpers import openr1_record, reasoning_trace
from tests.judge_server import ScriptedJudgeServer
from tests.helpers import annotations, assert_one_clean_error, cli_env, ok, read_jsonl, run_cli

SCRIPT_SOURCE = "<script>alert('source')</script>"


# -- the data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curated_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    curated, out = build_curated_run(tmp_path_factory.mktemp("report"))
    return curated, out, save_reviews(out)


@pytest.fixture(scope="module")
def page(curated_run) -> tuple[str, str]:
    _, out, _ = curated_run
    result = ok(run_cli("report", out, "-o", out / "report.html", "--no-progress"))
    return (out / "report.html").read_text(encoding="utf-8"), result.stdout


class ReportPage(HTMLParser):
    """Text, tables (rows of cell texts) and images of each <section id=...>, and every
    attribute of every tag (to look for external references)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, dict] = {}
        self.attributes: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self._section: dict | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]
        attrs = dict(attrs)
        if tag == "section":
            self._section = self.sections.setdefault(attrs["id"], {"text": [], "tables": [], "images": []})
        elif self._section is not None:
            if tag == "table":
                self._section["tables"].append([])
            elif tag == "tr":
                self._row = []
                self._section["tables"][-1].append(self._row)
            elif tag in ("td", "th"):
                self._cell = []
            elif tag == "img":
                self._section["images"].append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "section":
            self._section["text"] = " ".join("".join(self._section["text"]).split())
            self._section = None

    def handle_data(self, data):
        if self._section is not None:
            self._section["text"].append(data)
            if self._cell is not None:
                self._cell.append(data)

    def table(self, section: str, first_header: str) -> list[list[str]]:
        for table in self.sections[section]["tables"]:
            if table and table[0] and table[0][0] == first_header:
                return table[1:]
        raise AssertionError(f"no table starting with {first_header!r} in #{section}")


def dist_text(dist: dict) -> str:
    return " · ".join(f"{k} {v:g}" for k, v in dist.items())


# -- the page ----------------------------------------------------------------------------------

def test_every_section_holds_the_numbers_of_the_run(curated_run, page) -> None:
    _, out, expected_review = curated_run
    html, _ = page
    report = ReportPage(html)
    stats = json.loads(ok(run_cli("stats", out, "--json")).stdout)
    records = annotations(out)
    assert set(report.sections) == {"overview", "coverage", "spans", "span-length", "confidence", "review",
                                    "offload", "curation", "cost", "evaluations"}
    assert set(stats["status"]) == {"accepted", "review", "rejected"}  # the thresholds did their job

    reasons = report.table("overview", "status")
    assert {f"{status}/{reason}": int(count) for status, reason, count in reasons} == stats["reasons"]
    overview = report.sections["overview"]["text"]
    for status, count in stats["status"].items():
        assert f"{status}{count}{count / len(records):.1%}" in overview.replace(" ", "")
    judges = report.table("overview", "judge")
    assert judges == [["heuristic", "heuristic", "rules-v1", records[0]["judge"]["prompt_hash"], str(len(records))]]

    coverage = report.sections["coverage"]["text"]
    assert dist_text(stats["coverage"]) in coverage and "Target 15.0%" in coverage
    near = sum(abs(r["coverage"] - 0.15) <= 0.3 * 0.15 for r in records)
    assert f"{near} of {len(records)}" in coverage
    histogram = report.sections["coverage"]["tables"][0]
    assert [int(n) for n in histogram[1][1:]] == list(stats["coverage_histogram"].values())

    assert dist_text(stats["spans_per_trace"]) in report.sections["spans"]["text"]
    lengths = [s["end"] - s["start"] for r in records for s in r["spans"]]
    span_text = report.sections["span-length"]["text"]
    assert f"{len(lengths)} spans of the judge" in span_text and f"max {max(lengths):g}" in span_text
    assert stats["span_chars"]["max"] == max(lengths)  # the addition to `stats --json` agrees

    confidence = {row[0]: row for row in report.table("confidence", "status")}
    for status, count in stats["status"].items():
        assert confidence[status][1] == str(count)
        assert confidence[status][2] == dist_text(stats["confidence_by_status"][status])

    review = report.sections["review"]["text"]
    assert stats["review"]["reviewed"] == expected_review["reviewed"]
    assert stats["review"]["decisions"] == expected_review["decisions"]
    assert stats["review"]["reviewers"] == expected_review["reviewers"]
    assert f"waiting{expected_review['waiting']}" in review.replace(" ", "")
    assert f"changed{expected_review['changed']}" in review.replace(" ", "")
    assert {name: int(n) for name, n in report.table("review", "reviewer")} == expected_review["reviewers"]
    agreement = {row[0]: row[1:] for row in report.table("review", "between")}
    assert agreement["reviewer vs judge spans (character F1, accepted traces)"] == \
        ["2", dist_text(stats["review"]["judge_agreement"])]
    assert agreement["reviewer vs reviewer spans (character F1)"][0] == "1"
    assert "No reviews yet" not in review

    cost = report.table("cost", "judge")
    assert cost[0][:4] == ["heuristic", str(len(records)), "0", "0"]
    assert cost[0][7] == "$0.0000"  # the heuristic judge sends nothing: a price of 0 is a fact


def test_offload_share_counts_what_export_writes(curated_run, page, tmp_path: Path) -> None:
    _, out, _ = curated_run
    report = ReportPage(page[0])
    export = ok(run_cli("export", out, "-o", tmp_path / "train.jsonl"))
    rows = read_jsonl(tmp_path / "train.jsonl")
    inside, total = defaultdict(int), defaultdict(int)
    for row in rows:
        tagged = row["messages"][1]["content"]
        text = strip_tags(tagged)
        marked = sum(len(part.split("</bigmodel>", 1)[0]) for part in tagged.split("<bigmodel>")[1:])
        for key in ("all", row["metadata"]["source"]):
            inside[key] += marked
            total[key] += len(text)
    text = report.sections["offload"]["text"]
    assert "In characters: no --tokenizer was given" in text
    assert f"{inside['all'] / total['all']:.1%} of characters" in export.stderr
    assert f"{inside['all']:,} of {total['all']:,} characters" in text
    assert f"exportedtraces{len(rows)}" in text.replace(" ", "")
    by_source = {row[0]: row[1:] for row in report.table("offload", "source")}
    assert set(by_source) == {row["metadata"]["source"] for row in rows}
    for source, (traces, marked, chars, share) in by_source.items():
        assert (int(marked.replace(",", "")), int(chars.replace(",", ""))) == (inside[source], total[source])
        assert share == f"{inside[source] / total[source]:.1%}"
        assert traces == str(sum(row["metadata"]["source"] == source for row in rows))
    by_type = report.table("offload", "problem type")
    assert sum(int(row[1]) for row in by_type) == len(rows)


def test_curation_results_come_from_curate_json(curated_run, page) -> None:
    curated, _, _ = curated_run
    summary = json.loads((curated / "curate.json").read_text())
    report = ReportPage(page[0])
    text = report.sections["curation"]["text"]
    assert str(curated / "curate.json") in text  # found through run.json config.input
    steps = report.table("curation", "step")
    assert [(row[0], int(row[1]), int(row[2])) for row in steps] == \
        [(step["step"], step["in"], step["out"]) for step in summary["steps"]]
    dedup_step = next(row for row in steps if row[0] == "dedup")
    assert dedup_step[3] == "exact_duplicate 1"
    minhash = summary["dedup"]["minhash"]
    methods = {row[0]: row[1:] for row in report.table("curation", "method")}
    assert methods["MinHash"] == [f"Jaccard ≥ {minhash['threshold']}, {minhash['num_perm']} permutations, "
                                  f"{minhash['ngram']}-grams", "0", "0", "0"]
    assert methods["embedding"] == ["not run"]
    clusters = report.table("curation", "kind")
    assert [(row[0], row[1], row[2]) for row in clusters] == [("exact", "2", "script-original")]
    eval_sets = {row[0]: row[1:] for row in report.table("curation", "eval set")}
    assert eval_sets == {"aime24": [summary["decontamination"]["eval_sets"][0]["source"], "1", "0", "1", "0", "1"]}
    rules = {row[0]: row[1:] for row in report.table("curation", "decided by")}
    assert rules["contains"] == [RULE_MEANINGS["contains"], "1", "1"]
    pairs = report.table("curation", "training problem")
    assert pairs[0][0].startswith(f"leak{SCRIPT_PROBLEM}") and pairs[0][2:4] == ["contains", str(
        summary["decontamination"]["examples"][0]["score"])]
    assert pairs[0][4].startswith("find the least prime p · the least prime p greater")
    assert f"kept{summary['counts']['kept']}" in text.replace(" ", "")


def test_near_matches_kept_have_their_row_and_examples(curated_run, tmp_path) -> None:
    """A curation with a near match (the leaked wording with another number, kept) and a thin corpus
    sample: the "decided by" table has the near_match row (kept, no traces removed), the near match
    is listed with the numbers it lacks, and the thin-sample warning is on the page."""
    _, out, _ = curated_run
    near = URN.replace("$16$ green", "$12$ green")
    rows = [openr1_record("near", [reasoning_trace(1)], problem=near)]
    rows += [openr1_record(f"corpus{i}", [reasoning_trace(10 + i)], problem=p) for i, p in enumerate(CORPUS)]
    source, evals = tmp_path / "in.jsonl", tmp_path / "aime.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    evals.write_text("".join(json.dumps({"id": p.id, "problem": p.problem}) + "\n" for p in EVAL))
    curated = tmp_path / "curated"
    ok(run_cli("curate", source, "-o", curated, "--eval-set", evals, "--no-near-dedup", "--no-progress"))
    target = tmp_path / "report.html"
    ok(run_cli("report", out, "-o", target, "--curation", curated, "--no-progress"))
    report = ReportPage(target.read_text(encoding="utf-8"))
    rules = {row[0]: row[1:] for row in report.table("curation", "decided by")}
    assert rules["near_match"] == [f"{RULE_MEANINGS['near_match']} (kept)", "1", "0"]
    shown = [row for row in report.table("curation", "training problem") if row[0].startswith("near")]
    assert len(shown) == 1 and shown[0][1].startswith("aime urn") and shown[0][2].startswith("near_match")
    assert shown[0][2].endswith("numbers not in the problem: 16")
    text = " ".join(report.sections["curation"]["text"].split())
    assert "Near matches" in text and "1 near matches (1 kept)" in text
    assert "Warning: stock phrasing was learned from" in text


def test_the_page_is_self_contained_and_escapes_the_data(page) -> None:
    html, _ = page
    report = ReportPage(html)
    from PIL import Image

    images = [src for section in report.sections.values() for src in section["images"]]
    assert len(images) >= 8
    for src in images:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 100
            image.verify()
    external = [(tag, name, value) for tag, name, value in report.attributes
                if name in ("src", "href", "action", "srcset") and not value.startswith(("data:", "#"))]
    assert external == []
    assert "http://" not in html and "https://" not in html and "url(" not in html
    assert "script" not in report.tags and "link" not in report.tags  # nothing runs, nothing is fetched
    assert "default-src 'none'" in html
    # The problem text with markup is shown as text.
    assert '<script>alert("pwned")' not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; x &gt; 2." in html


def test_terminal_summary(curated_run, page) -> None:
    _, out, expected_review = curated_run
    stats = json.loads(ok(run_cli("stats", out, "--json")).stdout)
    stdout = page[1]
    assert f"{out}: {stats['traces']} traces" in stdout
    accepted = stats["status"]["accepted"]
    assert f"{accepted} ({accepted / stats['traces']:.1%})" in stdout
    assert f"{expected_review['reviewed']} reviewed, {expected_review['waiting']} waiting" in stdout
    counts = json.loads((curated_run[0] / "curate.json").read_text())["counts"]
    assert "offload share (characters)" in stdout and f"kept {counts['kept']} of {counts['traces_in']} traces" in stdout
    assert f"wrote {out / 'report.html'}" in stdout


@pytest.mark.slow
def test_without_curation_data_the_report_says_so(sample_in_review: Path, curated_run, tmp_path: Path) -> None:
    curated, _, _ = curated_run
    target = tmp_path / "plain.html"
    result = ok(run_cli("report", sample_in_review, "-o", target))  # progress bar on, input is a file
    report = ReportPage(target.read_text(encoding="utf-8"))
    assert "No curation data" in report.sections["curation"]["text"]
    assert "No reviews yet" in report.sections["review"]["text"]
    assert "no curation data" in result.stdout
    # --curation names the directory explicitly.
    ok(run_cli("report", sample_in_review, "-o", target, "--no-progress", "--curation", curated))
    text = ReportPage(target.read_text(encoding="utf-8")).sections["curation"]["text"]
    assert str(curated / "curate.json") in text and "aime24" in text


@pytest.mark.slow
def test_bad_curation_data_is_one_clean_error(sample_in_review: Path, tmp_path: Path) -> None:
    empty = tmp_path / "not-curated"
    empty.mkdir()
    target = tmp_path / "r.html"
    assert_one_clean_error(run_cli("report", sample_in_review, "-o", target, "--curation", empty), "no curate.json")
    (empty / "curate.json").write_text('{"format": "splitreason-curate", "format_version": 1}')
    assert_one_clean_error(run_cli("report", sample_in_review, "-o", target, "--curation", empty),
                           "not a splitreason curate summary", "input")
    (empty / "curate.json").write_text("{not json")
    assert_one_clean_error(run_cli("report", sample_in_review, "-o", target, "--curation", empty), "not valid JSON")
    assert not target.exists()


def test_an_empty_or_missing_run_is_one_clean_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_clean_error(run_cli("report", empty, "-o", tmp_path / "r.html"), "no annotations")
    missing = run_cli("report", tmp_path / "missing", "-o", tmp_path / "r.html")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_missing_matplotlib_is_one_line_with_the_install_command(sample_in_review: Path, tmp_path: Path) -> None:
    # None in sys.modules makes `import matplotlib` raise ImportError: matplotlib absent, as
    # after a plain `pip install splitreason`.
    code = ("import sys; sys.modules['matplotlib'] = None; sys.argv = ['splitreason', *sys.argv[1:]]; "
            "from splitreason.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code, "report", str(sample_in_review), "-o",
                             str(tmp_path / "r.html")], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert_one_clean_error(result, "pip install 'splitreason[report]'")
    assert result.returncode == 1  # a missing optional package is a ServiceUnavailable


# -- judge tokens and prices ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def priced_runs(tmp_path_factory) -> dict[str, Path]:
    """Two runs with real token counts from the scripted judge: one through the gpt-4o alias (a
    shipped price), one as openai:scripted-judge (no price anywhere)."""
    tmp = tmp_path_factory.mktemp("priced")
    rows = [openr1_record(f"p{i}", [reasoning_trace(i, 5)], problem=f"Problem {i}. [case:ok{i}]",
                          source=SCRIPT_SOURCE if i == 0 else "olympiads") for i in range(4)]
    source = tmp / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    runs = {"gpt-4o": tmp / "gpt4o", "openai:scripted-judge": tmp / "scripted"}
    script = {f"ok{i}": ["ok"] for i in range(4)}
    with ScriptedJudgeServer(script=script, model="gpt-4o") as server:
        env = cli_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test-key-not-real")
        ok(run_cli("annotate", source, "-o", runs["gpt-4o"], "--judge", "gpt-4o", "--no-progress", env=env))
    with ScriptedJudgeServer(script=script) as server:
        ok(run_cli("annotate", source, "-o", runs["openai:scripted-judge"], "--judge", "openai:scripted-judge",
                   "--base-url", server.base_url, "--no-progress"))
    return runs


def usage_of(out: Path) -> tuple[int, int]:
    records = annotations(out)
    return (sum(r["usage"]["prompt_tokens"] for r in records), sum(r["usage"]["completion_tokens"] for r in records))


def cost_row(html: str) -> list[str]:
    rows = ReportPage(html).table("cost", "judge")
    assert len(rows) == 1
    return rows[0]


@pytest.mark.slow
def test_cost_uses_the_shipped_price_and_a_prices_file_changes_it(priced_runs, tmp_path: Path) -> None:
    out = priced_runs["gpt-4o"]
    prompt, completion = usage_of(out)
    assert prompt > 0 and completion > 0
    target = tmp_path / "r.html"
    ok(run_cli("report", out, "-o", target, "--no-progress"))
    row = cost_row(target.read_text(encoding="utf-8"))
    assert row[:4] == ["gpt-4o", "4", f"{prompt:,}", f"{completion:,}"]
    assert row[5:8] == ["2.5", "10.0", f"${(prompt * 2.5 + completion * 10.0) / 1e6:,.4f}"]
    assert "list price as of 2025-10-01" in row[9]

    prices = tmp_path / "prices.toml"
    prices.write_text('[judges.gpt-4o]\nprompt = 1000\ncompletion = 3000.5\nnote = "our contract"\n')
    summary = ok(run_cli("report", out, "-o", target, "--no-progress", "--prices", prices)).stdout
    html = target.read_text(encoding="utf-8")
    row = cost_row(html)
    dollars = (prompt * 1000 + completion * 3000.5) / 1e6
    assert row[5:8] == ["1000.0", "3000.5", f"${dollars:,.2f}"] and "prices.toml: our contract" in row[9]
    assert f"${dollars:,.2f}" in summary
    # The source name with markup is escaped in the offload tables too.
    assert SCRIPT_SOURCE not in html and "&lt;script&gt;alert(&#39;source&#39;)&lt;/script&gt;" in html


@pytest.mark.slow
def test_a_judge_without_price_shows_no_price_never_a_cost(priced_runs, tmp_path: Path) -> None:
    out = priced_runs["openai:scripted-judge"]
    prompt, completion = usage_of(out)
    target = tmp_path / "r.html"
    summary = ok(run_cli("report", out, "-o", target, "--no-progress")).stdout
    html = target.read_text(encoding="utf-8")
    row = cost_row(html)
    assert row[:4] == ["openai:scripted-judge", "4", f"{prompt:,}", f"{completion:,}"]
    assert row[5:] == ["no price", "no price for openai:scripted-judge"]
    assert "no price for openai:scripted-judge" in summary
    assert "not counted: openai:scripted-judge (no price)" in ReportPage(html).sections["cost"]["text"]

    prices = tmp_path / "prices.toml"
    prices.write_text('[judges."openai:scripted-judge"]\nprompt = 0.5\ncompletion = 1.5\n')
    ok(run_cli("report", out, "-o", target, "--no-progress", "--prices", prices))
    assert cost_row(target.read_text(encoding="utf-8"))[7] == f"${(prompt * 0.5 + completion * 1.5) / 1e6:,.4f}"


def test_the_shipped_table_covers_every_built_in_alias() -> None:
    import tomllib
    from importlib import resources

    from splitreason.report.prices import PriceTable

    aliases = tomllib.loads(resources.files("splitreason.judges").joinpath("aliases.toml").read_text())["judges"]
    table = PriceTable.load()
    assert set(table.entries) == {"heuristic", *aliases}
    assert table.as_of and all(price.note for price in table.entries.values())
    assert not table.entries["qwen-32b"].known  # self-hosted: no list price to copy


def test_tokens_of_several_judges_are_priced_only_when_their_prices_agree(tmp_path: Path) -> None:
    from splitreason.report.stats import JudgeUsage
    from splitreason.report.prices import PriceTable

    prices = tmp_path / "prices.toml"
    prices.write_text('[judges."openai:a"]\nprompt = 2.5\ncompletion = 10\n')
    table = PriceTable.load(prices)

    def usage(*judges: str) -> JudgeUsage:
        counted = JudgeUsage(judges=judges)
        counted.add(1_000, 3_000)
        counted.add(500, 0)
        return counted

    same = table.cost("gpt-4o + openai:a", usage("gpt-4o", "openai:a"))
    assert same.dollars == pytest.approx((1_500 * 2.5 + 3_000 * 10) / 1e6) and same.missing is None
    different = table.cost("gpt-4o + claude-sonnet", usage("gpt-4o", "claude-sonnet"))
    assert different.dollars is None and "recorded together" in different.missing
    unknown = table.cost("gpt-4o + openai:b", usage("gpt-4o", "openai:b"))
    assert unknown.dollars is None and unknown.missing == "no price for openai:b"


@pytest.mark.parametrize("content, needle", [
    ("[judges.gpt-4o\nprompt = 1", "not valid TOML"),
    ("[judges.gpt-4o]\nprompt = -1\ncompletion = 2", "judges.gpt-4o.prompt must be a number >= 0"),
    ("[judges.gpt-4o]\npromt = 1\ncompletion = 2", "unknown key 'promt'"),
    ("[judges.gpt-4o]\nprompt = 1", "needs both prompt and completion"),
    ('[judges.gpt-4o]\nprompt = "cheap"\ncompletion = 2', "must be a number"),
    ("currency = 'EUR'", "unknown key 'currency'"),
])
def test_a_bad_prices_file_is_one_clean_error(sample_in_review: Path, tmp_path: Path, content: str,
                                              needle: str) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(content)
    target = tmp_path / "r.html"
    assert_one_clean_error(run_cli("report", sample_in_review, "-o", target, "--prices", prices), needle,
                           str(prices))
    assert not target.exists()


@pytest.mark.slow
def test_a_run_whose_judge_never_answered_still_reports(tmp_path: Path) -> None:
    rows = [openr1_record(f"f{i}", [reasoning_trace(i, 3)], problem=f"Problem {i}. [case:bad{i}]") for i in range(3)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out"
    with ScriptedJudgeServer(script={f"bad{i}": ["nonjson"] for i in range(3)}) as server:
        ok(run_cli("annotate", source, "-o", out, "--judge", "openai:scripted-judge", "--base-url", server.base_url,
                   "--no-progress", "--max-attempts", "1", "--retry-initial", "0"))
    assert {record["status"] for record in annotations(out)} == {"rejected"}
    ok(run_cli("report", out, "-o", tmp_path / "r.html", "--no-progress"))
    report = ReportPage((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "No trace has a judge answer" in report.sections["coverage"]["text"]
    assert "No spans" in report.sections["span-length"]["text"]
    assert "No trace would be exported yet" in report.sections["offload"]["text"]
    assert [row[0] for row in report.table("overview", "status")] == ["rejected"]


# -- tokens of the model to be trained -------------------------------------------------------------

@pytest.mark.slow
def test_with_a_tokenizer_the_offload_share_is_in_its_tokens(curated_run, tmp_path: Path) -> None:
    from tests.tiny_model import build_tiny_model

    _, out, _ = curated_run
    tokenizer = build_tiny_model(tmp_path / "tiny")
    target = tmp_path / "tokens.html"
    ok(run_cli("report", out, "-o", target, "--no-progress", "--tokenizer", tokenizer))
    export = ok(run_cli("export", out, "-o", tmp_path / "train.jsonl", "--tokenizer", tokenizer)).stderr
    report = ReportPage(target.read_text(encoding="utf-8"))
    text = report.sections["offload"]["text"]
    line = next(line for line in export.splitlines() if "of tokens" in line)
    inside, total = line.split("(", 1)[1].split(", tokenizer")[0].split(" of ")
    assert f"{inside} of {total} tokens" in text and f"In tokens of {tokenizer}" in text
    span_text = report.sections["span-length"]["text"]
    assert f"Tokens ({tokenizer}, each span's text tokenized on its own)" in span_text
    assert len(report.sections["span-length"]["images"]) == 1


# -- memory ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_memory_stays_bounded_by_the_numbers_not_the_traces(sample_in_review: Path, tmp_path: Path,
                                                            monkeypatch) -> None:
    """A run of ~28 M characters of traces: the report keeps per-trace numbers, not the traces.
    It reads the files in blocks of whole lines (tables/run.py); blocks of 256 KiB here, so that what
    one block holds is small beside the run, as 4 MiB blocks are beside a real one. (tracemalloc sees
    Python's allocations; polars' own memory is measured by benchmarks/bench_run_tables.py.)"""
    from splitreason.report.collect import collect_report
    from splitreason.report.html import render_html

    monkeypatch.setattr("splitreason.tables.run.BLOCK_BYTES", 256 << 10)

    out = tmp_path / "big"
    (out / "annotations").mkdir(parents=True)
    lines = (sample_in_review / "annotations" / "shard-00000-of-00001.jsonl").read_text(encoding="utf-8").splitlines()
    trace_chars = 0
    with open(out / "annotations" / "shard-00000-of-00001.jsonl", "w", encoding="utf-8") as handle:
        for copy in range(150):
            for line in lines:
                record = json.loads(line)
                record["trace_id"] = f"{record['trace_id']}#{copy}"
                trace_chars += len(record["trace"])
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    shutil.copy(sample_in_review / "run.json", out / "run.json")
    assert trace_chars > 25_000_000
    import polars  # noqa: F401  imported before measuring: the module's own objects are not the run's
    tracemalloc.start()
    try:
        data = collect_report(out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.stats.traces == 150 * len(lines)
    assert peak < trace_chars / 10, f"peak {peak:,} bytes for {trace_chars:,} characters of traces"
    assert "Coverage distribution" in render_html(data)


# -- in the browser --------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_the_page_renders_in_chromium(page, curated_run) -> None:
    from playwright.sync_api import sync_playwright

    _, out, _ = curated_run
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            tab = browser.new_page(viewport={"width": 1300, "height": 900})
            errors: list[str] = []
            requests: list[str] = []
            tab.on("console", lambda message: message.type in ("error", "warning") and errors.append(message.text))
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.on("request", lambda request: requests.append(request.url))
            tab.goto((out / "report.html").as_uri())
            tab.wait_for_load_state("load")
            sizes = tab.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            assert len(sizes) >= 8 and all(done and width > 0 and height > 0 for done, width, height in sizes), sizes
            assert errors == []
            assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
            assert tab.locator("section#review").is_visible()
            assert "splitreason report" in tab.title()
        finally:
            browser.close()

"""annotate's and curate's settings: one model each, every default written once, stored in run.json,
compared on resume; run.json files written before the typed manifest still resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from splitreason.schemas.annotate import AnnotateSettings, Engine
from splitreason.schemas.curate import CurateSettings
from splitreason.schemas.run_manifest import RunManifest
from splitreason.schemas.settings import SettingsError
from tests.helpers import assert_one_clean_error, ok, run_cli


def test_every_layer_takes_its_defaults_from_the_settings() -> None:
    from splitreason.annotator.align import DEFAULT_FUZZY_THRESHOLD
    from splitreason.annotator.routing import RoutingPolicy
    from splitreason.annotator.runner import AnnotateOptions
    from splitreason.curate.dedup import DEFAULT_EMBEDDING_THRESHOLD, DEFAULT_NEAR_THRESHOLD
    from splitreason.curate.sampling import DEFAULT_LENGTH_BUCKETS, STRATA_KEYS
    from splitreason.judges.factory import JudgeSettings
    from splitreason.judges.parsing import MAX_EXCERPT_CHARS, MAX_SPANS

    settings = AnnotateSettings()
    policy = RoutingPolicy()
    for name in ("target_coverage", "min_coverage", "max_coverage", "accept_threshold", "reject_threshold",
                 "min_agreement"):
        assert getattr(policy, name) == getattr(settings, name), name
    assert DEFAULT_FUZZY_THRESHOLD == AnnotateOptions().fuzzy_threshold == settings.fuzzy_threshold
    judge = JudgeSettings()
    assert (judge.timeout, judge.retry.max_attempts, judge.retry.backoff_initial, judge.retry.backoff_max) == \
        (settings.timeout, settings.max_attempts, settings.retry_initial, settings.retry_max)
    assert (judge.sampling.temperature, judge.sampling.top_p, judge.sampling.max_tokens) == \
        (settings.temperature, settings.top_p, settings.max_tokens)
    assert (MAX_SPANS, MAX_EXCERPT_CHARS) == (settings.max_spans, settings.max_excerpt_chars)
    curate = CurateSettings()
    assert (DEFAULT_NEAR_THRESHOLD, DEFAULT_EMBEDDING_THRESHOLD) == (curate.near_threshold, curate.embedding_threshold)
    assert list(DEFAULT_LENGTH_BUCKETS) == curate.length_buckets
    assert list(STRATA_KEYS) == [key.value for key in curate.stratify]
    # The number 0.85 is written in one file of the package (the plots' alpha=0.85 is a colour, not it).
    import re

    package = Path(__file__).resolve().parents[1] / "splitreason"
    holders = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                     if re.search(r"(?<![\w.])0\.85(?![\d])(?<!alpha=0\.85)", path.read_text()))
    assert holders == ["schemas/annotate.py"], holders


def test_settings_validate_on_construction() -> None:
    with pytest.raises(SettingsError, match="the same judge is given twice"):
        AnnotateSettings.build({"judge": ["heuristic", "heuristic"]})
    with pytest.raises(SettingsError, match="--embedding-model and --semantic-threshold need --semantic-rescue"):
        AnnotateSettings.build({"semantic_threshold": 0.5})
    with pytest.raises(SettingsError, match="vllm-arg expects KEY=VALUE"):
        AnnotateSettings.build({"vllm_args": ["no-equals-sign"]})
    assert AnnotateSettings.build({"vllm_args": ["max_model_len=2048", "dtype=half"]}).vllm_args == \
        {"max_model_len": 2048, "dtype": "half"}
    assert AnnotateSettings.build({"engine": "ray"}).engine is Engine.ray
    with pytest.raises(SettingsError, match="--min-chars 9 is above --max-chars 3"):
        CurateSettings.build({"min_chars": 9, "max_chars": 3})
    assert CurateSettings.build({"sources": ["a,b", "c"]}).sources == ["a", "b", "c"]


def test_run_json_stores_the_settings_and_an_older_run_json_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = tmp_path / "annotate.toml"
    config.write_text('fuzzy-threshold = 0.9\ntarget_coverage = 0.2\nlimit = 2\n', encoding="utf-8")
    # The command line wins over the file: --limit 3, not 2.
    ok(run_cli("annotate", "-o", out, "--config", config, "--limit", "3", "--no-progress"))
    stored = json.loads((out / "run.json").read_text())
    manifest = RunManifest.model_validate(stored)
    assert manifest.state == "complete" and len(manifest.invocations) == 1
    assert manifest.settings["fuzzy_threshold"] == 0.9 and manifest.settings["limit"] == 3
    assert (manifest.config.fuzzy_threshold, manifest.config.target_coverage, manifest.config.limit) == (0.9, 0.2, 3)

    # run.json as runs wrote it before the settings were recorded: no "settings" key.
    del stored["settings"]
    (out / "run.json").write_text(json.dumps(stored), encoding="utf-8")
    again = ok(run_cli("annotate", "-o", out, "--config", config, "--limit", "3", "--no-progress"))
    assert "input:" in again.stderr and "judge: heuristic" in again.stderr
    resumed = RunManifest.model_validate(json.loads((out / "run.json").read_text()))
    assert len(resumed.invocations) == 2 and resumed.invocations[-1]["already_done"] == 3
    assert resumed.settings is not None

    # A setting that shapes the output, changed: refused in one line that names it.
    refused = run_cli("annotate", "-o", out, "--limit", "3", "--fuzzy-threshold", "0.8", "--target-coverage", "0.2",
                      "--no-progress")
    assert_one_clean_error(refused, "fuzzy_threshold: 0.9 -> 0.8")


def test_a_run_json_that_is_not_a_manifest_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ok(run_cli("annotate", "-o", out, "--limit", "1", "--no-progress"))
    stored = json.loads((out / "run.json").read_text())
    stored["state"] = "exploded"
    (out / "run.json").write_text(json.dumps(stored), encoding="utf-8")
    assert_one_clean_error(run_cli("annotate", "-o", out, "--limit", "1", "--no-progress"),
                           "is not a splitreason run manifest", "state")


def test_each_invocation_keeps_its_own_settings(tmp_path: Path) -> None:
    # A resume may change operational settings; run.json's `settings` are the latest, and every
    # invocation says what it ran with, so the history of a run is never rewritten by its last part.
    out = tmp_path / "out"
    ok(run_cli("annotate", "--limit", "3", "-o", out, "--concurrency", "2", "-q"))
    ok(run_cli("annotate", "--limit", "6", "-o", out, "--concurrency", "5", "-q"))
    manifest = RunManifest.load(json.loads((out / "run.json").read_text()))
    assert [entry["settings"]["concurrency"] for entry in manifest.invocations] == [2, 5]
    assert [entry["settings"]["limit"] for entry in manifest.invocations] == [3, 6]
    assert manifest.settings["concurrency"] == 5

"""The model-grounded judges reading through vLLM (CPU) prompt logprobs: the same spans as the hf
engine on the tiny pair made to disagree on planted steps."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.grounded_fixtures import planted_share, planted_traces
from tests.helpers import annotations, ok, openr1_record, run_cli
from tests.vllm_fixtures import require_vllm_venv
from tests.vllm_server import _child_env, venv_python

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(900)]

ENGINE = ["--vllm-arg", "enforce_eager=true", "--vllm-arg", "max_model_len=512", "--vllm-arg", "dtype=float32",
          "--vllm-arg", "seed=0"]


@pytest.mark.parametrize("kind", ["surprisal", "divergence"])
def test_vllm_prompt_logprobs_give_the_hf_spans(grounded_pair, tmp_path, kind):
    venv = require_vllm_venv()
    traces = planted_traces(6, seed=51)
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(openr1_record(f"u{i}", [text], problem=problem)) + "\n"
                            for i, (problem, text, _) in enumerate(traces)))
    judge = (f"surprisal:{grounded_pair.small}" if kind == "surprisal"
             else f"divergence:{grounded_pair.small},{grounded_pair.large}")
    common = ["--judge", judge, "--target-coverage", f"{planted_share(traces):.3f}", "--no-progress"]
    ok(run_cli("annotate", data, "-o", tmp_path / "hf", *common, timeout=300))
    cache_dir = tmp_path / "vllm-cache"
    env = _child_env({"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1",
                      "TRANSFORMERS_OFFLINE": "1", "VLLM_CACHE_ROOT": str(cache_dir),
                      "TORCHINDUCTOR_CACHE_DIR": str(cache_dir), "VLLM_NO_USAGE_STATS": "1"})
    command = [str(venv_python(venv)), "-m", "splitreason.cli", "annotate", str(data), "-o", str(tmp_path / "vllm"),
               *common, "--scoring-engine", "vllm", *ENGINE]
    result = subprocess.run(command, capture_output=True, text=True, timeout=800, env=env,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-4000:]
    hf, vllm = annotations(tmp_path / "hf"), annotations(tmp_path / "vllm")
    assert [[(s["start"], s["end"]) for s in r["spans"]] for r in vllm] == \
        [[(s["start"], s["end"]) for s in r["spans"]] for r in hf]
    for a, b in zip(hf, vllm):
        for x, y in zip(a["spans"], b["spans"]):
            assert abs(x["signal"] - y["signal"]) < 0.05
    assert vllm[0]["judge"]["params"]["engine"] == "vllm"

"""`--backend vllm` on GPUs: each server's memory share and the large model's tensor-parallel size
reach the vLLM server's command line (checked on the built argv: no GPU here), and shares that
cannot fit one GPU together are refused in one line before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import assert_one_clean_error, run_cli


def _value(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command else None


def test_the_launcher_command_line_carries_the_share_and_the_tensor_parallel_size():
    from splitreason.evaluate.handoff.vllm_servers import server_command

    large = server_command("python", "big", port=1, role="large", gpu_share=0.8, tensor_parallel=2, gpu=True)
    assert _value(large, "--gpu-memory-utilization") == "0.8" and _value(large, "--tensor-parallel-size") == "2"
    small = server_command("python", "small", port=2, role="small", gpu=True)  # defaults unchanged
    assert _value(small, "--gpu-memory-utilization") == "0.25" and "--tensor-parallel-size" not in small
    assert _value(server_command("python", "big", port=1, role="large", gpu=True), "--gpu-memory-utilization") == "0.6"
    cpu = server_command("python", "big", port=1, role="large", gpu_share=0.8, tensor_parallel=2, gpu=False)
    assert "--enforce-eager" in cpu and "--gpu-memory-utilization" not in cpu


def test_settings_carry_the_shares_and_refuse_ones_that_do_not_fit():
    from splitreason.schemas.evaluate_offload import EvaluateOffloadSettings
    from splitreason.schemas.settings import SettingsError

    base = {"small": "s", "large": "l", "eval_set": "aime24", "output": Path("out"), "backend": "vllm"}
    settings = EvaluateOffloadSettings.build({**base, "small_gpu_share": 0.15, "large_gpu_share": 0.8,
                                              "large_tensor_parallel": 2})
    assert (settings.small_gpu_share, settings.large_gpu_share, settings.large_tensor_parallel) == (0.15, 0.8, 2)
    for change, needle in [({"large_gpu_share": 0}, "large-gpu-share"), ({"small_gpu_share": 1.5}, "small-gpu-share"),
                           ({"large_tensor_parallel": 0}, "large-tensor-parallel"),
                           ({"small_gpu_share": 0.5}, "more than 1")]:
        with pytest.raises(SettingsError, match=needle):
            EvaluateOffloadSettings.build({**base, **change})
    # one model alone: its share may be anything up to 1
    assert EvaluateOffloadSettings.build({**base, "modes": ["large"], "large_gpu_share": 0.95}).large_gpu_share == 0.95


def test_the_cli_refuses_shares_that_do_not_fit_in_one_line(tmp_path):
    result = run_cli("evaluate", "offload", "--small", "s", "--large", "l", "--eval-set", "aime24", "-o",
                     tmp_path / "out", "--backend", "vllm", "--small-gpu-share", "0.5", "--large-gpu-share", "0.6")
    assert result.returncode == 2
    assert_one_clean_error(result, "more than 1")
    assert not (tmp_path / "out").exists()

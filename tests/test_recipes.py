"""The shipped recipes (recipes/*.yaml) are valid `--config` files for their commands: every key a
setting, every value in range, so a GPU user's first run does not fail on the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitreason.schemas.grpo import GRPOSettings
from splitreason.schemas.settings import load_config_file
from splitreason.schemas.training import SFTSettings

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("name,settings,required", [
    ("sft_r1_distill_1p5b.yaml", SFTSettings, {"data": ["export.jsonl"], "model": "m", "out": "o"}),
    ("grpo_r1_distill_1p5b.yaml", GRPOSettings, {"model": "m", "problems": "p.jsonl", "out": "o"}),
])
def test_each_recipe_is_a_valid_config(name, settings, required):
    values = load_config_file(RECIPES / name, settings)
    built = settings(**{**values, **required})
    assert all(getattr(built, key) is not None for key in values)


def test_every_recipe_is_tested():
    assert {path.name for path in RECIPES.glob("*.yaml")} == {"sft_r1_distill_1p5b.yaml", "grpo_r1_distill_1p5b.yaml"}

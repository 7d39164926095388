"""NightConfig: per-source defaults and TOML overrides merged key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.config import UserInputError
from tasks.night import NightConfig


def test_movielens_profile_uses_both_item_vectors_and_sessions_keep_the_decoder() -> None:
    ml = NightConfig.for_profile("movielens")
    assert ml.model_params["multvae"]["item_vectors"] == "both"
    assert ml.model_params["multdae"]["item_vectors"] == "both"
    clicks = NightConfig.for_profile("yoochoose")
    assert "item_vectors" not in clicks.model_params.get("multvae", {})  # the model's default: decoder


def test_toml_override_of_one_model_value_keeps_the_profile_values(tmp_path: Path) -> None:
    toml = tmp_path / "night.toml"
    toml.write_text('[model_params.multvae]\nepochs = 7\n[model_params.ease]\nl2 = 10.0\n')
    cfg = NightConfig.for_profile("movielens", toml)
    assert cfg.model_params["multvae"] == {"item_vectors": "both", "epochs": 7}
    assert cfg.model_params["ease"] == {"l2": 10.0}
    assert cfg.model_params["narm"] == {"max_len": 50, "n_epochs": 5}
    assert NightConfig.for_profile("movielens").model_params["multvae"] == {"item_vectors": "both"}  # not mutated


def test_unknown_setting_is_a_one_line_user_error(tmp_path: Path) -> None:
    toml = tmp_path / "night.toml"
    toml.write_text("no_such_setting = 1\n")
    with pytest.raises(UserInputError, match="night config"):
        NightConfig.for_profile("movielens", toml)

"""NightConfig: per-source defaults and TOML overrides merged key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.common.config import UserInputError
from tasks.features.bundle import NightConfig


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


@pytest.mark.parametrize(("toml", "needle"), [
    ("top_nn = 3\n", "unknown key 'top_nn'"),
    ('gate_tolerance = "five percent"\n', "gate_tolerance: Input should be a valid number"),
    ("top_n = -3\n", "top_n: Input should be greater than or equal to 1"),
    ("gate_tolerance = 1.5\n", "gate_tolerance"),
    ("refit_full = 1\n", "refit_full: Input should be a valid boolean"),
    ("[features]\nwindow_dayz = 3\n", "unknown key 'features.window_dayz'"),
    ('[features]\nentity = "shop"\n', "features.entity"),
    ('session_models = ["pop", "gru4recc"]\n', "session_models[1]: unknown model 'gru4recc'"),
    ("[model_params.mutlvae]\nepochs = 1\n", "model_params.mutlvae: unknown model 'mutlvae'"),
    ("top_n = \n", "not valid TOML"),
])
def test_bad_toml_is_one_line_naming_the_key_and_a_usage_error(tmp_path: Path, toml: str, needle: str) -> None:
    from tasks.features.bundle import NightConfigError

    path = tmp_path / "night.toml"
    path.write_text(toml)
    with pytest.raises(NightConfigError) as info:
        NightConfig.for_profile("synthetic", path)
    message = str(info.value)
    assert needle in message and "\n" not in message and str(path) in message
    assert info.value.exit_code == 2


def test_valid_toml_keeps_types_and_leaves_unset_keys_alone(tmp_path: Path) -> None:
    path = tmp_path / "night.toml"
    path.write_text('gate_tolerance = 0\ntop_n = 5\nsession_models = ["pop"]\n[features]\nwindow_days = 9\n'
                    "[model_params.pop-user]\nk = 1\n")
    cfg = NightConfig.for_profile("sessionrec", path)
    assert cfg.gate_tolerance == 0.0 and isinstance(cfg.gate_tolerance, float) and cfg.top_n == 5
    assert cfg.session_models == ("pop",)
    assert cfg.features.window_days == 9 and cfg.features.entity == "session"  # the profile's value kept
    assert cfg.model_params["pop-user"] == {"k": 1}
    assert cfg.model_params["multvae"] == {"epochs": 30, "batch_size": 500}


def test_model_labels_name_what_the_night_trains() -> None:
    labels = NightConfig.for_profile("synthetic").model_labels()
    assert labels == ["gru4rec", "narm", "pop", "spop", "vsknn", "neumf", "pop-user", "ease", "multvae", "multdae"]

"""The night's configuration: built-in defaults < profile [night] < tuned file < --config, key by key.

Every layer uses one TOML shape ([night], [night.features], [night.models.NAME]) and is validated
before anything starts: one line naming the file and the key, exit 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.common.config import Home, UserInputError
from tasks.common.night import NightConfig, NightConfigError, NightSettings, load_night, tuned_path
from tasks.common.profiles import PROFILE_DIR, ProfileError


def _custom_profile(tmp_path: Path, night: str) -> Path:
    """The synthetic profile under another name, with its own night tables."""
    text = (PROFILE_DIR / "synthetic.toml").read_text().replace('name = "synthetic"', 'name = "myshop"')
    path = tmp_path / "myshop.toml"
    path.write_text(text + "\n" + night)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------ each step of the precedence


def test_step_1_a_profile_without_night_tables_gets_the_built_in_defaults() -> None:
    cfg = load_night("synthetic")
    assert cfg.model_dump(exclude={"source"}) == NightSettings().model_dump()
    assert cfg.source == "synthetic"


def test_step_2_the_profile_night_tables_override_the_defaults() -> None:
    ml = load_night("movielens")
    assert (ml.train_days, ml.valid_days) == (365, 14)
    assert ml.features.derive_sessions_from_user and ml.features.window_days == 400
    assert ml.features.gap_minutes == NightSettings().features.gap_minutes  # unset in the profile: default kept
    assert ml.models["multvae"]["item_vectors"] == "both" and ml.models["multdae"]["item_vectors"] == "both"
    clicks = load_night("yoochoose")
    assert clicks.features.entity == "session"
    assert "item_vectors" not in clicks.models.get("multvae", {})  # the model's default: decoder


def test_step_2_a_custom_profile_carries_its_own_night(tmp_path: Path) -> None:
    path = _custom_profile(tmp_path, '[night]\ntop_n = 7\n[night.features]\nwindow_days = 9\n'
                                     '[night.models.gru4rec]\nlayers = [16]\n')
    cfg = load_night(str(path))
    assert cfg.top_n == 7 and cfg.features.window_days == 9 and cfg.models == {"gru4rec": {"layers": [16]}}


def test_step_3_the_tuned_file_overrides_the_profile_key_by_key(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    tuned = _write(tuned_path(home, "sessionrec"), "[night.models.multvae]\nepochs = 3\n[night.models.ease]\nl2 = 75.0\n")
    assert tuned == tmp_path / "home" / "tuned" / "sessionrec.toml"
    cfg = load_night("sessionrec", home=home)
    assert cfg.models["multvae"] == {"epochs": 3, "batch_size": 500}  # the profile's batch size kept
    assert cfg.models["ease"] == {"l2": 75.0}
    assert cfg.models["multdae"] == {"epochs": 30, "batch_size": 500}  # untouched by the tuned file
    assert load_night("sessionrec").models["multvae"]["epochs"] == 30  # no home: no tuned file
    assert load_night("movielens", home=home).models["multvae"] == {"item_vectors": "both"}  # another source's file


def test_step_4_the_config_overrides_the_tuned_file(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    _write(tuned_path(home, "sessionrec"), "[night.models.multvae]\nepochs = 3\nlr = 0.01\n")
    config = _write(tmp_path / "night.toml", "[night]\ntop_n = 5\n[night.models.multvae]\nepochs = 7\n")
    cfg = load_night("sessionrec", config, home)
    assert cfg.models["multvae"] == {"epochs": 7, "lr": 0.01, "batch_size": 500}
    assert cfg.top_n == 5 and cfg.features.entity == "session"  # the profile's value kept
    assert NightConfig.for_profile("sessionrec", config, home) == cfg  # the classmethod is the same loader


def test_the_config_keeps_types_and_leaves_unset_keys_alone(tmp_path: Path) -> None:
    path = _write(tmp_path / "night.toml", '[night]\ngate_tolerance = 0\ntop_n = 5\nsession_models = ["pop"]\n'
                                            "[night.features]\nwindow_days = 9\n[night.models.pop-user]\nk = 1\n")
    cfg = load_night("sessionrec", path)
    assert cfg.gate_tolerance == 0.0 and isinstance(cfg.gate_tolerance, float) and cfg.top_n == 5
    assert cfg.session_models == ("pop",)
    assert cfg.features.window_days == 9 and cfg.features.entity == "session"
    assert cfg.models["pop-user"] == {"k": 1}
    assert load_night("movielens").models["multvae"] == {"item_vectors": "both"}  # nothing shared is mutated


# ------------------------------------------------------------------ validation: one line naming the key


@pytest.mark.parametrize(("toml", "needle"), [
    ("[night]\ntop_nn = 3\n", "unknown key 'night.top_nn'"),
    ('[night]\ngate_tolerance = "five percent"\n', "night.gate_tolerance: Input should be a valid number"),
    ("[night]\ntop_n = -3\n", "night.top_n: Input should be greater than or equal to 1"),
    ("[night]\ngate_tolerance = 1.5\n", "night.gate_tolerance"),
    ("[night]\nrefit_full = 1\n", "night.refit_full: Input should be a valid boolean"),
    ("[night.features]\nwindow_dayz = 3\n", "unknown key 'night.features.window_dayz'"),
    ('[night.features]\nentity = "shop"\n', "night.features.entity"),
    ('[night]\nsession_models = ["pop", "gru4recc"]\n', "night.session_models[1]: unknown model 'gru4recc'"),
    ("[night.models.mutlvae]\nepochs = 1\n", "night.models.mutlvae: unknown model 'mutlvae'"),
    ('[night.models]\ngru4rec = "fast"\n', "night.models.gru4rec"),
    ("[night]\nsource = 'movielens'\n", "unknown key 'night.source'"),
    ("top_n = 3\n", "unknown key 'top_n' (night settings live under [night]"),
    ("[model_params.multvae]\nepochs = 1\n", "unknown key 'model_params' (night settings live under [night]"),
    ("[tuning]\ntrials = 3\n", "unknown key 'tuning'"),
    ("[night]\ntop_n = \n", "not valid TOML"),
])
def test_bad_config_is_one_line_naming_the_key_and_a_usage_error(tmp_path: Path, toml: str, needle: str) -> None:
    path = _write(tmp_path / "night.toml", toml)
    with pytest.raises(NightConfigError) as info:
        load_night("synthetic", path)
    message = str(info.value)
    assert needle in message and "\n" not in message and str(path) in message
    assert info.value.exit_code == 2 and isinstance(info.value, UserInputError)


def test_a_missing_config_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NightConfigError, match="--config .*nope.toml"):
        load_night("synthetic", tmp_path / "nope.toml")


def test_a_bad_tuned_file_is_named(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    tuned = _write(tuned_path(home, "synthetic"), "[night.models.gru4rec]\nlayers = \n")
    with pytest.raises(NightConfigError, match=f"tuned file {tuned}: not valid TOML"):
        load_night("synthetic", home=home)
    _write(tuned, "[night.models.gru4recc]\nlayers = [8]\n")
    with pytest.raises(NightConfigError, match=f"{tuned}: night.models.gru4recc: unknown model"):
        load_night("synthetic", home=home)


def test_a_bad_profile_night_table_refuses_the_profile(tmp_path: Path) -> None:
    path = _custom_profile(tmp_path, "[night]\nwarm_max_epochs = 0\n")
    with pytest.raises(ProfileError) as info:
        load_night(str(path))
    assert str(path) in str(info.value) and "night.warm_max_epochs" in str(info.value)


def test_the_merged_night_must_leave_a_training_day(tmp_path: Path) -> None:
    path = _write(tmp_path / "night.toml", "[night]\nvalid_days = 6\n")
    with pytest.raises(NightConfigError) as info:
        load_night("synthetic", path)
    message = str(info.value)
    assert "valid_days (6) must be less than train_days (6)" in message and "--config" in message
    path.write_text("[night]\nvalid_days = 6\ntrain_days = 7\n")
    assert load_night("synthetic", path).valid_days == 6


def test_updated_validates_like_a_layer() -> None:
    cfg = load_night("synthetic")
    assert cfg.updated(warm_start=True).warm_start and not cfg.warm_start
    with pytest.raises(ValueError, match="top_n"):
        cfg.updated(top_n=0)


def test_model_labels_name_what_the_night_trains() -> None:
    labels = load_night("synthetic").model_labels()
    assert labels == ["gru4rec", "narm", "pop", "spop", "vsknn", "neumf", "pop-user", "ease", "multvae", "multdae"]


def test_params_for_falls_back_from_the_label_to_the_registry_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "night.toml", "[night.models.pop]\nk = 2\n[night.models.ease]\nl2 = 5.0\n")
    cfg = load_night("synthetic", path)
    assert cfg.params_for("pop-user", "pop") == {"k": 2} and cfg.params_for("ease") == {"l2": 5.0}
    assert cfg.params_for("neumf") == {}

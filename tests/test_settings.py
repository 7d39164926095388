"""One settings object for every CLICKREC_* variable; the docs generated from it; the size rules in one home."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tasks.common.config import Home, lock_wait_seconds
from tasks.common.settings import (
    EXTERNAL_VARIABLES,
    PREFIX,
    Settings,
    SettingsError,
    get_settings,
    markdown_tables,
)

REPO = Path(__file__).resolve().parents[1]
ALL_VARIABLES = {PREFIX + name.upper() for name in Settings.model_fields} | {v[0] for v in EXTERNAL_VARIABLES}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in [n for n in os.environ if n.upper().startswith(PREFIX)]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_without_any_variable(clean_env) -> None:
    s = get_settings()
    assert s.home is None and s.lock_wait_seconds == 6 * 3600 and s.duckdb_memory == "4GB"
    assert s.timezone == "UTC" and s.workers == 2 and not s.debug and s.device is None
    assert Home.resolve().root == (Path.cwd() / "warehouse").resolve()


def test_a_changed_environment_is_seen_at_once(clean_env, tmp_path: Path) -> None:
    assert lock_wait_seconds() == 6 * 3600
    clean_env.setenv("CLICKREC_LOCK_WAIT_SECONDS", "1.5")
    clean_env.setenv("CLICKREC_HOME", str(tmp_path / "h"))
    assert lock_wait_seconds() == 1.5
    assert Home.resolve().root == tmp_path / "h" and Home.resolve(tmp_path / "flag").root == tmp_path / "flag"
    clean_env.setenv("CLICKREC_WORKERS", "7")
    clean_env.setenv("CLICKREC_DEBUG", "1")
    assert get_settings().workers == 7 and get_settings().debug


def test_an_empty_value_counts_as_unset(clean_env) -> None:
    clean_env.setenv("CLICKREC_LOCK_WAIT_SECONDS", "")
    clean_env.setenv("CLICKREC_DEVICE", "")
    assert get_settings().lock_wait_seconds == 6 * 3600 and get_settings().device is None


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("CLICKREC_WORKERS", "zero", "valid integer"),
    ("CLICKREC_WORKERS", "0", "greater than or equal to 1"),
    ("CLICKREC_LOCK_WAIT_SECONDS", "six hours", "valid number"),
    ("CLICKREC_LOCK_WAIT_SECONDS", "-1", "greater than or equal to 0"),
    ("CLICKREC_DUCKDB_MEMORY", "lots", "4GB"),
    ("CLICKREC_TIMEZONE", "Mars/Olympus", "IANA time zone"),
    ("CLICKREC_TRAIN_DEPLOYMENT", "gpu", "FLOW/DEPLOYMENT"),
    ("CLICKREC_DEVICE", "gpu0", "torch device"),
    ("CLICKREC_DEBUG", "maybe", "valid boolean"),
    ("CLICKREC_CRASH_AT", "somewhere", "ingest-after-commit"),
    ("CLICKREC_FUZZ_EXAMPLES", "1.5", "valid integer"),
])
def test_a_bad_value_is_one_line_naming_the_variable(clean_env, name: str, value: str, needle: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        get_settings()
    message = str(info.value)
    assert message.startswith(f"{name}={value!r}: ") and needle in message and "\n" not in message
    assert info.value.exit_code == 2


def test_the_cli_refuses_a_bad_variable_with_exit_2_and_one_line(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env |= {"CLICKREC_WORKERS": "zero", "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "status", "--home", str(tmp_path / "home")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == ["error: CLICKREC_WORKERS='zero': Input should be a valid integer, "
                                                "unable to parse string as an integer"]


# ------------------------------------------------------------------ every read goes through Settings

_READ = re.compile(r"""(os\.environ\.get|os\.getenv|getenv|os\.environ\[|environ\.get)\(?\s*["']CLICKREC_""")


def _repo_files(*suffixes: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    return [REPO / f for f in listed if f.endswith(suffixes) and (REPO / f).is_file()]


def test_no_module_reads_a_clickrec_variable_but_settings() -> None:
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in _repo_files(".py") if p.name not in ("settings.py", "test_settings.py")
                 for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if _READ.search(line)]
    assert offenders == [], f"read CLICKREC_* through tasks.common.settings.get_settings(): {offenders}"


def test_the_scan_catches_a_direct_read() -> None:
    assert _READ.search('x = os.environ.get("CLICKREC_WORKERS", "2")')
    assert _READ.search("os.environ['CLICKREC_HOME']") and _READ.search('os.getenv("CLICKREC_DEBUG")')
    assert not _READ.search('env = dict(os.environ, CLICKREC_HOME=str(home))')  # a child's env: a write


def test_every_clickrec_variable_in_the_repository_is_documented() -> None:
    used = {m for p in _repo_files(".py", ".sh", ".yaml", ".yml", ".toml", ".j2")
            for m in re.findall(r"\bCLICKREC_[A-Z][A-Z0-9_]*", p.read_text(errors="replace"))}
    assert used - ALL_VARIABLES == set(), "add these to tasks.common.settings (Settings or EXTERNAL_VARIABLES)"


def test_every_setting_and_night_key_has_a_description() -> None:
    from tasks.common.night import FeatureConfig, NightSettings

    for model in (Settings, NightSettings, FeatureConfig):
        missing = [n for n, f in model.model_fields.items() if n != "features" and not f.description]
        assert missing == [], f"{model.__name__}: fields without a description: {missing}"


def test_recmodels_takes_the_device_as_an_argument(clean_env) -> None:
    import torch

    from recmodels.device import pick_device

    auto = pick_device()
    clean_env.setenv("CLICKREC_DEVICE", "cuda:7")
    assert pick_device() == auto  # the environment is not read by recmodels
    assert pick_device("cpu") == torch.device("cpu")
    assert get_settings().device == "cuda:7"  # ... but by the settings the pipeline passes down


# ------------------------------------------------------------------ the docs


def test_the_generated_tables_name_every_variable_and_key() -> None:
    from tasks.common.night import FeatureConfig, NightSettings

    text = markdown_tables()
    for name in ALL_VARIABLES:
        assert f"| `{name}` |" in text
    for name in NightSettings.model_fields:
        if name not in ("features", "models"):
            assert f"| `[night]` `{name}` |" in text
    for name in FeatureConfig.model_fields:
        assert f"| `[night.features]` `{name}` |" in text
    assert "| `[night.models.NAME]` |" in text
    assert "movielens: `365`" in text  # the profiles' own values, read from profiles/*.toml


def test_readme_carries_exactly_the_generated_tables() -> None:
    readme = (REPO / "README.md").read_text()
    expected = re.findall(r"(<!-- settings:(\w+) .*?<!-- /settings:\2 -->)", markdown_tables(), re.S)
    for text, name in expected:
        assert text in readme, (
            f"README.md's generated '{name}' table is missing or stale: run `.venv/bin/python -m "
            "tasks.common.settings` and paste its output over the README's <!-- settings:... --> blocks")


# ------------------------------------------------------------------ the size rules: one home, applied by the night


def _tiny_bundle(folder: Path) -> Path:
    from recmodels.data import Sessions
    from tasks.features.bundle import _save_sessions
    from tests.session_fixtures import planted_log

    folder.mkdir(parents=True)
    train = planted_log(200, 30, seed=0)
    test = planted_log(20, 30, seed=2)
    night = Sessions(test.items, test.offsets, test.n_items, None, np.array([f"s{i}" for i in range(test.n_sessions)]))
    for name, s in (("sessions_train", train), ("sessions_train_full", train), ("sessions_test", test),
                    ("sessions_valid", planted_log(2, 30, seed=1)), ("sessions_night", night)):
        _save_sessions(folder, name, s)
    meta = {"run_date": "2014-04-05", "fingerprint": "tiny", "has_user_ids": False, "entity": "session",
            "champions": {}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_the_night_applies_the_size_rules_with_its_own_params_on_top(tmp_path: Path, monkeypatch) -> None:
    import tasks.train.size_defaults as sizes
    from tasks.train.fit import train_one

    assert sizes.NARM_LARGE != sizes.NARM_SMALL
    monkeypatch.setattr(sizes, "SMALL_EVENTS", 0)  # this tiny log counts as large: the large rules apply
    bundle = _tiny_bundle(tmp_path / "night")
    night_params = {"embedding": 8, "hidden": 8}
    result = train_one(bundle, "narm", "session", tmp_path / "models", night_params, device="cpu")
    params = result["params"]
    assert {k: params[k] for k in night_params} == night_params
    rules = {k: v for k, v in sizes.NARM_LARGE.items() if k not in night_params}
    assert {k: params[k] for k in rules} == rules

"""Checkpoint hardening: a tampered meta.json or weights file is refused with one CheckpointError line
before anything is copied, and the night then trains from scratch / keeps the champion's stored figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recmodels.checkpoint import CheckpointError
from recmodels.data import Interactions
from recmodels.gru4rec import GRU4Rec, GRU4RecConfig
from recmodels.narm import NARM, NARMConfig
from recmodels.registry import model_class
from tests.session_fixtures import planted_log

N = 40


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ck")
    train = planted_log(120, N, seed=1)
    g = GRU4Rec(GRU4RecConfig(layers=[8], batch_size=8, n_sample=16, epochs=1), device="cpu", seed=0)
    g.fit(train)
    g.save(root / "gru4rec")
    n = NARM(NARMConfig(embedding=8, hidden=8, epochs=1, batch_size=64), device="cpu", seed=0)
    n.fit(train)
    n.save(root / "narm")
    rng = np.random.default_rng(0)
    m = sp.csr_matrix((rng.random((30, N)) < 0.2).astype(np.float32))
    v = model_class("multvae")(config={"epochs": 1, "hidden": [16], "latent": 4}, device="cpu", seed=0)
    v.fit(Interactions(m), None)
    v.save(root / "multvae")
    return {"gru4rec": root / "gru4rec", "narm": root / "narm", "multvae": root / "multvae"}


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _load(name: str, d: Path, n_items: int | None = N):
    sizes = {"n_items": n_items} | ({"n_users": 30} if name == "multvae" else {})
    return model_class(name).load(d, **sizes, device="cpu")


def _set(key: str, value):  # noqa: ANN001, ANN202
    return lambda meta: {**meta, key: value}


def _drop(key: str):  # noqa: ANN202
    return lambda meta: {k: v for k, v in meta.items() if k != key}


def _config(key: str, value):  # noqa: ANN001, ANN202
    return lambda meta: {**meta, "config": {**meta["config"], key: value}}


def _nest(depth: int):  # noqa: ANN202
    def f(meta):  # noqa: ANN001, ANN202
        x: object = 1
        for _ in range(depth):
            x = {"a": x}
        return {**meta, "fit": x}

    return f


META_CASES = {
    "huge n_items": _set("n_items", 10**12),
    "negative n_items": _set("n_items", -5),
    "zero n_items": _set("n_items", 0),
    "missing n_items": _drop("n_items"),
    "string n_items": _set("n_items", "40"),
    "float n_items": _set("n_items", 40.0),
    "bool n_items": _set("n_items", True),
    "n_items above tonight's vocabulary": _set("n_items", N + 5),
    "extra config key": _config("evil", 1),
    "string in a number field": _config("epochs", "3"),
    "config is a list": _set("config", [1, 2]),
    "missing config": _drop("config"),
    "foreign model": _set("model", "ease"),
    "string seed": _set("seed", "0"),
    "nested 40 deep": _nest(40),
    "meta is a list": lambda meta: [meta],
}


@pytest.mark.parametrize("name", ["gru4rec", "narm", "multvae"])
@pytest.mark.parametrize("case", sorted(META_CASES))
def test_tampered_meta_is_one_checkpoint_error_line(checkpoints, tmp_path, name: str, case: str) -> None:
    d = _copy(checkpoints[name], tmp_path / "ck")
    meta = json.loads((d / "meta.json").read_text())
    if case == "string in a number field" and name == "multvae":
        meta = _config("epochs", "3")(meta)
    else:
        meta = META_CASES[case](meta)
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as err:
        _load(name, d)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


@pytest.mark.parametrize("raw", ["[" * 200_000 + "]" * 200_000, "{\"model\": ", "", "null", "1e999999"])
def test_unparsable_or_pathological_meta_text(checkpoints, tmp_path, raw: str) -> None:
    d = _copy(checkpoints["gru4rec"], tmp_path / "ck")
    (d / "meta.json").write_text(raw)
    with pytest.raises(CheckpointError) as err:
        _load("gru4rec", d)
    assert "\n" not in str(err.value)


def _tamper_weights(d: Path, change) -> None:  # noqa: ANN001
    state = torch.load(d / "weights.pt", weights_only=True)
    change(state)
    torch.save(state, d / "weights.pt")


WEIGHT_CASES = {
    "gru4rec": {
        "table cut to one row": lambda s: s.__setitem__("Wy", s["Wy"][:1]),
        "bias cut to one row": lambda s: s.__setitem__("By", s["By"][:1]),
        "gate matrix transposed": lambda s: s.__setitem__("w_ih.0", s["w_ih.0"].T.contiguous()),
        "missing tensor": lambda s: s.pop("w_hh.0"),
        "extra tensor": lambda s: s.__setitem__("evil", torch.zeros(3)),
        "NaN weights": lambda s: s["Wy"].__setitem__((0, 0), float("nan")),
        "optimiser state cut": lambda s: s.__setitem__("opt.W3", s["opt.W3"][:1]),
    },
    "narm": {
        "embedding cut to one row": lambda s: s.__setitem__("emb.weight", s["emb.weight"][:1]),
        "missing tensor": lambda s: s.pop("B.weight"),
    },
    "multvae": {
        "missing tensor": lambda s: s.pop(next(iter(s))),
        "first tensor cut": lambda s: s.__setitem__(next(iter(s)), s[next(iter(s))][:1]),
    },
}


@pytest.mark.parametrize(("name", "case"), [(n, c) for n, cs in WEIGHT_CASES.items() for c in cs])
def test_weights_that_do_not_fit_the_configuration_are_refused(checkpoints, tmp_path, name: str, case: str) -> None:
    d = _copy(checkpoints[name], tmp_path / "ck")
    _tamper_weights(d, WEIGHT_CASES[name][case])
    with pytest.raises(CheckpointError) as err:
        _load(name, d)
    assert "\n" not in str(err.value)


def test_untampered_checkpoints_still_load_and_grow(checkpoints) -> None:
    for name in checkpoints:
        assert _load(name, checkpoints[name], n_items=N + 5).n_items == N + 5
        assert _load(name, checkpoints[name], n_items=None).n_items == N


def test_night_trains_from_scratch_and_keeps_the_champions_stored_figure(checkpoints, tmp_path, monkeypatch) -> None:
    """A tampered checkpoint as warm start: noted, trained from scratch. The same checkpoint as the
    champion: not re-scored (None), so the gate falls back to its stored figure."""
    import tasks.train.fit as nt
    from tasks.publish.decision import decide

    d = _copy(checkpoints["gru4rec"], tmp_path / "bad")
    meta = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps({**meta, "n_items": "lots"}))
    train = planted_log(100, N, seed=3)
    notes: list[str] = []
    params = {"layers": [8], "batch_size": 8, "n_sample": 16, "epochs": 1}
    warm = {"version": "v0", "checkpoint": str(d), "max_epochs": 1}
    model, report, warm_from = nt._fit("gru4rec", params, "cpu", 0, train, train, train, False, False, warm, notes)
    assert warm_from is None and report.epochs == 1 and model.n_items == N
    assert any("warm start refused" in n for n in notes)

    monkeypatch.setattr(nt, "load_bundle_sessions", lambda bundle, name: planted_log(20, N, seed=4))
    notes.clear()
    champion = nt._rescore_champion({"version": "v0", "checkpoint": str(d)}, "gru4rec", "session",
                                    tmp_path, "cpu", notes)  # fmt: skip
    assert champion is None and any("stored figure" in n for n in notes)
    # champion_on_test None: the gate compares with the champion's stored figure
    dec = decide("gru4rec", "v1", 0.5, 0.6, "v0", 0.05, "P4-session HR@20")
    assert not dec.publish and dec.champion == 0.6


@pytest.mark.parametrize("name", ["gru4rec", "narm"])
def test_a_checkpoint_in_the_old_spelling_still_loads_and_scores_the_same(name, checkpoints, tmp_path) -> None:
    """Checkpoints written before the one Trainer spelled the settings n_epochs / learning_rate, with
    patience 0 for "off": they load under today's names and score exactly as they were saved."""
    d = _copy(checkpoints[name], tmp_path / "old")
    meta = json.loads((d / "meta.json").read_text())
    cfg = meta["config"]
    cfg["n_epochs"], cfg["learning_rate"], cfg["patience"] = cfg.pop("epochs"), cfg.pop("lr"), 0
    (d / "meta.json").write_text(json.dumps(meta))
    old, new = _load(name, d), _load(name, checkpoints[name])
    assert old.config == new.config and old.config.patience is None
    probe = planted_log(10, N, seed=3)
    torch.testing.assert_close(old.score_last(probe), new.score_last(probe), rtol=0, atol=0)

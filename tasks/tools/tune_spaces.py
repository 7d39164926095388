"""Search spaces of ``clickrec tune``, one per model family (and per loss for GRU4Rec).

Every space is data: a list of :class:`Param` (what Optuna samples), the values it fixes, and the
setting it starts from (trial 0 is enqueued with it, so a study never ends below the setting the
project already uses). Names are clickrec's config names; ``tune`` spells training settings the way
the model's config does (``lr`` / ``learning_rate``, ``epochs`` / ``n_epochs``) at sampling time.

Sources:
- GRU4Rec: the official implementation's parameter spaces (github.com/hidasib/GRU4Rec_PyTorch_Official,
  ``paramspaces/gru4rec_xe_standard_parspace.json`` and ``gru4rec_bprmax_standard_parspace.json``):
  the same ranges and steps, and its fixed settings (shared embedding, ``n_sample`` 2048, ``logq`` 1
  for cross-entropy, 0 for BPR-max). Its README says ``n_sample`` may be lowered below 5-10K active
  items and that cross-entropy usually works best with ``logq=1``; both are searched here on a few
  values, the official fixed value first.
- NARM (Li et al., CIKM 2017): embedding 50 / hidden 100, Adam lr 1e-3, batch 512, dropouts 0.25 /
  0.5; the space brackets each by the ranges the paper's code accepts.
- NCF (He et al., WWW 2017, section 4): predictive factors 8-64, 1-10 negatives, lr 1e-4..1e-2,
  tower of 3-4 halving layers, batch 128-1024 (larger here: CPU throughput).
- Mult-VAE / Mult-DAE (Liang et al., WWW 2018): architecture [I-600-200-600-I], dropout 0.5,
  anneal cap 0.2 chosen by the best-beta heuristic over about 200k steps, Adam lr 1e-3.
- EASE (Steck 2019): lambda searched on a log scale (the paper tunes it per data set).
- item-kNN / V-SkNN (session-rec, Ludewig & Jannach 2018): neighbours, sample size, weighting
  functions and idf weighting from session-rec's configuration grids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Architectures as strings (Optuna's categorical values must be plain scalars); ``Param.decode``
# turns them into the tuples the model configs take.
_TOWERS = ("32-16-8", "64-32-16-8", "128-64-32-16")
_AE_HIDDEN = ("300", "600", "1200", "600-300")


@dataclass(frozen=True)
class Param:
    """One searched hyper-parameter. ``kind``: int / float (``step`` or ``log``) / categorical."""

    name: str
    kind: Literal["int", "float", "categorical"]
    low: float = 0
    high: float = 0
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    decode: Literal["", "list", "tuple"] = ""  # "list": 100 -> [100]; "tuple": "64-32" -> (64, 32)

    def sample(self, trial: Any) -> Any:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def to_config(self, value: Any) -> Any:
        if self.kind == "float" and self.step is not None:
            return round(float(value), 10)  # 0.6000000000000001 (a stepped float's binary residue) -> 0.6
        if self.decode == "list":
            return [int(value)]
        if self.decode == "tuple":
            return tuple(int(v) for v in str(value).split("-"))
        return value

    def from_config(self, value: Any) -> Any:
        """A config value in the space's own terms (the enqueued starting trial)."""
        if self.decode == "list":
            return int(value[0])
        if self.decode == "tuple":
            return "-".join(str(int(v)) for v in value)
        return value


@dataclass(frozen=True)
class Space:
    name: str
    models: tuple[str, ...]  # registry names this space tunes
    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(default_factory=dict)  # set on every trial (and in the tuned file)
    start: dict[str, Any] = field(default_factory=dict)  # config values of the enqueued trial 0

    def sample(self, trial: Any) -> dict[str, Any]:
        """The trial's config: sampled values decoded, the fixed ones on top."""
        return {**{p.name: p.to_config(p.sample(trial)) for p in self.params}, **self.fixed}

    def decode(self, optuna_params: dict[str, Any]) -> dict[str, Any]:
        """A finished trial's ``params`` (Optuna's values) as a config."""
        by_name = {p.name: p for p in self.params}
        return {**{k: by_name[k].to_config(v) for k, v in optuna_params.items() if k in by_name}, **self.fixed}

    def start_trial(self, current: dict[str, Any] | None = None) -> dict[str, Any]:
        """``start`` with the ``current`` values on top (what a night trains today), in Optuna's terms
        for ``study.enqueue_trial``."""
        by_name = {p.name: p for p in self.params}
        start = {**self.start, **(current or {})}
        return {k: by_name[k].from_config(v) for k, v in start.items() if k in by_name}


def _f(name: str, low: float, high: float, step: float | None = None, log: bool = False) -> Param:
    return Param(name, "float", low, high, step=step, log=log)


def _i(name: str, low: int, high: int, step: int = 1, log: bool = False, decode: str = "") -> Param:
    return Param(name, "int", low, high, step=step, log=log, decode=decode)  # type: ignore[arg-type]


def _c(name: str, *choices: Any, decode: str = "") -> Param:
    return Param(name, "categorical", choices=choices, decode=decode)  # type: ignore[arg-type]


# GRU4Rec, official standard space (both losses share these ranges and steps).
_GRU4REC_COMMON = (
    _i("layers", 64, 512, step=32, decode="list"),
    _i("batch_size", 32, 256, step=16),
    _f("lr", 0.01, 0.25, step=0.005),
    _f("dropout_p_embed", 0.0, 0.5, step=0.05),
    _f("dropout_p_hidden", 0.0, 0.7, step=0.05),
    _f("momentum", 0.0, 0.9, step=0.05),
    _f("sample_alpha", 0.0, 1.0, step=0.1),
    _c("n_sample", 2048, 1024, 512),
)
# the project's P1 setting (the official rsc15 paramfile). Start values may lie off the grid (layers
# 100 on a step of 32): trial 0 is exactly the setting in use, Optuna only warns (``tune`` quiets it).
_GRU4REC_START = dict(layers=[100], batch_size=32, lr=0.2, dropout_p_embed=0.0, dropout_p_hidden=0.4,
                      momentum=0.2, sample_alpha=0.5, n_sample=2048)

SPACES: dict[str, Space] = {
    s.name: s
    for s in (
        Space(
            "gru4rec-xe",
            ("gru4rec",),
            (*_GRU4REC_COMMON, _c("logq", 1.0, 0.0)),
            fixed=dict(loss="cross-entropy", constrained_embedding=True, embedding=0, bpreg=0.0, elu_param=0.0),
            start={**_GRU4REC_START, "logq": 1.0},
        ),
        Space(
            "gru4rec-bprmax",
            ("gru4rec",),
            (*_GRU4REC_COMMON, _f("bpreg", 0.0, 2.0, step=0.05), _c("elu_param", 0.5, 1.0, 0.0)),
            fixed=dict(loss="bpr-max", constrained_embedding=True, embedding=0, logq=0.0),
            # the official RetailRocket BPR-max setting (its smaller-data best)
            start=dict(layers=[224], batch_size=80, lr=0.05, dropout_p_embed=0.5, dropout_p_hidden=0.05,
                       momentum=0.4, sample_alpha=0.4, n_sample=2048, bpreg=1.95, elu_param=0.5),
        ),
        Space(
            "narm",
            ("narm",),
            (
                _i("embedding", 32, 256, step=16),
                _i("hidden", 50, 300, step=25),
                _f("lr", 1e-4, 1e-2, log=True),
                _c("batch_size", 64, 128, 256, 512),
                _f("dropout_embed", 0.0, 0.5, step=0.05),
                _f("dropout_ct", 0.0, 0.7, step=0.05),
                _f("lr_decay", 0.5, 1.0, step=0.05),
            ),
            start=dict(embedding=50, hidden=100, lr=5e-3, batch_size=128, dropout_embed=0.25, dropout_ct=0.5,
                       lr_decay=0.75),
        ),
        Space(
            "ncf",
            ("neumf", "gmf", "mlp"),
            (
                _c("gmf_dim", 8, 16, 32, 64),
                _c("mlp_layers", *_TOWERS, decode="tuple"),
                _i("num_neg", 1, 10),
                _f("lr", 1e-4, 1e-2, log=True),
                _c("batch_size", 1024, 2048, 4096),
            ),
            start=dict(gmf_dim=32, mlp_layers=(64, 32, 16, 8), num_neg=4, lr=2e-3, batch_size=4096),
        ),
        Space(
            "multvae",
            ("multvae",),
            (
                _f("anneal_cap", 0.0, 1.0, step=0.05),
                _i("total_anneal_steps", 2_000, 200_000, log=True),
                _f("dropout", 0.0, 0.7, step=0.05),
                _c("latent", 50, 100, 200, 400),
                _c("hidden", *_AE_HIDDEN, decode="tuple"),
                _f("lr", 1e-4, 1e-2, log=True),
            ),
            start=dict(anneal_cap=0.2, total_anneal_steps=20_000, dropout=0.5, latent=200, hidden=(600,), lr=1e-3),
        ),
        Space(
            "multdae",
            ("multdae",),
            (
                _f("dropout", 0.0, 0.7, step=0.05),
                _c("latent", 50, 100, 200, 400),
                _c("hidden", *_AE_HIDDEN, decode="tuple"),
                _f("lr", 1e-4, 1e-2, log=True),
                _f("weight_decay", 1e-7, 1e-3, log=True),
            ),
            start=dict(dropout=0.3, latent=200, hidden=(600,), lr=1e-3, weight_decay=1e-7),
        ),
        Space("ease", ("ease",), (_f("l2", 1.0, 5_000.0, log=True),), start=dict(l2=170.0)),
        Space(
            "itemknn",
            ("itemknn",),
            (_i("n_sims", 20, 1_000, log=True), _f("lmbd", 0.0, 100.0, step=5.0), _f("alpha", 0.0, 1.0, step=0.05)),
            start=dict(n_sims=100, lmbd=20.0, alpha=0.5),
        ),
        Space(
            "vsknn",
            ("vsknn",),
            (
                _i("k", 20, 1_000, log=True),
                _c("sample_size", 250, 500, 1_000, 2_500, 5_000, 10_000),
                _c("weighting", "same", "div", "linear", "log", "quadratic"),
                _c("weighting_score", "same", "div", "linear", "log", "quadratic"),
                _c("idf_weighting", 0.0, 1.0, 2.0, 5.0, 10.0),
            ),
            start=dict(k=100, sample_size=500, weighting="div", weighting_score="div", idf_weighting=1.0),
        ),
    )
}


def spaces_for(model: str) -> list[Space]:
    """The spaces that tune registry model ``model`` (the first is its default)."""
    return [s for s in SPACES.values() if model in s.models]


def space_for(model: str, name: str | None = None) -> Space:
    """``name`` (a key of :data:`SPACES`) or ``model``'s default space; a one-line error otherwise."""
    options = spaces_for(model)
    if not options:
        tunable = sorted({m for s in SPACES.values() for m in s.models})
        raise ValueError(f"no search space for model {model!r}; tunable: {', '.join(tunable)}")
    if name is None:
        return options[0]
    for s in options:
        if s.name == name:
            return s
    raise ValueError(f"space {name!r} does not tune {model!r}; its spaces: {', '.join(s.name for s in options)}")

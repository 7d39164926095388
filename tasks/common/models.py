"""Model lists and protocol choices, defined once: the night, the trainers, the gate and the tools read them here.

Three different questions used to share the names ``SESSION_MODELS`` / ``USER_MODELS`` / ``PRIMARY``;
each now has its own name:

- which models a *trainer* can train (``SESSION_NETWORKS``, ``USER_NETWORKS``),
- which models a *night* trains unless its configuration says otherwise (``NIGHT_*``),
- which *figure* a family is judged by at the gate (``GATE_FIGURE``), and which figures a protocol's
  table shows first (``PROTOCOL_METRICS``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Family(enum.StrEnum):
    """What a model publishes: next items for sessions, top-N for users, or top-N plus similar items."""

    SESSION = "session"
    USER = "user"
    AUTOENCODER = "autoencoder"


# ------------------------------------------------------------------ what each trainer can train

SESSION_NETWORKS = ("gru4rec", "narm")  # deep next-item models (tasks/tools/train_session.py)
NCF_MODELS = ("gmf", "mlp", "neumf")
AUTOENCODER_MODELS = ("autorec", "cdae", "multdae", "multvae")
USER_NETWORKS = NCF_MODELS + AUTOENCODER_MODELS  # trained on the user-item matrix (tasks/tools/train_user.py)
SESSION_BASELINES = ("pop", "spop", "vsknn")
USER_BASELINES = ("pop", "ease")

# ------------------------------------------------------------------ what a night trains by default

NIGHT_SESSION_MODELS = SESSION_NETWORKS + SESSION_BASELINES
NIGHT_USER_MODELS = ("neumf", *USER_BASELINES)
# Mult-VAE and Mult-DAE both train; the one that validates better is published (tasks.publish.decision).
NIGHT_AUTOENCODERS = ("multvae", "multdae")

# ------------------------------------------------------------------ protocols and figures

P4_SESSION = "P4-session"  # next item of day D's sessions (trained on days < D)
P4_USER = "P4-user"  # day D's items of each user, ranked over all items
P4_SIMILAR = "P4-similar"  # next item of day D's sessions, from the last item's similar items


@dataclass(frozen=True)
class Figure:
    """One number of ``models.eval_metrics``: protocol, metric and cut-off."""

    protocol: str
    metric: str
    k: int

    def __str__(self) -> str:
        return f"{self.protocol} {self.metric}@{self.k}"


# The figure each family is judged by at the gate: the product it publishes, on the night's test day.
GATE_FIGURE: dict[Family, Figure] = {
    Family.SESSION: Figure(P4_SESSION, "HR", 20),
    Family.USER: Figure(P4_USER, "HR", 10),
    Family.AUTOENCODER: Figure(P4_SIMILAR, "HR", 20),
}

# Choosing between the autoencoders uses the validation day only (never the test day): top-N NDCG@10
# where enough users validate, else next-item HR@20 through item similarity (session sources).
AUTOENCODER_VALID_METRIC = "NDCG@10"
AUTOENCODER_VALID_FALLBACK = "sim_HR@20"
# The fewest validation predictions a figure needs before it is trusted (early stopping, tuning, the
# autoencoder choice): fewer is noise (e.g. the one anonymous session that spans midnight into D-1),
# and training runs a fixed budget instead.
MIN_VALID_PREDICTIONS = 50

# The figures ``clickrec evaluate`` shows first for each offline protocol (../shared/PROTOCOLS.md).
PROTOCOL_METRICS: dict[str, tuple[str, ...]] = {
    "P1": ("HR@20", "MRR@20", "HR@10", "MRR@10"),
    "P2": ("HR@10", "NDCG@10", "MRR@10", "HR@20"),
    "P3-rsc15": ("HR@20", "MRR@20"),
    "P3-ml100k": ("HR@10",),
}

# Prefect's cached training results are reused for this many days (tasks/train/run.py); retention
# removes older result files, which no run would read again (tasks/publish/retention.py).
TRAINING_CACHE_DAYS = 7

"""Model names -> classes. Imports are lazy so that a CLI call loads only the model it runs."""

from __future__ import annotations

import importlib

from recmodels.base import Recommender

# name -> "module:Class". One line per model; the protocol runner and the nightly flow use these names.
MODELS: dict[str, str] = {
    # baselines (recmodels/baselines/)
    "pop": "recmodels.baselines.pop:MostPopular",
    "spop": "recmodels.baselines.spop:SessionPopular",
    "itemknn": "recmodels.baselines.itemknn:ItemKNN",
    "vsknn": "recmodels.baselines.vsknn:VSKNN",
    "ease": "recmodels.baselines.ease:EASE",
    # session models
    "gru4rec": "recmodels.gru4rec:GRU4Rec",
    "narm": "recmodels.narm:NARM",
    # user models: NCF
    "gmf": "recmodels.ncf:GMF",
    "mlp": "recmodels.ncf:MLP",
    "neumf": "recmodels.ncf:NeuMF",
    # user models: autoencoders
    "autorec": "recmodels.autoencoders:AutoRec",
    "cdae": "recmodels.autoencoders:CDAE",
    "multdae": "recmodels.autoencoders:MultDAE",
    "multvae": "recmodels.autoencoders:MultVAE",
}


def model_class(name: str) -> type[Recommender]:
    try:
        target = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def create(name: str, **kwargs) -> Recommender:
    return model_class(name)(**kwargs)

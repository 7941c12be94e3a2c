"""The model registry: one place that maps a name to a model class and its config.

``build_model("rEFH", n_obs=900, obs_type="bernoulli")`` builds an untrained model;
``load_model(path)`` rebuilds a trained one from a checkpoint written by :func:`tlr.train.fit`
(checkpoints record the registry name and the config). To add a model: write its file (a
:class:`~tlr.models.base.RecurrentModel` with a frozen dataclass config) and add one line to
:data:`MODELS`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import torch

from tlr.models.base import RecurrentModel
from tlr.models.conv_rvae import ConvRVAE, ConvRVAEConfig, ConvTVAE, ConvTVAEConfig
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.trbm import TRBM, TRBMConfig
from tlr.models.tvae import TVAE, TVAEConfig

__all__ = ["Entry", "MODELS", "build_model", "load_model", "registry_name"]


class Entry(NamedTuple):
    cls: type[RecurrentModel]
    config: type  # the frozen dataclass the class takes
    fixed: dict[str, Any]  # config fields the name decides (e.g. bptt=True for "-BPTT")
    defaults: dict[str, Any] = {}  # config defaults the name chooses (overridable)  # noqa: RUF012


# rVAE-β: the rVAE with 3 latents (a position on the ring plus a velocity) and a KL
# weight β that warms up from 0.25 to 0.9 over the first 6000 updates (60 of the quick preset's
# 120 epochs): a low β makes a latent that carries its own past (velocity) pay early, a final
# β < 1 keeps it paying; see tlr.models.rvae.RVAEConfig and the rVAE-β notes there.
RVAE_BETA: dict[str, Any] = {"n_latent": 3, "kl_weight": 0.9, "kl_warmup": 6000,
                             "kl_weight0": 0.25, "free_bits": 0.0, "likelihood": "poisson",
                             "u_uncertain": False}


MODELS: dict[str, Entry] = {
    "rEFH": Entry(REFH, REFHConfig, {}),
    "TRBM": Entry(TRBM, TRBMConfig, {}),
    "RTRBM": Entry(RTRBM, TRBMConfig, {}),
    "rVAE": Entry(RVAE, RVAEConfig, {"bptt": False}),
    "rVAE-BPTT": Entry(RVAE, RVAEConfig, {"bptt": True}),
    "rVAE-β": Entry(RVAE, RVAEConfig, {"bptt": False}, RVAE_BETA),
    "TVAE": Entry(TVAE, TVAEConfig, {"bptt": False}),
    "TVAE-BPTT": Entry(TVAE, TVAEConfig, {"bptt": True}),
    # the convolutional versions for video frames (Moving MNIST)
    "conv rVAE": Entry(ConvRVAE, ConvRVAEConfig, {"bptt": False}),
    "conv rVAE-BPTT": Entry(ConvRVAE, ConvRVAEConfig, {"bptt": True}),
    "conv TVAE": Entry(ConvTVAE, ConvTVAEConfig, {"bptt": False}),
}


def build_model(name: str, generator: torch.Generator | None = None,
                **config: Any) -> RecurrentModel:
    """An untrained model ``name`` (a key of :data:`MODELS`) with config fields ``config``.

    ``generator`` draws the initial weights (None: torch's global RNG). Unknown names or
    fields raise a ValueError listing the valid ones.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    cls, cfg_cls, fixed, defaults = MODELS[name]
    valid = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(config) - valid)
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} for {name}; valid: "
                         f"{', '.join(sorted(valid))}")
    clash = {k: v for k, v in config.items() if k in fixed and v != fixed[k]}
    if clash:
        raise ValueError(f"{name} fixes {fixed}, got {clash}")
    return cls(cfg_cls(**{**defaults, **config, **fixed}), generator=generator)


def registry_name(model: RecurrentModel) -> str:
    """The :data:`MODELS` key that builds ``model`` (what checkpoints record): its own
    ``name`` where that is a key that fits, else the first entry whose class and fixed fields
    fit."""
    own = MODELS.get(getattr(model, "name", None))
    if own is not None and type(model) is own.cls and all(
            getattr(model.config, k) == v for k, v in own.fixed.items()):
        return model.name
    for key, (cls, _, fixed, _) in MODELS.items():
        if type(model) is cls and all(getattr(model.config, k) == v for k, v in fixed.items()):
            return key
    raise ValueError(f"{type(model).__name__} is not in the model registry")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> RecurrentModel:
    """The trained model saved in the checkpoint ``path`` (see :func:`tlr.train.fit`)."""
    ck = torch.load(Path(path), map_location=device, weights_only=False)
    name = ck.get("registry_name")
    if name is None:  # checkpoints written before the registry: model name + config fields
        name = ("conv " if "image_size" in ck["config"] else "") + ck["model_name"]
    entry = MODELS[name]
    config = dict(ck["config"])
    for f in dataclasses.fields(entry.config):  # JSON-like lists back to tuples
        if isinstance(config.get(f.name), list):
            config[f.name] = tuple(config[f.name])
    model = entry.cls(entry.config(**config))
    model.load_state_dict(ck["model"])
    return model.to(device)

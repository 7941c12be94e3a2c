"""Models, one per file, all obeying :class:`~tlr.models.base.RecurrentModel`.

:func:`build_model` / :func:`load_model` (:mod:`tlr.models.registry`) are the one way to make
a model by name; the classes below are there for readers who want the code.
"""

from tlr.models.base import RecurrentModel, Update
from tlr.models.conv_rvae import ConvRVAE, ConvRVAEConfig, ConvTVAE, ConvTVAEConfig
from tlr.models.efh import EFH, UNIT_TYPES, CDStats
from tlr.models.refh import REFH, REFHConfig
from tlr.models.registry import MODELS, build_model, load_model, registry_name
from tlr.models.rtrbm import RTRBM
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.trbm import TRBM, TRBMConfig, bptt_term
from tlr.models.tvae import TVAE, TVAEConfig

__all__ = [
    "MODELS",
    "EFH",
    "REFH",
    "RTRBM",
    "RVAE",
    "TRBM",
    "TVAE",
    "UNIT_TYPES",
    "CDStats",
    "ConvRVAE",
    "ConvRVAEConfig",
    "ConvTVAE",
    "ConvTVAEConfig",
    "REFHConfig",
    "RVAEConfig",
    "RecurrentModel",
    "TRBMConfig",
    "TVAEConfig",
    "Update",
    "bptt_term",
    "build_model",
    "load_model",
    "registry_name",
]

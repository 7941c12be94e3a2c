"""Models, one per file: the harmonium core and the recurrent harmoniums."""

from tlr.models.efh import EFH, UNIT_TYPES, CDStats
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM, bptt_term
from tlr.models.trbm import TRBM, TRBMConfig

__all__ = [
    "EFH",
    "REFH",
    "RTRBM",
    "TRBM",
    "UNIT_TYPES",
    "CDStats",
    "REFHConfig",
    "TRBMConfig",
    "bptt_term",
]

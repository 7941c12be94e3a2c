"""Data generators. Time-major layout: (T, B, D)."""

from tlr.data.lds_ppc import LTIConfig, PPCConfig, PPCData, simulate, simulate_lti, tuning_curves

__all__ = ["LTIConfig", "PPCConfig", "PPCData", "simulate", "simulate_lti", "tuning_curves"]

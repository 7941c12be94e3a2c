"""Experiments: presets, model registries and runners behind ``python -m tlr run``."""

from tlr.experiments import balls, ppc

EXPERIMENTS = {"ppc": ppc, "balls": balls}

__all__ = ["EXPERIMENTS", "balls", "ppc"]

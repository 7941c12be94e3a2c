"""Experiments: presets, model registries and runners behind ``python -m tlr run``."""

from tlr.experiments import ppc

EXPERIMENTS = {"ppc": ppc}

__all__ = ["EXPERIMENTS", "ppc"]

"""Experiments: presets, model registries and runners behind ``python -m tlr run``."""

from tlr.experiments import balls, mnist, ppc

EXPERIMENTS = {"ppc": ppc, "balls": balls, "mnist": mnist}

__all__ = ["EXPERIMENTS", "balls", "mnist", "ppc"]

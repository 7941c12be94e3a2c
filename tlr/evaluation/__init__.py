"""Evaluation: population-code readout and torus-wrapped MSE."""

from tlr.evaluation.ppc import CoMEstimate, center_of_mass, check_counts, torus_mse, wrap_error

__all__ = ["CoMEstimate", "center_of_mass", "check_counts", "torus_mse", "wrap_error"]

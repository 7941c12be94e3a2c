"""Data generators.

Layouts: the PPC experiment is time-major, (T, B, D), as its filters consume it; the image
sequences (bouncing balls, Moving MNIST) are sequence-major, (n_seq, T, ...), as datasets of
videos are usually stored (the experiments transpose them for the recurrent models).
"""

from tlr.data.balls import BallsConfig, BallsData, simulate_balls
from tlr.data.digits import load_digits
from tlr.data.lds_ppc import LTIConfig, PPCConfig, PPCData, simulate, simulate_lti, tuning_curves
from tlr.data.moving_mnist import MovingMNISTConfig, simulate_moving_mnist

__all__ = ["LTIConfig", "PPCConfig", "PPCData", "simulate", "simulate_lti", "tuning_curves",
           "BallsConfig", "BallsData", "simulate_balls", "load_digits", "MovingMNISTConfig",
           "simulate_moving_mnist"]

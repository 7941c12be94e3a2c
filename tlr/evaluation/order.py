"""Which order of dynamics did a filter learn? Decode velocity from its state.

The neurons report position only (Sources §2.1). A first-order filter (KF-1) carries a position
estimate and nothing else, so velocity cannot be read out of its state; a second-order filter
(KF-2, KF-true) carries a velocity estimate. We fit a least-squares linear map from a filter's
state to the true velocity on one data set and report the R² on another: R² ≈ 0 means no
velocity in the state (first order), R² near KF-true's means second-order dynamics.
"""

from __future__ import annotations

import torch

from tlr.evaluation.ppc import wrap_error
from tlr.evaluation.readout import fit_linear_readout

__all__ = ["r_squared", "velocity_r2", "lag_steps", "withhold", "gap_slope", "gap_fraction"]


def gap_fraction(mse: float, mse_kf1: float, mse_kf2: float) -> float:
    """f: the fraction of the gap from KF-1 (first order) to KF-2 (second order) that a test
    MSE closes, (MSE_KF-1 - MSE) / (MSE_KF-1 - MSE_KF-2), all on the same test set. 0 at KF-1's
    error, 1 at KF-2's; the scorecard calls a model second order if f >= 1/2 in every seed."""
    if not mse_kf1 > mse_kf2:
        raise ValueError(f"gap_fraction needs KF-1's MSE above KF-2's, got {mse_kf1} and "
                         f"{mse_kf2}")
    return (mse_kf1 - mse) / (mse_kf1 - mse_kf2)


def r_squared(pred: torch.Tensor, target: torch.Tensor) -> float:
    """1 - SSE/SST over all entries."""
    pred, target = pred.to(torch.float64), target.to(torch.float64)
    return float(1 - ((pred - target) ** 2).sum() / ((target - target.mean()) ** 2).sum())


def velocity_r2(states_fit: torch.Tensor, v_fit: torch.Tensor, states_test: torch.Tensor,
                v_test: torch.Tensor) -> float:
    """Test R² of a linear velocity readout from filter states (T, B, D) → v (T, B)."""
    readout = fit_linear_readout(states_fit, v_fit)
    return r_squared(readout(states_test), v_test)


def lag_steps(s_hat: torch.Tensor, position: torch.Tensor, velocity: torch.Tensor,
              period: float, dt: float) -> float:
    """How many steps an estimate trails the truth: the least-squares τ in ŝ_t - s_t ≈ -τ v_t dt.

    A filter that reacts late to motion has an error proportional to the velocity; τ ≈ 0 for
    an unbiased second-order filter, clearly positive for a first-order one.
    """
    e = wrap_error(s_hat - position, period).to(torch.float64)
    v = velocity.to(torch.float64)
    return -float((e * v).sum() / (v * v).sum()) / dt


def withhold(y: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """A copy of counts y (T, B, N) with steps [start, start + length) silenced (no spikes).

    Zero spikes carry no information about position (the PPC likelihood is flat; for a Kalman
    filter R_t = inf), so this is "observations withheld" in the population code's own terms.
    """
    if not 0 < start < start + length <= y.shape[0]:
        raise ValueError(f"need 0 < start < start + length <= T={y.shape[0]}, got {start}, "
                         f"{length}")
    out = y.clone()
    out[start:start + length] = 0
    return out


def gap_slope(s_hat: torch.Tensor, position: torch.Tensor, start: int, length: int,
              period: float) -> float:
    """How much of the true motion during a gap the estimate reproduces.

    Regresses the estimate's displacement across the gap, ŝ_{start+length-1} - ŝ_{start-1},
    on the true displacement (both wrapped onto the ring), through the origin. A filter that
    holds its last position (first order) scores ≈ 0; one that dead-reckons with a velocity
    estimate (second order) scores near KF-true.
    """
    end = start + length - 1
    d_hat = wrap_error(s_hat[end] - s_hat[start - 1], period).to(torch.float64)
    d_true = wrap_error(position[end] - position[start - 1], period).to(torch.float64)
    return float((d_hat * d_true).sum() / (d_true**2).sum())

"""Reading a position out of a population code, and scoring it on the ring.

Sources §3 (``GTPNsuffstats.m``, ``centerNoisyHills.m``, ``getBestTorusEsts.m``) and §5.6.
For Gaussian tuning and Poisson counts the likelihood of the stimulus is Gaussian (Ma et al.
2006): p(y | s) ∝ N(s; ŝ, σ_tc² / Σ_i y_i), with ŝ the centre of mass of the counts.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from tlr.data.lds_ppc import PPCConfig

__all__ = ["CoMEstimate", "center_of_mass", "wrap_error", "torus_mse", "check_counts"]


class CoMEstimate(NamedTuple):
    """Sufficient statistics of a population response (Sources §3.2)."""

    s_hat: torch.Tensor  # (...,) circular centre of mass (rad, on the ring), float64
    total: torch.Tensor  # (...,) Σ_i y_i, float64
    obs_var: torch.Tensor  # (...,) σ_tc² / Σ_i y_i (rad²); inf where the total is 0


def check_counts(y: torch.Tensor, n_neurons: int, integer: bool = True, name: str = "y") -> None:
    """Raise a clear error unless ``y`` is a finite, non-negative (integer) response tensor."""
    if not torch.is_tensor(y):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {y.dtype}")
    if y.dim() < 1 or y.shape[-1] != n_neurons:
        raise ValueError(f"{name} must have shape (..., {n_neurons}), got {tuple(y.shape)}")
    if n_neurons < 1:
        raise ValueError(f"{name} has zero neurons (shape {tuple(y.shape)})")
    if y.is_floating_point():
        if not torch.isfinite(y).all():
            raise ValueError(f"{name} contains NaN or Inf")
        if integer and not torch.equal(y, y.round()):
            raise ValueError(f"{name} must hold integer spike counts; got non-integer values")
    if (y < 0).any():
        raise ValueError(f"{name} must be non-negative; got min {y.min().item()}")


def center_of_mass(y: torch.Tensor, ppc: PPCConfig, integer: bool = True) -> CoMEstimate:
    """Circular centre of mass of counts or rates ``y`` of shape (..., n_neurons) (Sources §3.3).

    The neurons are indexed relative to the most active one j, d_i = ((i - j + ⌊N/2⌋) mod N) -
    ⌊N/2⌋ ∈ [-⌊N/2⌋, ⌊N/2⌋]; then ŝ = s_j + spacing · Σ_i d_i y_i / Σ_i y_i, wrapped onto the ring.
    This equals Makin's "shift the peak to the middle, take the CoM, shift back".
    A response with zero total has no information: ŝ is the ring centre and ``obs_var`` is inf.
    Pass ``integer=False`` to decode non-negative rates (e.g. a model's reconstruction).
    """
    check_counts(y, ppc.n_neurons, integer=integer)
    N = ppc.n_neurons
    y = y.to(torch.float64)
    total = y.sum(-1)
    j = y.argmax(-1, keepdim=True)  # (..., 1)
    i = torch.arange(N, device=y.device)
    d = torch.remainder(i - j + N // 2, N) - N // 2  # (..., N)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    offset = (d * y).sum(-1) / safe
    s_hat = ppc.s_min + ppc.spacing * (j[..., 0] + offset)
    centre = ppc.s_min + ppc.period / 2
    s_hat = torch.where(total > 0, ppc.wrap(s_hat), torch.full_like(s_hat, centre))
    obs_var = torch.where(total > 0, ppc.tuning_std**2 / safe, torch.full_like(total, torch.inf))
    return CoMEstimate(s_hat=s_hat, total=total, obs_var=obs_var)


def wrap_error(err: torch.Tensor, period: float, centre: float = 0.0) -> torch.Tensor:
    """Wrap into [centre - period/2, centre + period/2): for an error (centre 0), the error of
    smallest magnitude on the ring; for a position, its image in the window around ``centre``.
    The one place the library wraps values on the ring."""
    return torch.remainder(err - centre + period / 2, period) - period / 2 + centre


def torus_mse(s_hat: torch.Tensor, s_true: torch.Tensor, period: float) -> float:
    """Torus-wrapped position MSE (rad²) over all samples, t = 1 included (Sources §5.6)."""
    if not torch.is_tensor(s_hat) or not torch.is_tensor(s_true):
        raise TypeError("s_hat and s_true must be tensors")
    if s_hat.shape != s_true.shape:
        raise ValueError(
            f"shape mismatch: s_hat {tuple(s_hat.shape)} vs s_true {tuple(s_true.shape)}"
        )
    if s_hat.numel() == 0:
        raise ValueError("empty estimates")
    if not torch.isfinite(s_hat).all():
        raise ValueError("s_hat contains NaN or Inf")
    if not torch.isfinite(s_true).all():
        raise ValueError("s_true contains NaN or Inf")
    e = wrap_error(s_hat.to(torch.float64) - s_true.to(torch.float64), period)
    return float((e**2).mean())

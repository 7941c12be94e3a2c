"""Reading position out of a recurrent model's hidden state (Sources §5.5).

Primary: decode the model's own reconstruction of the population, E[y_t | x̄_t], with the
circular centre of mass -- no fitted decoder (Makin's method). Check: least-squares linear maps
from x̄_t to the cosine and sine of the position's angle on the ring, decoded with atan2
(:func:`fit_circular_readout`). A linear map straight to the position fails near the ring's
seam, where a model that represents position on the ring has no reason to be linear.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch

from tlr.data.lds_ppc import PPCConfig
from tlr.evaluation.ppc import center_of_mass

__all__ = ["Filterable", "com_readout", "LinearReadout", "fit_linear_readout",
           "CircularReadout", "fit_circular_readout"]


class Filterable(Protocol):
    def filter(self, y: torch.Tensor) -> torch.Tensor: ...
    def reconstruct(self, u: torch.Tensor) -> torch.Tensor: ...


@torch.no_grad()
def com_readout(model: Filterable, y: torch.Tensor, ppc: PPCConfig) -> torch.Tensor:
    """Filter y (T, B, N) with the model, reconstruct the rates, decode their circular CoM."""
    rates = model.reconstruct(model.filter(y))
    return center_of_mass(rates, ppc, integer=False).s_hat


class LinearReadout(NamedTuple):
    weight: torch.Tensor  # (n_hidden,)
    bias: torch.Tensor  # ()

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """Position estimates (…,) from hidden states (…, n_hidden)."""
        return u.to(self.weight.dtype) @ self.weight + self.bias


@torch.no_grad()
def fit_linear_readout(u: torch.Tensor, s: torch.Tensor, ridge: float = 1e-6) -> LinearReadout:
    """Least squares s ≈ u·w + b on (T, B, H) states and (T, B) positions (ridge-stabilised)."""
    if u.shape[:-1] != s.shape:
        raise ValueError(f"u {tuple(u.shape)} and s {tuple(s.shape)} disagree")
    X = u.reshape(-1, u.shape[-1]).to(torch.float64)
    X = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], dim=1)
    A = X.T @ X + ridge * X.shape[0] * torch.eye(X.shape[1], dtype=X.dtype)
    coef = torch.linalg.solve(A, X.T @ s.reshape(-1).to(torch.float64))
    return LinearReadout(weight=coef[:-1], bias=coef[-1])


class CircularReadout(NamedTuple):
    cos: LinearReadout
    sin: LinearReadout
    period: float
    s_min: float

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """Position on the ring [s_min, s_min + period) from hidden states (…, n_hidden)."""
        angle = torch.atan2(self.sin(u), self.cos(u))
        return torch.remainder(angle * self.period / (2 * torch.pi), self.period) + self.s_min


@torch.no_grad()
def fit_circular_readout(u: torch.Tensor, s: torch.Tensor, ppc: PPCConfig,
                         ridge: float = 1e-6) -> CircularReadout:
    """Fit linear maps u → cos θ and u → sin θ, θ = 2π (s - s_min)/period (Sources §5.5 check)."""
    theta = 2 * torch.pi * (s.to(torch.float64) - ppc.s_min) / ppc.period
    return CircularReadout(fit_linear_readout(u, torch.cos(theta), ridge),
                           fit_linear_readout(u, torch.sin(theta), ridge), ppc.period, ppc.s_min)

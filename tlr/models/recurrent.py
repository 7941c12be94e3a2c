"""What rEFH, TRBM and RTRBM share: a harmonium over [u_{t-1}, y_t] and its mean-field filter.

Spec §5.2, §5.5, §6.2. All three use one EFH whose visible groups are u_{t-1} (Bernoulli,
n_hidden units: the previous hidden means) and y_t (``obs_type``), and filter with means:
u_t = σ(u_{t-1} W_u + y_t W_y + b_x), u_0 = 0. They differ only in how they learn
(``update``): see :mod:`tlr.models.refh`, :mod:`tlr.models.trbm`, :mod:`tlr.models.rtrbm`.
"""

from __future__ import annotations

import torch
from torch import nn

from tlr.models.efh import EFH, UNIT_TYPES

__all__ = ["check_config", "RecurrentHarmonium"]


def check_config(config) -> None:
    """Validate the fields every recurrent-harmonium config has (called in ``__post_init__``)."""
    if config.obs_type not in UNIT_TYPES:
        raise ValueError(f"obs_type must be one of {UNIT_TYPES}, got {config.obs_type!r}")
    for name in ("n_obs", "n_hidden", "n_cd_steps"):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


class RecurrentHarmonium(nn.Module):
    """Visible groups: 0 = u_{t-1} (Bernoulli, n_hidden), 1 = y_t (``config.obs_type``)."""

    name = "recurrent harmonium"

    def __init__(self, config, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = c = config
        self.efh = EFH([("bernoulli", c.n_hidden), (c.obs_type, c.n_obs)], c.n_hidden,
                       init_std=c.init_std, generator=generator)

    def _check_y(self, y: torch.Tensor, dims: int = 3) -> None:
        n = self.config.n_obs
        if not torch.is_tensor(y) or y.dim() != dims or y.shape[-1] != n:
            want = "(T, B, n_obs)" if dims == 3 else "(B, n_obs)"
            got = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
            raise ValueError(f"y must have shape {want} with n_obs={n}, got {got}")

    def initial_state(self, batch: int) -> torch.Tensor:
        """u_0 = 0 (``rcrnt0`` in EFH.m)."""
        return torch.zeros(batch, self.config.n_hidden, device=self.efh.b_hid.device)

    @torch.no_grad()
    def step(self, y_t: torch.Tensor, u_prev: torch.Tensor) -> torch.Tensor:
        """One filtering step: u_t = E[x_t | u_{t-1}, y_t] = σ(u_{t-1} W_u + y_t W_y + b_x)."""
        return self.efh.hidden_mean([u_prev, y_t])

    @torch.no_grad()
    def filter(self, y: torch.Tensor, u0: torch.Tensor | None = None) -> torch.Tensor:
        """Mean-field filter over y (T, B, n_obs); returns u (T, B, n_hidden) (spec §5.5)."""
        self._check_y(y)
        u = self.initial_state(y.shape[1]) if u0 is None else u0
        out = []
        for t in range(y.shape[0]):
            u = self.step(y[t], u)
            out.append(u)
        return torch.stack(out)

    @torch.no_grad()
    def reconstruct(self, u: torch.Tensor) -> torch.Tensor:
        """E[y_t | x̄_t]: the mean observation implied by the hidden means (spec §5.5)."""
        return self.efh.visible_mean(u, 1)

"""rEFH: the recurrent exponential-family harmonium (poster; Makin, Dichter & Sabes 2015, 2016).

Spec §5. The visible layer is [u_{t-1}, y_t]: the previous step's hidden means, treated as
*data*, next to the current observation. One tied weight matrix W = [W_u; W_y] connects it to
the Bernoulli hidden layer x_t (the poster's W_x and W_u are the same matrix, spec §5.1):

    p̂(u_{t-1} | x_t) = Bern(σ(W_u x_t + b_u)),
    p̂(y_t | x_t)     = Pois(exp(W_y x_t + b_y))   (PPC)  or  Bern(σ(W_y x_t + b_y)) (images),
    p̂(x_t | u_{t-1}, y_t) = Bern(σ(u_{t-1} W_u + y_t W_y + b_x)).

Learning is contrastive divergence on the *joint* (u_{t-1}, y_t): u_{t-1} is reconstructed in
the negative phase like y_t, and no gradient flows back through it (no BPTT): every update
uses only quantities present at time t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tlr.models.efh import EFH, UNIT_TYPES

__all__ = ["REFHConfig", "REFH"]


@dataclass(frozen=True)
class REFHConfig:
    """rEFH sizes and learning rule (defaults: Makin's [C18] LTI-PPC settings, spec §5.2-5.3)."""

    n_obs: int = 15  # PPC neurons
    n_hidden: int = 240  # 16 x n_obs (setParams.m)
    obs_type: str = "poisson"  # "poisson" (PPC) or "bernoulli" (images)
    n_cd_steps: int = 1  # CD-1 in [C18]; [C15] used CD-15
    recurrent: str = "mean"  # u_{t-1} = hidden means ([C18]) or "sample"d states ([C15])
    init_std: float = 0.005  # weights ~ N(0, 0.005²), biases 0

    def __post_init__(self) -> None:
        if self.obs_type not in UNIT_TYPES:
            raise ValueError(f"obs_type must be one of {UNIT_TYPES}, got {self.obs_type!r}")
        if self.recurrent not in ("mean", "sample"):
            raise ValueError(f"recurrent must be 'mean' or 'sample', got {self.recurrent!r}")
        for name in ("n_obs", "n_hidden", "n_cd_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")


class REFH(nn.Module):
    """The rEFH. Visible groups: 0 = u_{t-1} (Bernoulli, n_hidden), 1 = y_t (``obs_type``)."""

    name = "rEFH"

    def __init__(self, config: REFHConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config or REFHConfig()
        c = self.config
        self.efh = EFH([("bernoulli", c.n_hidden), (c.obs_type, c.n_obs)], c.n_hidden,
                       init_std=c.init_std, generator=generator)

    def _check_y(self, y: torch.Tensor, dims: int) -> None:
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
        self._check_y(y, 3)
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

    @torch.no_grad()
    def update(self, y_t: torch.Tensor, u_prev: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One temporally local learning step; writes descent directions into ``p.grad``.

        CD-k on v⁺ = [u_{t-1}, y_t] with *both* groups reconstructed (spec §5.3). Returns
        u_t for the next step: the positive-phase hidden means x̄⁺ computed with the weights
        *before* this update ([C18]; stale by one update), or the sampled x⁺ ([C15]).
        """
        self._check_y(y_t, 2)
        stats = self.efh.contrastive_divergence([u_prev, y_t], self.config.n_cd_steps, generator)
        self.efh.set_gradients(self.efh.cd_gradients(stats))
        return stats.x_mean_pos if self.config.recurrent == "mean" else stats.x_pos

    def param_groups(self, lr_obs: float, lr_rec: float, lr_hid: float, lr_vis_obs: float,
                     lr_vis_rec: float) -> list[dict]:
        """Parameter groups with Makin's per-group learning rates (spec §5.4)."""
        e = self.efh
        return [
            {"params": [e.W[1]], "lr": lr_obs},
            {"params": [e.W[0]], "lr": lr_rec},
            {"params": [e.b_hid], "lr": lr_hid},
            {"params": [e.b_vis[1]], "lr": lr_vis_obs},
            {"params": [e.b_vis[0]], "lr": lr_vis_rec},
        ]

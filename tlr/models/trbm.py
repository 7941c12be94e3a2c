"""TRBM: the temporal RBM as Makin's code defines it (spec §6.2-6.3).

The previous hidden means u_{t-1} = x̄_{t-1} enter only as a *dynamic hidden bias*
u_{t-1} W_u: the model is a conditional harmonium p(y_t | u_{t-1}), not a joint one. In the
negative phase u_{t-1} stays clamped (it is never reconstructed), and no gradient flows back
through it (no BPTT). This simplifies Sutskever & Hinton's (2007) TRBM, which fed back sampled
binary states; Makin's "TRBM" and "RTRBM" share the RTRBM's mean-field architecture and differ
only in the BPTT term (:mod:`tlr.models.rtrbm`).

Training (spec §5.3 "bouncing balls", §6.4): one update per batch of whole sequences. The
recurrent inputs of every frame are recomputed by a mean-field forward pass with the current
weights, then one CD-k step uses all frames as its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tlr.models.efh import EFH, UNIT_TYPES, CDStats

__all__ = ["TRBMConfig", "TRBM"]


@dataclass(frozen=True)
class TRBMConfig:
    """Sizes and CD length (defaults: Makin's LTI-PPC comparison, spec §6.4)."""

    n_obs: int = 15
    n_hidden: int = 240
    obs_type: str = "poisson"
    n_cd_steps: int = 25  # CD-25
    init_std: float = 0.005

    def __post_init__(self) -> None:
        if self.obs_type not in UNIT_TYPES:
            raise ValueError(f"obs_type must be one of {UNIT_TYPES}, got {self.obs_type!r}")
        for name in ("n_obs", "n_hidden", "n_cd_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")


class TRBM(nn.Module):
    """Conditional harmonium p(y_t | u_{t-1}); groups: 0 = u_{t-1} (clamped), 1 = y_t."""

    name = "TRBM"

    def __init__(self, config: TRBMConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config or TRBMConfig()
        c = self.config
        self.efh = EFH([("bernoulli", c.n_hidden), (c.obs_type, c.n_obs)], c.n_hidden,
                       init_std=c.init_std, generator=generator)

    def _check_y(self, y: torch.Tensor) -> None:
        n = self.config.n_obs
        if not torch.is_tensor(y) or y.dim() != 3 or y.shape[-1] != n:
            got = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
            raise ValueError(f"y must have shape (T, B, {n}), got {got}")

    def initial_state(self, batch: int) -> torch.Tensor:
        """u_0 = 0."""
        return torch.zeros(batch, self.config.n_hidden, device=self.efh.b_hid.device)

    @torch.no_grad()
    def step(self, y_t: torch.Tensor, u_prev: torch.Tensor) -> torch.Tensor:
        """u_t = σ(u_{t-1} W_u + y_t W_y + b_x): the mean-field recurrence r_t of the RTRBM."""
        return self.efh.hidden_mean([u_prev, y_t])

    @torch.no_grad()
    def filter(self, y: torch.Tensor, u0: torch.Tensor | None = None) -> torch.Tensor:
        """Mean-field filter over y (T, B, n_obs); returns u (T, B, n_hidden)."""
        self._check_y(y)
        u = self.initial_state(y.shape[1]) if u0 is None else u0
        out = []
        for t in range(y.shape[0]):
            u = self.step(y[t], u)
            out.append(u)
        return torch.stack(out)

    @torch.no_grad()
    def reconstruct(self, u: torch.Tensor) -> torch.Tensor:
        """E[y_t | x̄_t], used for the position readout (spec §5.5)."""
        return self.efh.visible_mean(u, 1)

    def _extra_gradients(self, grads: list[torch.Tensor], stats: CDStats, u: torch.Tensor,
                         y: torch.Tensor) -> list[torch.Tensor]:
        """Hook for the RTRBM's BPTT term; the TRBM adds nothing."""
        return grads

    @torch.no_grad()
    def update(self, y: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """One learning step on whole sequences y (T, B, n_obs); writes ``p.grad``.

        1. u_t = filter(y) with the current weights, u_{t-1} = [u_0, u_1, ..., u_{T-1}].
        2. CD-k on the T·B frames [u_{t-1}, y_t] with u_{t-1} clamped.
        """
        self._check_y(y)
        T, B, n = y.shape
        u = self.filter(y)  # (T, B, H)
        u_prev = torch.cat([self.initial_state(B)[None], u[:-1]])
        v_pos = [u_prev.reshape(T * B, -1), y.reshape(T * B, n)]
        stats = self.efh.contrastive_divergence(v_pos, self.config.n_cd_steps, generator,
                                                clamped=(0,))
        grads = self._extra_gradients(self.efh.cd_gradients(stats), stats, u, y)
        self.efh.set_gradients(grads)
        return {"u": u}

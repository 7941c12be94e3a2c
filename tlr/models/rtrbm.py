"""RTRBM: the recurrent temporal RBM (Sutskever, Hinton & Taylor 2008), trained with BPTT.

Spec §6.1-6.2 (Makin's ``BPTT.m``). Same network and CD step as the :class:`~tlr.models.trbm.TRBM`
(u_{t-1} = r_{t-1} = x̄_{t-1} enters as a clamped dynamic bias), plus the gradient that flows
back through the mean-field chain r_t = σ(r_{t-1} W_u + y_t W_y + b_x). With
D_t = x⁺_t - x̄⁻_t (the CD statistic at step t) and σ'_t = x̄_t (1 - x̄_t):

    G_T = 0,    G_t = ((D_{t+1} + G_{t+1}) W_uᵀ) ⊙ σ'_t,
    ΔW_u += Σ_t u_{t-1}ᵀ G_t,   ΔW_y += Σ_t y_tᵀ G_t,   Δb_x += Σ_t G_t   (ascent directions).
"""

from __future__ import annotations

import torch

from tlr.models.efh import CDStats
from tlr.models.trbm import TRBM

__all__ = ["RTRBM", "bptt_term"]


@torch.no_grad()
def bptt_term(W_u: torch.Tensor, u: torch.Tensor, y: torch.Tensor,
              D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The BPTT ascent directions (dW_u, dW_y, db_x), summed over t and batch.

    ``u``: (T, B, H) mean-field states x̄_1..x̄_T; ``y``: (T, B, n); ``D``: (T, B, H) the
    per-step CD statistic ∂ log p(y_t | u_{t-1}) / ∂ η_t.
    """
    T, B, H = u.shape
    G = torch.zeros_like(u)
    for t in range(T - 2, -1, -1):
        G[t] = ((D[t + 1] + G[t + 1]) @ W_u.T) * u[t] * (1 - u[t])
    u_prev = torch.cat([torch.zeros_like(u[:1]), u[:-1]])
    dW_u = torch.einsum("tbi,tbj->ij", u_prev, G)
    dW_y = torch.einsum("tbi,tbj->ij", y, G)
    return dW_u, dW_y, G.sum((0, 1))


class RTRBM(TRBM):
    """TRBM + backprop through time along the mean-field recurrence."""

    name = "RTRBM"

    def _extra_gradients(self, grads: list[torch.Tensor], stats: CDStats, u: torch.Tensor,
                         y: torch.Tensor) -> list[torch.Tensor]:
        T, B, H = u.shape
        D = (stats.x_pos - stats.x_mean_neg).reshape(T, B, H)  # h⁺ sampled, h⁻ mean (BPTT.m)
        dW_u, dW_y, db = bptt_term(self.efh.W[0], u, y.to(u.dtype), D)
        n = T * B  # the CD gradients are batch means; scale the BPTT sums the same way
        gW_u, gW_y, gb_u, gb_y, gb_h = grads  # descent directions
        return [gW_u - dW_u / n, gW_y - dW_y / n, gb_u, gb_y, gb_h - db / n]

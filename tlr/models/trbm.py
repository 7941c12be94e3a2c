"""TRBM: the temporal RBM as Makin's code defines it (Sources §6.2-6.3).

The previous hidden means u_{t-1} = x̄_{t-1} enter only as a *dynamic hidden bias*
u_{t-1} W_u: the model is a conditional harmonium p(y_t | u_{t-1}), not a joint one. In the
negative phase u_{t-1} stays clamped (it is never reconstructed), and no gradient flows back
through it (no BPTT). This simplifies Sutskever & Hinton's (2007) TRBM, which fed back sampled
binary states; Makin's "TRBM" and "RTRBM" share the RTRBM's mean-field architecture and differ
only in the BPTT term (:func:`bptt_term`, used by :mod:`tlr.models.rtrbm`).

Training (Sources §5.3 "bouncing balls", §6.4): one update per batch of whole sequences. The
recurrent inputs of every frame are recomputed by a mean-field forward pass with the current
weights, then one CD-k step uses all frames as its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tlr.models.base import Update
from tlr.models.efh import CDStats
from tlr.models.recurrent import RecurrentHarmonium, check_config

__all__ = ["TRBMConfig", "TRBM", "bptt_term"]


@torch.no_grad()
def bptt_term(W_u: torch.Tensor, u: torch.Tensor, y: torch.Tensor,
              D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The RTRBM's BPTT ascent directions (dW_u, dW_y, db_x), summed over t and batch.

    Makin's ``BPTT.m``. With D_t = x⁺_t - x̄⁻_t (the CD statistic at step t) and
    σ'_t = x̄_t (1 - x̄_t), the adjoint runs backwards along r_t = σ(r_{t-1} W_u + y_t W_y + b_x):

        G_T = 0,    G_t = ((D_{t+1} + G_{t+1}) W_uᵀ) ⊙ σ'_t,
        dW_u = Σ_t u_{t-1}ᵀ G_t,   dW_y = Σ_t y_tᵀ G_t,   db_x = Σ_t G_t.

    ``u``: (T, B, H) mean-field states x̄_1..x̄_T from u_0 = 0; ``y``: (T, B, n); ``D``:
    (T, B, H) the per-step CD statistic ∂ log p(y_t | u_{t-1}) / ∂ η_t.
    """
    T, B, H = u.shape
    G = torch.zeros_like(u)
    for t in range(T - 2, -1, -1):
        G[t] = ((D[t + 1] + G[t + 1]) @ W_u.T) * u[t] * (1 - u[t])
    u_prev = torch.cat([torch.zeros_like(u[:1]), u[:-1]])
    dW_u = torch.einsum("tbi,tbj->ij", u_prev, G)
    dW_y = torch.einsum("tbi,tbj->ij", y, G)
    return dW_u, dW_y, G.sum((0, 1))


@dataclass(frozen=True)
class TRBMConfig:
    """Sizes and CD length (defaults: Makin's LTI-PPC comparison, Sources §6.4)."""

    n_obs: int = 15
    n_hidden: int = 240
    obs_type: str = "poisson"
    n_cd_steps: int = 25  # CD-25
    init_std: float = 0.005
    # the training chains' matrix products: "float32" or "bfloat16" (EFH.contrastive_divergence)
    gibbs_dtype: str = "float32"

    def __post_init__(self) -> None:
        check_config(self)


class TRBM(RecurrentHarmonium):
    """Conditional harmonium p(y_t | u_{t-1}); groups: 0 = u_{t-1} (clamped), 1 = y_t."""

    name = "TRBM"
    bptt = False  # the RTRBM adds the gradient through the mean-field chain

    def __init__(self, config: TRBMConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(config or TRBMConfig(), generator)

    def _gradients(self, stats: CDStats, u: torch.Tensor, y: torch.Tensor,
                   bptt: bool) -> list[torch.Tensor]:
        """Descent directions in :meth:`EFH.ordered_parameters` order: CD (+ BPTT term)."""
        grads = self.efh.cd_gradients(stats)
        if not bptt:
            return grads
        T, B, H = u.shape
        D = (stats.x_pos - stats.x_mean_neg).reshape(T, B, H)  # h⁺ sampled, h⁻ mean (BPTT.m)
        dW_u, dW_y, db = bptt_term(self.efh.W[0], u, y.to(u.dtype), D)
        n = T * B  # the CD gradients are batch means; scale the BPTT sums the same way
        gW_u, gW_y, gb_u, gb_y, gb_h = grads
        return [gW_u - dW_u / n, gW_y - dW_y / n, gb_u, gb_y, gb_h - db / n]

    def _check_u0(self, u0: torch.Tensor | None) -> None:
        if self.bptt and u0 is not None and bool((u0 != 0).any()):
            raise ValueError(f"the {self.name}'s BPTT recursion starts from u_0 = 0: "
                             "pass u0=None")

    @torch.no_grad()
    def update(self, y: torch.Tensor, u0: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> Update:
        """One learning step on whole sequences y (T, B, n_obs); writes ``p.grad``.

        1. u_t = filter(y) with the current weights, u_{t-1} = [u_0, u_1, ..., u_{T-1}].
        2. CD-k on the T·B frames [u_{t-1}, y_t] with u_{t-1} clamped (+ the BPTT term).
        """
        self._check_u0(u0)
        u, stats = self.window_cd(y, u0, generator, clamped=(0,))
        self.efh.set_gradients(self._gradients(stats, u, y, self.bptt))
        return Update(u[-1], None)

    @torch.no_grad()
    def local_and_bptt_gradients(self, y: torch.Tensor, u0: torch.Tensor | None = None,
                                 generator: torch.Generator | None = None
                                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(TRBM, RTRBM) descent directions from ONE CD-k run on y (T, B, n_obs).

        Local: the CD gradient alone (the TRBM's rule: u_{t-1} is data); BPTT: the same plus
        :func:`bptt_term` (the RTRBM's), so the two differ by exactly that term. Order:
        ``named_parameters()``.
        """
        if u0 is not None and bool((u0 != 0).any()):
            raise ValueError("the RTRBM's BPTT recursion starts from u_0 = 0: pass u0=None")
        y = y.to(self.efh.b_hid.dtype)
        u, stats = self.window_cd(y, None, generator, clamped=(0,))
        local = self.efh.cd_gradients(stats)
        bptt = self._gradients(stats, u, y, True)
        order = {id(p): i for i, p in enumerate(self.efh.ordered_parameters())}
        perm = [order[id(p)] for _, p in self.named_parameters() if p.requires_grad]
        return [local[i] for i in perm], [bptt[i] for i in perm]

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

from tlr.models.efh import CDStats
from tlr.models.recurrent import RecurrentHarmonium, check_config

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
        check_config(self)


class TRBM(RecurrentHarmonium):
    """Conditional harmonium p(y_t | u_{t-1}); groups: 0 = u_{t-1} (clamped), 1 = y_t."""

    name = "TRBM"

    def __init__(self, config: TRBMConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(config or TRBMConfig(), generator)

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

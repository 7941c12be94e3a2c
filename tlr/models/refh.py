"""rEFH: the recurrent exponential-family harmonium (poster; Makin, Dichter & Sabes 2015, 2016).

Sources §5. The visible layer is [u_{t-1}, y_t]: the previous step's hidden means, treated as
*data*, next to the current observation. One tied weight matrix W = [W_u; W_y] connects it to
the Bernoulli hidden layer x_t (the poster's W_x and W_u are the same matrix, Sources §5.1):

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

from tlr.models.base import Update
from tlr.models.recurrent import RecurrentHarmonium, check_config

__all__ = ["REFHConfig", "REFH"]


@dataclass(frozen=True)
class REFHConfig:
    """rEFH sizes and learning rule (defaults: Makin's LTI-PPC settings, Sources §5.2-5.3)."""

    n_obs: int = 15  # PPC neurons
    n_hidden: int = 240  # 16 x n_obs (setParams.m)
    obs_type: str = "poisson"  # "poisson" (PPC) or "bernoulli" (images)
    n_cd_steps: int = 1  # CD-1 in Makin's 2018 code; the 2015 paper used CD-15
    recurrent: str = "mean"  # u_t handed on = hidden means (2018 code) or "sample"d states (2015)
    init_std: float = 0.005  # weights ~ N(0, 0.005²), biases 0
    # the training chains' matrix products: "float32" or "bfloat16" (EFH.contrastive_divergence)
    gibbs_dtype: str = "float32"

    def __post_init__(self) -> None:
        check_config(self)
        if self.recurrent not in ("mean", "sample"):
            raise ValueError(f"recurrent must be 'mean' or 'sample', got {self.recurrent!r}")


class REFH(RecurrentHarmonium):
    """The rEFH. Visible groups: 0 = u_{t-1} (Bernoulli, n_hidden), 1 = y_t (``obs_type``)."""

    name = "rEFH"

    def __init__(self, config: REFHConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(config or REFHConfig(), generator)

    @torch.no_grad()
    def update(self, y: torch.Tensor, u0: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> Update:
        """One temporally local learning step on the window y (T, B, n_obs); writes ``p.grad``.

        u_{t-1} comes from a mean-field pass with the current weights (from ``u0``), then ONE
        CD-k update on all T·B pairs v⁺ = [u_{t-1}, y_t] with *both* groups reconstructed
        (Sources §5.3). Online training (LTI-PPC) uses windows of T = 1 and carries the
        returned state: the positive-phase hidden means x̄⁺, computed with the weights
        *before* this update (stale by one update), or with ``recurrent="sample"`` the
        sampled x⁺ (2015 code). Bouncing balls use whole 100-frame sequences (Sources §9.5).
        """
        u, stats = self.window_cd(y, u0, generator)
        self.efh.set_gradients(self.efh.cd_gradients(stats))
        last = u[-1] if self.config.recurrent == "mean" else stats.x_pos[-y.shape[1]:]
        return Update(last, None)

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

from tlr.models.recurrent import RecurrentHarmonium, check_config

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

    @torch.no_grad()
    def update_sequence(self, y: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """One update on whole sequences y (T, B, n_obs): the bouncing-balls protocol (§9.5).

        Makin's batches there are whole 100-frame trajectories: u_{t-1} is recomputed by a
        mean-field pass with the current weights (§5.3), then one CD-k update on all T·B
        pairs [u_{t-1}, y_t] with *both* groups reconstructed (the rEFH's joint rule; the
        TRBM's :meth:`~tlr.models.trbm.TRBM.update` differs only in clamping u_{t-1}).
        """
        self._check_y(y)
        T, B, n = y.shape
        u = self.filter(y)
        u_prev = torch.cat([self.initial_state(B)[None], u[:-1]])
        stats = self.efh.contrastive_divergence([u_prev.reshape(T * B, -1), y.reshape(T * B, n)],
                                                self.config.n_cd_steps, generator)
        self.efh.set_gradients(self.efh.cd_gradients(stats))
        return {"u": u}

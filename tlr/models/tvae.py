"""TVAE: the temporal (conditional) VAE, the VAE analogue of the TRBM, and its BPTT twin.

Sources §7.4 (and §8.2: a one-step-truncated deep Kalman filter). The poster's PPC table lists a
"TVAE" (9.5e-4, Sources §12.1) without defining it; the best-supported reading is a VAE that models
only the forward transition. u_{t-1} is a *conditioning input*, not data to be explained:

    p(x_t | u_{t-1}) = N(μ_p(u_{t-1}), diag σ_p²(u_{t-1})),   p(y_t | x_t) = Pois / N / Bern,
    q(x_t | u_{t-1}, y_t) = the rVAE's late-fusion encoder,

    loss = Σ_t E_q[log q(x_t | u_{t-1}, y_t) - log p(x_t | u_{t-1}) - log p(y_t | x_t)],

with u_{t-1} = ν_{t-1} detached (the same temporally local rule as the rVAE; Sources §7.3). Unlike
the rVAE, u_{t-1} is never reconstructed: nothing at time t rewards x_t for carrying what u_{t-1}
knew, and with u detached nothing rewards x_{t-1} for carrying what helps predict x_t (Sources §6.3:
the TRBM/RTRBM contrast). ``bptt=True`` keeps the graph through u (TVAE-BPTT, Sources §8.6).

Encoder, y-decoder, filter, reconstruction and the CoM readout are the rVAE's (one code path).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from tlr.models.rvae import RVAE, _check_common, mlp, n_tril, scale_tril

__all__ = ["TVAEConfig", "TVAE"]


@dataclass(frozen=True)
class TVAEConfig:
    """TVAE sizes and likelihood; the fields mean what they mean in ``RVAEConfig`` (Sources §7.4).

    There is no σ_u: u_{t-1} is not modelled. ``learn_sigma="cond"`` gives the conditional
    prior a full covariance Σ_p(u) (Cholesky factor from the prior network), otherwise it is
    diagonal; σ_y is learned per dim unless "fixed" (Gaussian likelihood only).
    """

    n_obs: int = 15
    n_latent: int = 2  # as RVAEConfig
    n_units: int = 128
    n_layers: int = 1  # hidden layers of the y-trunk, the decoder and the prior network
    likelihood: str = "poisson"
    sigma_y: float = 1.0  # Gaussian likelihood only (initial value if learned)
    learn_sigma: str = "cond"
    u_mode: str = "mean"  # u_{t-1} = ν_{t-1} ("mean") or a posterior sample ("sample")
    warm_start: int = 10  # filter(): u_0 = fixed point of ν = enc(y_1, ν) (RVAE.start_state)
    bptt: bool = False  # TVAE-BPTT: keep the gradient through u_{t-1}

    def __post_init__(self) -> None:
        _check_common(self)


class TVAE(RVAE):
    """The TVAE (``bptt=False``) or TVAE-BPTT; same interface as :class:`RVAE`."""

    def __init__(self, config: TVAEConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(config or TVAEConfig(), generator)

    def _build_u_model(self) -> None:
        """The conditional prior p(x_t | u_{t-1}) in place of the rVAE's u-decoder: μ_p(u)
        and log σ_p²(u), or under "cond" the Cholesky factor of Σ_p(u)."""
        c = self.config
        n_cov = n_tril(c.n_latent) if c.learn_sigma == "cond" else c.n_latent
        self.prior = mlp(c.n_latent, c.n_units, c.n_latent + n_cov, c.n_layers)

    @property
    def name(self) -> str:
        return "TVAE-BPTT" if self.config.bptt else "TVAE"

    def sigma_u(self) -> torch.Tensor:
        raise AttributeError("the TVAE has no σ_u: u_{t-1} is conditioned on, not modelled")

    def prior_dist(self, u_prev: torch.Tensor) -> Normal | MultivariateNormal:
        """The conditional prior p(x_t | u_{t-1}) (diagonal, or full under "cond")."""
        n = self.config.n_latent
        out = self.prior(u_prev)
        mu, rest = out[..., :n], out[..., n:]
        if self.config.learn_sigma == "cond":
            return MultivariateNormal(mu, scale_tril=scale_tril(rest, n), validate_args=False)
        return Normal(mu, torch.exp(0.5 * rest.clamp(-12.0, 6.0)), validate_args=False)

    def predict_latent(self, u_prev: torch.Tensor, n_steps: int = 100,
                       lr: float = 0.05) -> torch.Tensor:
        """The mode of the explicit transition prior p̂(x_t | u_{t-1}): its mean (no search)."""
        with torch.no_grad():
            return self.prior_dist(u_prev).mean

    def _terms(self, y_t: torch.Tensor, u_prev: torch.Tensor, x: torch.Tensor, nu: torch.Tensor,
               std: torch.Tensor, u_var: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(KL(q ‖ p(x_t | u_{t-1})), 0, -log p(y_t | x_t)): u is not reconstructed (so
        ``u_var`` has no term to enter)."""
        prior = self.prior_dist(u_prev)
        if isinstance(prior, MultivariateNormal):
            q = MultivariateNormal(nu, scale_tril=torch.diag_embed(std), validate_args=False)
            kl = kl_divergence(q, prior)
        else:
            kl = kl_divergence(Normal(nu, std), prior).sum(-1)
        return kl, torch.zeros_like(kl), self._nll_y(y_t, x)

"""rVAE: the recurrent variational autoencoder of the poster, and its BPTT twin.

Sources §7.1-7.3. Generative model (θ), with the previous latent u_{t-1} treated as data:

    p̂(x_t) = N(0, I),  p̂(u_{t-1} | x_t) = N(μ_u(x_t), Σ_u),  p̂(y_t | x_t) = Pois / Mult / N / Bern.

Recognition model (φ), with *late fusion*: y_t is encoded first, then joined with u_{t-1}:

    q(x_t | u_{t-1}, y_t) = N(ν(h_t, u_{t-1}), diag Υ(h_t, u_{t-1})),   h_t = enc(y_t).

The generative model makes U_{t-1} ⟂ Y_t | X_t, so its exact posterior is additive in the two
evidences, log p(x | u, y) = log p(x) + log p(u | x) + log p(y | x) + const; fusing after the
y-encoder keeps the recognition model close to that form (the poster's "concatenating U_{t-1}
with Y_t only after encoding").

Loss: the negative ELBO of the joint (u_{t-1}, y_t), summed over t. u_{t-1} = ν_{t-1}
(Sources §7.3).
In the rVAE, u_{t-1} is *detached*: "letting the derivative pass through the expectation" treats
it as data, so no gradient flows back in time. ``bptt=True`` keeps the graph instead
(rVAE-BPTT): the same network and loss, trained with backprop through time.

Choices the poster leaves open (Sources §7.2), as found on LTI-PPC during development (the
search is not recorded; the rVAE chapter tabulates the choices with their reasons):

* Σ_u. The poster's σ_x² I, fixed, fails both ways: a small σ_u makes copying u_{t-1} into x_t
  cheap (the latent fills with self-sustaining "memory" of its own past and drifts), a large one
  ignores u (ORDER 0). Learned, Σ_u anneals itself from large to small. A position on the PPC
  ring needs two latent dimensions, and the posterior mean then also scatters across the ring
  (a direction the decoder ignores); with one σ per axis that scatter swamps the precise
  along-ring part, so ``learn_sigma="cond"`` lets the u-decoder output a full Σ_u(x).
* u_0. The rEFH's u_0 = 0 adds nothing to its hidden input; in a VAE latent space 0 is a
  definite state. Filtering starts from the state consistent with y_1 alone (``warm_start``).
* Likelihood for counts: Poisson; "multinomial" scores only the shape of the population
  response (the part that carries position when the gain varies per step, Sources §2.5).

rVAE-β (``kl_weight``, ``kl_warmup``, ``kl_weight0``, ``free_bits``). The per-step loss
β KL(q(x_t | u_{t-1}, y_t) ‖ N(0, I)) - E_q[log p̂(u_{t-1} | x_t) + log p̂(y_t | x_t)] is a β-VAE
objective: the Lagrangian of "least distortion D = -E log p̂(u, y | x) at rate R = KL", whose
optimum sits where -dD/dR = β, with q* ∝ p(x) [p̂(u | x) p̂(y | x)]^{1/β}; β = 1 is the ELBO.
A feature enters x_t only if it buys more than β nats of distortion per nat of rate. Velocity
buys almost nothing for y_t (which reports position) or for the position part of u_{t-1}
(≤ 0.03 nats/step against ~3 nats/step of KL), so at β = 1 the rVAE stays first order. But a
latent coordinate that x_t *copies* from u_{t-1} is repaid by -log p̂(u_{t-1} | x_t) about as
much as it costs in KL: at β = 1 such a memory is neutral, so both "no velocity anywhere" and
"velocity in every u" are fixed points of the local rule. β < 1 prices rate below distortion and
makes the memory pay (1 - β) KL per step; starting low (``kl_weight0``) puts the optimiser in
the second-order basin, and a final β just under 1 keeps the velocity without rewarding much
other self-sustaining memory (a low final β fills the latent with drift and loses position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import (
    Bernoulli,
    Multinomial,
    MultivariateNormal,
    Normal,
    Poisson,
    kl_divergence,
)

from tlr.models.base import RecurrentModel, Update, check_int

__all__ = ["RVAEConfig", "StepOutput", "check_kl_options", "is_beta_vae", "mlp", "obs_distribution",
           "n_tril", "scale_tril", "prior_kl", "RVAE"]

LIKELIHOODS = ("poisson", "multinomial", "gaussian", "bernoulli")
SIGMA_MODES = ("fixed", "scalar", "diag", "cond")
LOG_SIGMA_MIN = math.log(1e-2)  # floor on learned σ's: a constant target would drive σ → 0


def _check_common(c) -> None:
    """Validation shared by the rVAE and TVAE configs."""
    if c.likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {c.likelihood!r}")
    if c.u_mode not in ("mean", "sample"):
        raise ValueError(f"u_mode must be 'mean' or 'sample', got {c.u_mode!r}")
    if c.learn_sigma not in SIGMA_MODES:
        raise ValueError(f"learn_sigma must be one of {SIGMA_MODES}, got {c.learn_sigma!r}")
    for name in ("n_obs", "n_latent", "n_units", "n_layers", "warm_start"):
        check_int(name, getattr(c, name), 0 if name == "warm_start" else 1)
    if not c.sigma_y > 0:
        raise ValueError(f"sigma_y must be > 0, got {c.sigma_y}")


@dataclass(frozen=True)
class RVAEConfig:
    """Sizes, likelihoods and σ's. The poster gives none of them (Sources §7.2); see Sources §7.3.

    Defaults are the settings that worked best on LTI-PPC in a development search (not
    recorded; the rVAE chapter tabulates the choices with their reasons).
    """

    n_obs: int = 15
    n_latent: int = 2  # a position on the PPC ring; dim(X) < dim(Y): the poster's compression
    n_units: int = 128  # width of every hidden layer
    n_layers: int = 1  # hidden layers of the y-encoder trunk and of each decoder
    likelihood: str = "poisson"  # p(y | x): "poisson", "multinomial" (PPC), "gaussian", "bernoulli"
    sigma_y: float = 1.0  # Gaussian likelihood only (initial value if learned)
    sigma_u: float = 0.3  # p(u_{t-1} | x_t) = N(μ_u(x_t), σ_u²): fixed value, or initial value
    # σ_u: "fixed", learned "scalar" or per-dim "diag", or "cond": a full covariance Σ_u(x)
    # output by the u-decoder (σ_y: learned per dim under "diag" and "cond")
    learn_sigma: str = "cond"
    u_mode: str = "mean"  # u_{t-1} = ν_{t-1} ("mean", Sources §7.3) or a posterior "sample"
    warm_start: int = 10  # filter(): u_0 = fixed point of ν = enc(y_1, ν), this many iterations
    bptt: bool = False  # rVAE-BPTT: keep the gradient through u_{t-1}
    # rVAE-β: the training loss weights the KL term by β, loss = β KL + nll_u + nll_y
    # (a β-VAE; β = 1 is the ELBO). β ramps linearly from ``kl_weight0`` to ``kl_weight`` over
    # the first ``kl_warmup`` updates (0: β = ``kl_weight`` throughout). ``free_bits`` > 0: the
    # KL of each latent dimension, averaged over the batch, counts at least that many nats.
    kl_weight: float = 1.0
    kl_warmup: int = 0
    kl_weight0: float = 0.0
    free_bits: float = 0.0
    # u_{t-1} as uncertain data: score -E_{q(x_{t-1})} log p̂(x_{t-1} | x_t) under the previous
    # posterior N(ν_{t-1}, Υ_{t-1}) (its Υ detached, like ν), not -log p̂(ν_{t-1} | x_t) alone
    u_uncertain: bool = False

    def __post_init__(self) -> None:
        _check_common(self)
        check_kl_options(self)

    @property
    def beta_vae(self) -> bool:
        """Whether the training loss differs from the negative ELBO (β ≠ 1, warm-up, free bits)."""
        return is_beta_vae(self)


def check_kl_options(c) -> None:
    """σ_u and the rVAE-β options of an rVAE config (``RVAEConfig``, ``ConvRVAEConfig``)."""
    if not c.sigma_u > 0:
        raise ValueError(f"sigma_u must be > 0, got {c.sigma_u}")
    check_int("kl_warmup", c.kl_warmup, 0)
    for name in ("kl_weight", "kl_weight0", "free_bits"):
        if not getattr(c, name) >= 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(c, name)}")


def is_beta_vae(c) -> bool:
    """Whether config ``c``'s training loss differs from the negative ELBO."""
    return (c.kl_weight != 1.0 or c.kl_warmup > 0 or c.free_bits > 0
            or getattr(c, "u_uncertain", False))


def mlp(n_in: int, n_units: int, n_out: int, n_layers: int = 2) -> nn.Sequential:
    """``n_layers`` hidden layers of ``n_units`` with ELU, then a linear output (0: linear)."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(n_in if i == 0 else n_units, n_units), nn.ELU()]
    layers.append(nn.Linear(n_units if n_layers else n_in, n_out))
    return nn.Sequential(*layers)


def obs_distribution(likelihood: str, eta: torch.Tensor, sigma: torch.Tensor | float = 1.0):
    """p(y | x) from the decoder output η: Pois(exp η), Mult(Σy; softmax η), N(η, σ²), Bern(σ(η)).

    The multinomial scores the *shape* of a population response given its total count (its
    log-probability uses the total of the scored y). For PPC counts with a random per-step gain
    (Sources §2.5) it drops exactly the part of the Poisson likelihood that carries only the gain:
    on the ring Σ_i f_i(s) is constant, so the total count says nothing about position.
    """
    if likelihood == "poisson":
        return Poisson(rate=torch.exp(eta.clamp(max=20.0)), validate_args=False)
    if likelihood == "multinomial":
        return Multinomial(logits=eta, validate_args=False)
    if likelihood == "gaussian":
        return Normal(eta, sigma, validate_args=False)
    return Bernoulli(logits=eta, validate_args=False)


def _log_sigma(mode: str, value: float, n: int) -> nn.Parameter | torch.Tensor:
    """A learnable log σ (one, or one per dim), or a fixed one (a buffer)."""
    init = torch.full((n if mode in ("diag", "cond") else 1,), math.log(value))
    return nn.Parameter(init) if mode != "fixed" else init


def n_tril(n: int) -> int:
    """Entries of an n x n lower-triangular matrix."""
    return n * (n + 1) // 2


def scale_tril(raw: torch.Tensor, n: int, log_scale: float | torch.Tensor = 0.0) -> torch.Tensor:
    """A Cholesky factor (…, n, n) from n(n+1)/2 raw numbers (…, n(n+1)/2).

    L = e^s (strict lower part of raw) + diag(exp(raw_ii + s)), s = ``log_scale``; the log of
    the diagonal is clamped to [log 1e-2, 5] so the covariance stays well conditioned.
    """
    i, j = torch.tril_indices(n, n, device=raw.device)
    L = raw.new_zeros(*raw.shape[:-1], n, n)
    L[..., i, j] = raw
    d = torch.diagonal(L, dim1=-2, dim2=-1)
    diag = torch.diag_embed((d + log_scale).clamp(LOG_SIGMA_MIN, 5.0).exp())
    return (L - torch.diag_embed(d)) * math.exp(float(log_scale)) + diag


def prior_kl(nu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(ν, diag std²) ‖ N(0, I)) per latent coordinate, shape of ``nu``: the rate of each
    coordinate (free bits floor its batch mean)."""
    return kl_divergence(Normal(nu, std), Normal(torch.zeros_like(nu), 1.0))


class StepOutput(NamedTuple):
    u: torch.Tensor  # (…, B, n_latent) u_t handed to the next step (ν_t, or a sample)
    loss: torch.Tensor  # (…, B) negative ELBO of (u_{t-1}, y_t) per sequence = kl + nll_u + nll_y
    # (rVAE-β: β kl + nll_u + nll_y, see RVAEConfig.kl_weight)
    nu: torch.Tensor  # (…, B, n_latent) posterior mean
    logvar: torch.Tensor  # (…, B, n_latent) posterior log-variance (diagonal Υ)
    kl: torch.Tensor  # (…, B) KL(q(x_t | ·) ‖ prior)
    nll_u: torch.Tensor  # (…, B) -log p̂(u_{t-1} | x_t), one sample (0 for the TVAE)
    nll_y: torch.Tensor  # (…, B) -log p̂(y_t | x_t), one sample


class RVAE(RecurrentModel):
    """The rVAE (``bptt=False``) or rVAE-BPTT (``bptt=True``); time-major inputs (T, B, n)."""

    def __init__(self, config: RVAEConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config or RVAEConfig()
        self._build_common()
        self._build_u_model()
        self._init_linear(generator)
        if getattr(self.config, "kl_warmup", 0) > 0:  # the β schedule's clock (checkpointed)
            self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))

    def _build_u_model(self) -> None:
        """p̂(u_{t-1} | x_t): μ_u(x), and under "cond" the Cholesky factor of Σ_u(x)."""
        c = self.config
        n_cov = n_tril(c.n_latent) if c.learn_sigma == "cond" else 0
        self.gen_u = mlp(c.n_latent, c.n_units, c.n_latent + n_cov, c.n_layers)
        log_su = _log_sigma("fixed" if c.learn_sigma == "cond" else c.learn_sigma, c.sigma_u,
                            c.n_latent)  # under "cond": the scale of Σ_u(x) at initialisation
        if isinstance(log_su, nn.Parameter):
            self.log_sigma_u = log_su
        else:
            self.register_buffer("log_sigma_u", log_su)

    def _init_linear(self, generator: torch.Generator | None) -> None:
        """Re-draw every Linear layer with ``generator`` (torch's default scheme); None: keep
        the draw from the global RNG."""
        if generator is None:
            return
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.kaiming_uniform_(mod.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(mod.in_features)
                nn.init.uniform_(mod.bias, -bound, bound, generator=generator)

    def _build_common(self) -> None:
        """Recognition model (late fusion) and the y-decoder, shared with the TVAE."""
        c = self.config
        self.rec_y = mlp(c.n_obs, c.n_units, c.n_units, c.n_layers)  # y-encoder trunk
        self.rec_head = mlp(c.n_units + c.n_latent, c.n_units, 2 * c.n_latent, n_layers=1)
        self.gen_y = mlp(c.n_latent, c.n_units, c.n_obs, c.n_layers)  # η_y(x)
        log_sy = _log_sigma(c.learn_sigma, c.sigma_y, c.n_obs)
        if c.likelihood == "gaussian" and isinstance(log_sy, nn.Parameter):
            self.log_sigma_y = log_sy
        else:
            self.register_buffer("log_sigma_y", log_sy)

    @property
    def name(self) -> str:
        if self.config.bptt:
            return "rVAE-BPTT"
        return "rVAE-β" if getattr(self.config, "beta_vae", False) else "rVAE"

    def kl_weight(self) -> float:
        """β of the current update: ``kl_weight0`` → ``kl_weight`` linearly over ``kl_warmup``
        updates, then ``kl_weight`` (1 for models without the option: the ELBO)."""
        c = self.config
        beta = getattr(c, "kl_weight", 1.0)
        if getattr(c, "kl_warmup", 0) > 0:
            frac = min(1.0, int(self.n_updates) / c.kl_warmup)
            beta = c.kl_weight0 + (beta - c.kl_weight0) * frac
        return beta

    def _kl_term(self, kl: torch.Tensor, nu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """β KL per sequence, with free bits: each latent dimension's batch-mean KL counts at
        least ``free_bits`` nats (the gradient of a dimension under its floor is zero)."""
        c = self.config
        fb = getattr(c, "free_bits", 0.0)
        if fb > 0:
            kl_dim = prior_kl(nu, std)
            mean_dim = kl_dim.mean(-2, keepdim=True)  # batch mean, per step and dimension
            # per sequence: a dimension under its floor contributes its share of the floor
            kl = torch.where(mean_dim < fb, fb + 0 * kl_dim, kl_dim).sum(-1)
        return self.kl_weight() * kl

    def initial_state(self, batch: int) -> torch.Tensor:
        """u_0 = 0."""
        return torch.zeros(batch, self.config.n_latent, device=self.gen_y[0].weight.device)

    def _features(self, y: torch.Tensor) -> torch.Tensor:
        # Counts enter through log(1 + y): a fixed, invertible squashing of the input scale.
        return torch.log1p(y) if self.config.likelihood in ("poisson", "multinomial") else y

    def encode(self, y_t: torch.Tensor, u_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ν, log Υ) of q(x_t | u_{t-1}, y_t), late fusion: the y-trunk never sees u."""
        return self._head(self.rec_y(self._features(y_t)), u_prev)

    def _head(self, h: torch.Tensor, u_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fusion layer: (ν, log Υ) from the y-code h_t and u_{t-1}."""
        nu, logvar = self.rec_head(torch.cat([h, u_prev], dim=-1)).chunk(2, dim=-1)
        return nu, logvar.clamp(-12.0, 6.0)

    def sigma_u(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """σ_u of p̂(u_{t-1} | x_t), shape (1,) or (n_latent,); learned ones floored at 1e-2.

        Under ``learn_sigma="cond"`` the marginal standard deviations sqrt(diag Σ_u(x)), shape
        (…, n_latent), at the latents ``x`` (required).
        """
        if self.config.learn_sigma != "cond":
            return self.log_sigma_u.clamp(min=LOG_SIGMA_MIN).exp()
        if x is None:
            raise ValueError("learn_sigma='cond': σ_u depends on x; pass x")
        L = self.u_dist(x).scale_tril
        return (L**2).sum(-1).sqrt()

    def u_dist(self, x: torch.Tensor) -> Normal | MultivariateNormal:
        """p̂(u_{t-1} | x_t)."""
        out = self.gen_u(x)
        n = self.config.n_latent
        if self.config.learn_sigma != "cond":
            return Normal(out, self.sigma_u(), validate_args=False)
        L = scale_tril(out[..., n:], n, self.log_sigma_u[0])
        return MultivariateNormal(out[..., :n], scale_tril=L, validate_args=False)

    def sigma_y(self) -> torch.Tensor:
        """σ_y of a Gaussian p̂(y_t | x_t), shape (1,) or (n_obs,) (unused otherwise)."""
        return self.log_sigma_y.clamp(min=LOG_SIGMA_MIN).exp()

    def _nll_y(self, y_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p̂(y_t | x_t) per sequence."""
        dist = obs_distribution(self.config.likelihood, self.gen_y(x), self.sigma_y())
        log_p = dist.log_prob(y_t)
        return -(log_p.sum(-1) if log_p.dim() == y_t.dim() else log_p)  # multinomial: summed

    def _terms(self, y_t: torch.Tensor, u_prev: torch.Tensor, x: torch.Tensor, nu: torch.Tensor,
               std: torch.Tensor, u_var: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(KL, -log p̂(u | x), -log p̂(y | x)) per sequence, for one posterior sample x.

        ``u_var``: the variances Υ_{t-1} of the posterior u_{t-1} is the mean of; the u-term is
        then the expectation over it, -log p̂(ν | x) + ½ tr(Σ_u(x)^{-1} Υ_{t-1})."""
        dist = self.u_dist(x)
        log_pu = dist.log_prob(u_prev)
        nll_u = -(log_pu.sum(-1) if log_pu.dim() == u_prev.dim() else log_pu)
        if u_var is not None:
            if isinstance(dist, MultivariateNormal):  # ‖L⁻¹ diag(√Υ)‖²_F, Σ_u = L Lᵀ
                W = torch.linalg.solve_triangular(dist.scale_tril, torch.diag_embed(u_var.sqrt()),
                                                  upper=False)
                nll_u = nll_u + 0.5 * W.pow(2).sum((-2, -1))
            else:
                nll_u = nll_u + 0.5 * (u_var / dist.scale.pow(2)).sum(-1)
        kl = prior_kl(nu, std).sum(-1)
        return kl, nll_u, self._nll_y(y_t, x)

    def _noise(self, shape: tuple[int, ...], like: torch.Tensor,
               generator: torch.Generator | None) -> torch.Tensor:
        """ε ~ N(0, I), drawn on the generator's device (the model's, or the CPU)."""
        eps = torch.randn(shape, generator=generator, dtype=like.dtype,
                          device=_gen_device(generator, like.device))
        return eps.to(like.device)

    def score(self, y_t: torch.Tensor, u_prev: torch.Tensor, eps: torch.Tensor,
              u_var: torch.Tensor | None = None) -> StepOutput:
        """Score one step (or T steps at once: y_t (T, B, n), u_prev (T, B, L)) with given
        noise eps ~ N(0, I) for the reparameterised sample; u_prev is used as given (``u_var``:
        the posterior variances behind it, scored only under ``u_uncertain``)."""
        nu, logvar = self.encode(y_t, u_prev)
        if not torch.isfinite(nu).all():
            raise FloatingPointError("posterior mean ν is not finite")
        std = torch.exp(0.5 * logvar)
        x = nu + std * eps  # reparameterised sample of q(x_t | u_{t-1}, y_t)
        if not getattr(self.config, "u_uncertain", False):
            u_var = None
        kl, nll_u, nll_y = self._terms(y_t, u_prev, x, nu, std, u_var)
        u = nu if self.config.u_mode == "mean" else x
        if getattr(self.config, "beta_vae", False):  # rVAE-β: β KL (+ free bits)
            loss = self._kl_term(kl, nu, std) + nll_u + nll_y
        else:  # the negative ELBO
            loss = kl + nll_u + nll_y
        return StepOutput(u, loss, nu, logvar, kl, nll_u, nll_y)

    def step(self, y_t: torch.Tensor, u_prev: torch.Tensor,
             generator: torch.Generator | None = None) -> StepOutput:
        """One time step: encode, sample x_t (reparameterised), score the joint (u_{t-1}, y_t).

        loss = -E_q[log p̂(u_{t-1} | x) + log p̂(y_t | x)] + KL(q(x_t | ·) ‖ N(0, I)), one sample.
        """
        if not self.config.bptt:
            u_prev = u_prev.detach()  # the temporally local rule: u_{t-1} is data
        return self.score(y_t, u_prev, self._noise(u_prev.shape, u_prev, generator))

    @torch.no_grad()
    def start_state(self, y_1: torch.Tensor) -> torch.Tensor:
        """u_0 for filtering from scratch: the fixed point of u = ν(y_1, u) (``warm_start`` steps).

        The rEFH starts from u_0 = 0, which adds nothing to its hidden input: no information
        (Sources §5.5). In a VAE latent space 0 is a definite state (the prior mean, some position),
        and u_0 = 0 makes the first steps pull towards it. Iterating the encoder on y_1 alone
        gives the state consistent with y_1 as its own past: about the static estimate, from
        y_1 only (causal). ``warm_start=0`` keeps u_0 = 0.
        """
        u = self.initial_state(y_1.shape[0])
        for _ in range(self.config.warm_start):
            u, _ = self.encode(y_1, u)
        return u

    @torch.no_grad()
    def filter(self, y: torch.Tensor, u0: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior means ν_t over y (T, B, n_obs) with u_{t-1} = ν_{t-1}: (T, B, n_latent).

        ``u0=None`` starts from :meth:`start_state` of y_1.
        """
        self.check_y(y)
        u = self.start_state(y[0]) if u0 is None else u0
        h = self.rec_y(self._features(y))  # the y-trunk does not depend on u: all steps at once
        out = []
        for t in range(y.shape[0]):
            u, _ = self._head(h[t], u)
            out.append(u)
        return torch.stack(out)

    @torch.no_grad()
    def reconstruct(self, u: torch.Tensor) -> torch.Tensor:
        """E[y_t | x_t = ν_t]: the decoder's mean observation (rates, for the CoM readout).

        Multinomial: the response shape softmax(η), i.e. E[y_t | x_t, Σy_t = 1] (the CoM is
        scale-free).
        """
        eta = self.gen_y(u)
        c = self.config
        if c.likelihood == "poisson":
            return torch.exp(eta.clamp(max=20.0))
        if c.likelihood == "multinomial":
            return torch.softmax(eta, dim=-1)
        return eta if c.likelihood == "gaussian" else torch.sigmoid(eta)

    def predict_latent(self, u_prev: torch.Tensor, n_steps: int = 100,
                       lr: float = 0.05) -> torch.Tensor:
        """The mode of the generative model's p̂(x_t | u_{t-1}) ∝ p̂(u_{t-1} | x_t) p̂(x_t).

        The rVAE has this distribution only implicitly (its decoders map x to u, not u to x):
        find x by ``n_steps`` of Adam on -log p̂(u | x) - log p̂(x), from x = u_{t-1} (the
        previous posterior mean, in the same latent space). Rows are independent. The TVAE
        overrides this with the mean of its explicit prior p̂(x_t | u_{t-1}).
        """
        u = u_prev.detach()
        x = u.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        with torch.enable_grad():
            for _ in range(n_steps):
                opt.zero_grad(set_to_none=True)
                log_pu = self.u_dist(x).log_prob(u)
                log_pu = log_pu.sum(-1) if log_pu.dim() == u.dim() else log_pu
                (-(log_pu - 0.5 * x.pow(2).sum(-1))).sum().backward(inputs=[x])
                opt.step()
        return x.detach()

    @torch.no_grad()
    def predict_next(self, u_prev: torch.Tensor, n_gibbs: int = 25,
                     generator: torch.Generator | None = None, *,
                     y_init: torch.Tensor | None = None,
                     method: str | None = None) -> torch.Tensor:
        """One-step prediction of y_t from u_{t-1} (the VAE row of Sources §9.6's protocol).

        ``method="map"`` (the default): E[y_t | x*] at the mode x* of p̂(x_t | u_{t-1})
        (:meth:`predict_latent`): what the generative model expects next given the past alone.
        ``method="gibbs"``: the literal analogue of the harmoniums' clamped chain, alternating
        the decoder p̂(y | x) (means: the encoder never saw binary samples of soft frames) and
        the encoder q(x | u, y) ``n_gibbs`` times from a noise frame (or from ``y_init``, a
        diagnostic), with the mean-field readout x̄ = ν(u, y), ν̄ = ν(u, E[y | x̄]),
        prediction E[y | ν̄]. With a frame of hundreds of pixels q leans on y, and the chain's
        steps do not improve on the readout of its start frame (the bouncing-balls chapter
        measures it), so it is not the default. u_prev: (B, n_latent); returns (B, n_obs).
        """
        method = "map" if method is None else method
        self.check_state(u_prev)
        check_int("n_gibbs", n_gibbs, 0)
        if method not in ("map", "gibbs"):
            raise ValueError(f"method must be 'map' or 'gibbs', got {method!r}")
        if method == "map":
            if y_init is not None:
                raise ValueError("y_init starts a Gibbs chain: it needs method='gibbs'")
            return self.reconstruct(self.predict_latent(u_prev))
        B, n, dev = u_prev.shape[0], self.config.n_latent, u_prev.device
        if y_init is not None:
            if y_init.shape != (B, self.config.n_obs):
                raise ValueError(f"y_init must have shape ({B}, {self.config.n_obs}), "
                                 f"got {tuple(y_init.shape)}")
            y = y_init.to(u_prev.dtype)
        elif self.config.likelihood == "bernoulli":
            y = torch.rand(B, self.config.n_obs, generator=generator, dtype=u_prev.dtype,
                           device=_gen_device(generator, dev)).to(dev)
        else:
            y = self.reconstruct(torch.randn(B, n, generator=generator, dtype=u_prev.dtype,
                                             device=_gen_device(generator, dev)).to(dev))
        for _ in range(n_gibbs):
            nu, logvar = self.encode(y, u_prev)
            x = nu + torch.exp(0.5 * logvar) * self._noise(nu.shape, nu, generator)
            y = self.reconstruct(x)
        x_mean, _ = self.encode(y, u_prev)  # the final x, as a mean
        nu_bar, _ = self.encode(self.reconstruct(x_mean), u_prev)
        return self.reconstruct(nu_bar)

    def window(self, y: torch.Tensor, u0: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[StepOutput, torch.Tensor]:
        """Score a window y (T, B, n) from u0: per-step outputs stacked to (T, B, …), last u.

        The noise of all T steps is drawn at once, so both rules see the same samples. With
        ``bptt=False`` the u's are first computed without a graph (they are data to the loss)
        and all T steps are then scored in one batched pass: the same values and gradients as
        the step-by-step loop with u detached, much faster. With ``bptt=True`` the loop keeps
        the graph through every u_{t-1}.
        """
        self.check_y(y)
        self.check_state(u0, y.shape[1], "u0")
        eps = self._noise((y.shape[0], *u0.shape), u0, generator)
        if self.config.bptt:
            outs, u, var = [], u0, torch.zeros_like(u0)
            for t in range(y.shape[0]):
                out = self.score(y[t], u, eps[t], var)
                outs.append(out)
                u, var = out.u, out.logvar.exp()
            return StepOutput(*(torch.stack(f) for f in zip(*outs, strict=True))), u
        with torch.no_grad():
            u, us = u0.detach(), []
            var, vs = torch.zeros_like(u), []  # u_0 is exact
            h = self.rec_y(self._features(y))
            for t in range(y.shape[0]):
                us.append(u)
                vs.append(var)
                nu, logvar = self._head(h[t], u)
                var = logvar.exp()
                u = nu if self.config.u_mode == "mean" else nu + torch.exp(0.5 * logvar) * eps[t]
        return self.score(y, torch.stack(us), eps, torch.stack(vs)), u

    def sequence_loss(self, y: torch.Tensor, u0: torch.Tensor,
                      generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed negative ELBO over a window y (T, B, n), mean over B; and the last u.

        With ``bptt=False`` the graph is cut at every u_{t-1}, so ``backward`` gives exactly the
        sum of per-step local gradients; with ``bptt=True`` it is backprop through time.
        """
        out, u = self.window(y, u0, generator)
        return out.loss.sum(0).mean(), u

    def update(self, y: torch.Tensor, u0: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> Update:
        """ONE training step on the window y (T, B, n) from u0 (None: u_0 = 0): back-propagates
        :meth:`sequence_loss` into ``p.grad`` (the rVAE's local rule, or BPTT through the
        window with ``bptt=True``) and returns the last state, detached, and the loss."""
        u0 = self.initial_state(y.shape[1]) if u0 is None else u0
        loss, u = self.sequence_loss(y, u0, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()}")
        loss.backward()
        if hasattr(self, "n_updates"):
            self.n_updates += 1
        return Update(u.detach(), loss.detach())

    def parameter_groups(self) -> dict[str, tuple[str, ...]]:
        """``encoder`` (the recognition model, ``rec_*``: the only parameters u_{t-1} depends
        on, so the only ones BPTT can change) and ``decoder`` (the generative model)."""
        names = [n for n, p in self.named_parameters() if p.requires_grad]
        return {"encoder": ("rec_",),
                "decoder": tuple(n for n in names if not n.startswith("rec_"))}

    def local_and_bptt_gradients(self, y: torch.Tensor, u0: torch.Tensor | None = None,
                                 generator: torch.Generator | None = None
                                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(local, BPTT) gradients of the summed negative ELBO over y (T, B, n_obs), batch mean.

        Same values, same noise (drawn once from ``generator``, as :meth:`window` draws it):
        both rules run the same forward recursion from u0 (default u_0 = 0), so every loss
        term has the same value; the local gradient back-propagates with u_{t-1} detached (the
        rVAE), the BPTT gradient through u_{t-1} (rVAE-BPTT). ``config.bptt`` is ignored.
        Order: ``named_parameters()`` (trainable ones).
        """
        y = y.to(next(self.parameters()).dtype)
        self.check_y(y)
        T, B, _ = y.shape
        u0 = self.initial_state(B) if u0 is None else u0
        self.check_state(u0, B, "u0")
        eps = self._noise((T, B, self.config.n_latent), u0, generator)
        params = [p for p in self.parameters() if p.requires_grad]
        grads = []
        for detach in (True, False):
            u, var, loss = u0.detach(), torch.zeros_like(u0), 0.0
            for t in range(T):
                out = self.score(y[t], u.detach() if detach else u, eps[t],
                                 var.detach() if detach else var)
                loss = loss + out.loss.mean()
                u, var = out.u, out.logvar.exp()
            grads.append(list(torch.autograd.grad(loss, params, allow_unused=True)))
        local, bptt = ([torch.zeros_like(p) if g is None else g
                        for g, p in zip(gs, params, strict=True)] for gs in grads)
        return local, bptt


def _gen_device(generator: torch.Generator | None, default: torch.device) -> torch.device:
    """Where a generator draws: its own device (random draws follow the generator)."""
    return generator.device if generator is not None else default

"""What rEFH, TRBM and RTRBM share: a harmonium over [u_{t-1}, y_t] and its mean-field filter.

Spec §5.2, §5.5, §6.2. All three use one EFH whose visible groups are u_{t-1} (Bernoulli,
n_hidden units: the previous hidden means) and y_t (``obs_type``), and filter with means:
u_t = σ(u_{t-1} W_u + y_t W_y + b_x), u_0 = 0. They differ only in how they learn
(``update``): see :mod:`tlr.models.refh`, :mod:`tlr.models.trbm`, :mod:`tlr.models.rtrbm`.
"""

from __future__ import annotations

import torch
from torch import nn

from tlr.models.efh import EFH, UNIT_TYPES, bernoulli, unit_sample

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

    @torch.no_grad()
    def static_update(self, y: torch.Tensor, n_cd_steps: int,
                      generator: torch.Generator | None = None) -> None:
        """Static pretraining (spec §9.5, ``Npretrain``): CD-k of a non-recurrent harmonium on
        the frames of y (T, B, n_obs), u clamped at 0 (so W_u and b_u get no gradient)."""
        self._check_y(y)
        frames = y.reshape(-1, y.shape[-1])
        u0 = self.initial_state(frames.shape[0])
        stats = self.efh.contrastive_divergence([u0, frames], n_cd_steps, generator,
                                                clamped=(0,))
        self.efh.set_gradients(self.efh.cd_gradients(stats))

    @torch.no_grad()
    def predict_next(self, u_prev: torch.Tensor, n_gibbs: int = 25,
                     generator: torch.Generator | None = None,
                     y_init: torch.Tensor | None = None) -> torch.Tensor:
        """One-step prediction of y_t from u_{t-1} "with clamped Gibbs sampling" (spec §9.6).

        Makin's ``testEFHNextFrameError.m``: start the frame from noise, y ~ U(0, 1) (Bernoulli
        visibles; other types start from the mean at a random hidden state), sample
        x ~ p(x | u, y), run ``n_gibbs`` Gibbs steps with u_{t-1} clamped (y ~ p(y | x), then
        x ~ p(x | u, y)), and read out by mean field: ȳ = E[y | x̄], z̄ = E[x | u, ȳ],
        prediction E[y | z̄]. u_prev: (B, n_hidden); returns (B, n_obs).

        ``y_init`` (B, n_obs), not in the spec: start the chain from this frame instead of
        noise (a diagnostic: with y_{t-1} it separates what the model knows about the next
        frame from how far its chain can travel in ``n_gibbs`` steps).
        """
        if u_prev.dim() != 2 or u_prev.shape[-1] != self.config.n_hidden:
            raise ValueError(f"u_prev must have shape (B, {self.config.n_hidden}), "
                             f"got {tuple(u_prev.shape)}")
        if isinstance(n_gibbs, bool) or not isinstance(n_gibbs, int) or n_gibbs < 0:
            raise ValueError(f"n_gibbs must be an int >= 0, got {n_gibbs!r}")
        efh, B = self.efh, u_prev.shape[0]
        if y_init is not None:
            if y_init.shape != (B, self.config.n_obs):
                raise ValueError(f"y_init must have shape ({B}, {self.config.n_obs}), "
                                 f"got {tuple(y_init.shape)}")
            y = y_init.to(u_prev.dtype)
        elif self.config.obs_type == "bernoulli":
            y = torch.rand(B, self.config.n_obs, generator=generator, dtype=u_prev.dtype)
        else:
            half = torch.full((B, self.config.n_hidden), 0.5, dtype=u_prev.dtype)
            y = self.reconstruct(bernoulli(half, generator))
        x = bernoulli(efh.hidden_mean([u_prev, y]), generator)
        for _ in range(n_gibbs):
            y = unit_sample(self.config.obs_type, efh.visible_eta(x, 1), generator)
            x = bernoulli(efh.hidden_mean([u_prev, y]), generator)
        x_mean = efh.hidden_mean([u_prev, y])  # the final x, "returned as means"
        y_bar = self.reconstruct(x_mean)
        z_bar = efh.hidden_mean([u_prev, y_bar])
        return self.reconstruct(z_bar)

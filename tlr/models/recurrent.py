"""What rEFH, TRBM and RTRBM share: a harmonium over [u_{t-1}, y_t] and its mean-field filter.

Sources §5.2, §5.5, §6.2. All three use one EFH whose visible groups are u_{t-1} (Bernoulli,
n_hidden units: the previous hidden means) and y_t (``obs_type``), and filter with means:
u_t = σ(u_{t-1} W_u + y_t W_y + b_x), u_0 = 0. They differ only in how they learn
(``update``): see :mod:`tlr.models.refh`, :mod:`tlr.models.trbm`, :mod:`tlr.models.rtrbm`.
"""

from __future__ import annotations

import torch

from tlr.models.base import RecurrentModel, check_int
from tlr.models.efh import EFH, UNIT_TYPES, CDStats, bernoulli, unit_sample

__all__ = ["GIBBS_DTYPES", "check_config", "RecurrentHarmonium"]


def check_config(config) -> None:
    """Validate the fields every recurrent-harmonium config has (called in ``__post_init__``)."""
    if config.obs_type not in UNIT_TYPES:
        raise ValueError(f"obs_type must be one of {UNIT_TYPES}, got {config.obs_type!r}")
    for name in ("n_obs", "n_hidden", "n_cd_steps"):
        check_int(name, getattr(config, name))
    if getattr(config, "gibbs_dtype", "float32") not in GIBBS_DTYPES:
        raise ValueError(f"gibbs_dtype must be one of {GIBBS_DTYPES}, got "
                         f"{config.gibbs_dtype!r}")


# Precisions of the training chains' matrix products (EFH.contrastive_divergence's dtype):
# float32, the parameters' own, or bfloat16, which CPUs with AVX-512 BF16 and GPUs multiply
# several times faster (benchmarks/harmonium_update.py measures it).
GIBBS_DTYPES = ("float32", "bfloat16")


class RecurrentHarmonium(RecurrentModel):
    """Visible groups: 0 = u_{t-1} (Bernoulli, n_hidden), 1 = y_t (``config.obs_type``)."""

    name = "recurrent harmonium"

    def __init__(self, config, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = c = config
        self.efh = EFH([("bernoulli", c.n_hidden), (c.obs_type, c.n_obs)], c.n_hidden,
                       init_std=c.init_std, generator=generator)

    @property
    def gibbs_dtype(self) -> torch.dtype:
        """The precision of the training chains' products (``config.gibbs_dtype``)."""
        return getattr(torch, getattr(self.config, "gibbs_dtype", "float32"))

    def initial_state(self, batch: int) -> torch.Tensor:
        """u_0 = 0 (``rcrnt0`` in EFH.m)."""
        return torch.zeros(batch, self.config.n_hidden, device=self.efh.b_hid.device)

    @torch.no_grad()
    def filter(self, y: torch.Tensor, u0: torch.Tensor | None = None) -> torch.Tensor:
        """Mean-field filter over y (T, B, n_obs); returns u (T, B, n_hidden) (Sources §5.5):
        u_t = E[x_t | u_{t-1}, y_t] = σ(u_{t-1} W_u + y_t W_y + b_x)."""
        self.check_y(y)
        u = self.initial_state(y.shape[1]) if u0 is None else u0
        out = []
        for t in range(y.shape[0]):
            u = self.efh.hidden_mean([u, y[t]])
            out.append(u)
        return torch.stack(out)

    @torch.no_grad()
    def reconstruct(self, u: torch.Tensor) -> torch.Tensor:
        """E[y_t | x̄_t]: the mean observation implied by the hidden means (Sources §5.5)."""
        return self.efh.visible_mean(u, 1)

    def makin_groups(self) -> list[torch.nn.Parameter]:
        """(W_y, W_u, b_x, b_y, b_u): observation weights, recurrent weights, hidden biases,
        observation biases, recurrent biases (the order of ``OptimConfig.m0``)."""
        e = self.efh
        return [e.W[1], e.W[0], e.b_hid, e.b_vis[1], e.b_vis[0]]

    def parameter_groups(self) -> dict[str, tuple[str, ...]]:
        """One group per parameter, named as on the poster: W_u, b_u act on u_{t-1} (visible
        group 0), W_y, b_y on y_t (group 1), b_x is the hidden bias."""
        return {"W_u": ("efh.W.0",), "W_y": ("efh.W.1",), "b_x": ("efh.b_hid",),
                "b_u": ("efh.b_vis.0",), "b_y": ("efh.b_vis.1",)}

    @torch.no_grad()
    def window_cd(self, y: torch.Tensor, u0: torch.Tensor | None,
                  generator: torch.Generator | None,
                  clamped: tuple[int, ...] = ()) -> tuple[torch.Tensor, CDStats]:
        """The states of a window and ONE CD-k run on all its T·B pairs [u_{t-1}, y_t].

        u_t = filter(y) with the current weights (from u0, default u_0 = 0), u_{t-1} = [u0,
        u_1, ..., u_{T-1}]; groups in ``clamped`` stay at their data in the negative phase
        (``(0,)``: u_{t-1} clamped, the TRBM; ``()``: both reconstructed, the rEFH).
        Returns (u (T, B, H), the CD statistics).
        """
        self.check_y(y)
        T, B, n = y.shape
        if u0 is not None:
            self.check_state(u0, B, "u0")
        start = self.initial_state(B) if u0 is None else u0
        if T == 1:  # online training: no filter pass; u_1 is the positive phase's x̄⁺
            stats = self.efh.contrastive_divergence([start, y[0]], self.config.n_cd_steps,
                                                    generator, clamped=clamped,
                                                    dtype=self.gibbs_dtype)
            return stats.x_mean_pos[None], stats
        u = self.filter(y, u0)
        u_prev = torch.cat([start[None], u[:-1]])
        stats = self.efh.contrastive_divergence([u_prev.reshape(T * B, -1), y.reshape(T * B, n)],
                                                self.config.n_cd_steps, generator,
                                                clamped=clamped, dtype=self.gibbs_dtype)
        return u, stats

    @torch.no_grad()
    def pretrain_update(self, y: torch.Tensor, n_cd_steps: int,
                        generator: torch.Generator | None = None) -> None:
        """Static pretraining (Sources §9.5, ``Npretrain``): CD-k of a non-recurrent harmonium
        on the frames of y (T, B, n_obs), u clamped at 0 (so W_u and b_u get no gradient)."""
        self.check_y(y)
        frames = y.reshape(-1, y.shape[-1])
        u0 = self.initial_state(frames.shape[0])
        stats = self.efh.contrastive_divergence([u0, frames], n_cd_steps, generator,
                                                clamped=(0,), dtype=self.gibbs_dtype)
        self.efh.set_gradients(self.efh.cd_gradients(stats))

    @torch.no_grad()
    def predict_next(self, u_prev: torch.Tensor, n_gibbs: int = 25,
                     generator: torch.Generator | None = None, *,
                     y_init: torch.Tensor | None = None,
                     method: str | None = None) -> torch.Tensor:
        """One-step prediction of y_t from u_{t-1} "with clamped Gibbs sampling" (Sources §9.6).

        Makin's ``testEFHNextFrameError.m``: start the frame from noise, y ~ U(0, 1) (Bernoulli
        visibles; other types start from the mean at a random hidden state), sample
        x ~ p(x | u, y), run ``n_gibbs`` Gibbs steps with u_{t-1} clamped (y ~ p(y | x), then
        x ~ p(x | u, y)), and read out by mean field: ȳ = E[y | x̄], z̄ = E[x | u, ȳ],
        prediction E[y | z̄]. u_prev: (B, n_hidden); returns (B, n_obs).

        ``y_init`` (B, n_obs), a diagnostic beside the protocol: start the chain from this
        frame instead of noise (with y_{t-1} it separates what the model knows about the next
        frame from how far its chain can travel in ``n_gibbs`` steps). ``method``: only
        ``"gibbs"`` (the default) exists for the harmoniums.
        """
        if method not in (None, "gibbs"):
            raise ValueError(f"method must be 'gibbs' for {self.name}, got {method!r}")
        self.check_state(u_prev)
        check_int("n_gibbs", n_gibbs, 0)
        efh, B, c = self.efh, u_prev.shape[0], self.config
        if y_init is not None:
            if y_init.shape != (B, c.n_obs):
                raise ValueError(f"y_init must have shape ({B}, {c.n_obs}), "
                                 f"got {tuple(y_init.shape)}")
            y = y_init.to(u_prev.dtype)
        elif c.obs_type == "bernoulli":
            y = torch.rand(B, c.n_obs, generator=generator, dtype=u_prev.dtype,
                           device=u_prev.device)
        else:
            half = torch.full((B, c.n_hidden), 0.5, dtype=u_prev.dtype, device=u_prev.device)
            y = self.reconstruct(bernoulli(half, generator))
        x = bernoulli(efh.hidden_mean([u_prev, y]), generator)
        for _ in range(n_gibbs):
            y = unit_sample(c.obs_type, efh.visible_eta(x, 1), generator)
            x = bernoulli(efh.hidden_mean([u_prev, y]), generator)
        x_mean = efh.hidden_mean([u_prev, y])  # the final x, "returned as means"
        y_bar = self.reconstruct(x_mean)
        z_bar = efh.hidden_mean([u_prev, y_bar])
        return self.reconstruct(z_bar)

"""Exponential-family harmonium (EFH): the shared core of rEFH, TRBM and RTRBM.

Welling, Rosen-Zvi & Hinton (2005); Sources §5.1-5.3. A harmonium is a bipartite undirected model
between visible units v (several *groups*, each of one exponential-family type) and binary
hidden units x, with energy

    E(v, x) = -Σ_g v_gᵀ W_g x - Σ_g b_gᵀ v_g - b_xᵀ x - Σ_g log h_g(v_g),

where h_g is the base measure of group g (1 for Bernoulli, 1/v! for Poisson, N(0, 1) for
unit-variance Gaussian). Both conditionals factorise:

    p(x | v) = Bern(σ(Σ_g v_g W_g + b_x)),     p(v_g | x) = ExpFam_g(W_g x + b_g).

Nothing here is specific to a data set: PPC uses a Poisson group, images a Bernoulli group,
and the recurrent models add a Bernoulli group for u_{t-1}. Layout: batch-first (B, units).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from tlr.validation import check_int

__all__ = ["UNIT_TYPES", "bernoulli", "unit_mean", "unit_sample", "CDStats", "EFH"]

UNIT_TYPES = ("bernoulli", "poisson", "gaussian")
_MAX_POISSON_ETA = 30.0  # exp(30) ≈ 1e13 expected counts: past this the model has diverged


def _check_kind(kind: str) -> None:
    if kind not in UNIT_TYPES:
        raise ValueError(f"unsupported unit type {kind!r}; supported: {', '.join(UNIT_TYPES)}")


def unit_mean(kind: str, eta: torch.Tensor) -> torch.Tensor:
    """E[v | η]: σ(η) (Bernoulli), exp(η) (Poisson), η (unit-variance Gaussian)."""
    _check_kind(kind)
    if kind == "bernoulli":
        return torch.sigmoid(eta)
    if kind == "poisson":
        return torch.exp(eta)
    return eta


def bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """x ~ Bern(p) as 1[U < p], U ~ U[0, 1): exact, and ~3x faster than ``torch.bernoulli``
    with an explicit generator on CPU."""
    return (torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device) < p).to(
        p.dtype)


def unit_sample(kind: str, eta: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A sample of v ~ p(v | η) for one unit type."""
    _check_kind(kind)
    if kind == "bernoulli":
        return bernoulli(torch.sigmoid(eta), generator)
    if kind == "poisson":
        if eta.max() > _MAX_POISSON_ETA:
            raise FloatingPointError(f"Poisson natural parameter {eta.max().item():.3g} exceeds "
                                     f"{_MAX_POISSON_ETA}: the model has diverged")
        return torch.poisson(torch.exp(eta), generator=generator)
    return eta + torch.randn(eta.shape, generator=generator, dtype=eta.dtype, device=eta.device)


def _log_base(kind: str, v: torch.Tensor) -> torch.Tensor:
    """log h(v), summed over the last axis."""
    if kind == "bernoulli":
        return v.new_zeros(v.shape[:-1])
    if kind == "poisson":
        return -torch.lgamma(v + 1).sum(-1)
    return (-0.5 * v**2).sum(-1) - 0.5 * v.shape[-1] * math.log(2 * math.pi)


class CDStats(NamedTuple):
    """What one contrastive-divergence step saw (batch-first)."""

    v_pos: list[torch.Tensor]  # data, per visible group
    x_pos: torch.Tensor  # sampled hidden states of the positive phase
    x_mean_pos: torch.Tensor  # their means σ(η_x)
    v_neg: list[torch.Tensor]  # reconstruction after k Gibbs steps, per group
    x_mean_neg: torch.Tensor  # hidden means of the reconstruction


class EFH(nn.Module):
    """A harmonium with visible groups ``[(kind, size), ...]`` and ``n_hidden`` Bernoulli units.

    Parameters are one weight matrix and one bias per visible group (``W[g]``: (size_g,
    n_hidden), ``b_vis[g]``) and the hidden bias ``b_hid``; they start at N(0, init_std²) and
    0 (``reinitializeEFH.m``, Sources §5.2). Per-group parameters let optimisers give each group
    its own learning rate (Makin's recurrent rows learn 16x faster, Sources §5.4).
    """

    def __init__(
        self,
        groups: Sequence[tuple[str, int]],
        n_hidden: int,
        init_std: float = 0.005,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not groups:
            raise ValueError("need at least one visible group")
        for kind, size in groups:
            _check_kind(kind)
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"group size must be a positive int, got {size!r} for {kind!r}")
        check_int("n_hidden", n_hidden)
        self.kinds = [kind for kind, _ in groups]
        self.sizes = [size for _, size in groups]
        self.n_hidden = n_hidden
        device = None if generator is None else generator.device  # a CUDA generator: on CUDA
        self.W = nn.ParameterList(
            nn.Parameter(init_std * torch.randn(size, n_hidden, generator=generator,
                                                device=device))
            for size in self.sizes
        )
        self.b_vis = nn.ParameterList(nn.Parameter(torch.zeros(size, device=device))
                                      for size in self.sizes)
        self.b_hid = nn.Parameter(torch.zeros(n_hidden, device=device))

    # ----------------------------------------------------------------- conditionals
    def check_visible(self, v: Sequence[torch.Tensor]) -> None:
        """Raise a clear error unless ``v`` is one (B, size_g) tensor per group."""
        if len(v) != len(self.sizes):
            raise ValueError(f"expected {len(self.sizes)} visible groups, got {len(v)}")
        for g, (vg, size) in enumerate(zip(v, self.sizes, strict=True)):
            if not torch.is_tensor(vg) or vg.dim() != 2 or vg.shape[1] != size:
                got = tuple(vg.shape) if torch.is_tensor(vg) else type(vg).__name__
                raise ValueError(f"visible group {g} must have shape (B, {size}), got {got}")

    def hidden_eta(self, v: Sequence[torch.Tensor]) -> torch.Tensor:
        """η_x = Σ_g v_g W_g + b_x, shape (B, n_hidden)."""
        eta = self.b_hid
        for vg, Wg in zip(v, self.W, strict=True):
            eta = eta + vg @ Wg
        return eta

    def hidden_mean(self, v: Sequence[torch.Tensor]) -> torch.Tensor:
        """E[x | v] = σ(η_x)."""
        return torch.sigmoid(self.hidden_eta(v))

    def visible_eta(self, x: torch.Tensor, group: int) -> torch.Tensor:
        """η_g = x W_gᵀ + b_g, shape (B, size_g)."""
        return x @ self.W[group].T + self.b_vis[group]

    def visible_mean(self, x: torch.Tensor, group: int) -> torch.Tensor:
        """E[v_g | x]."""
        return unit_mean(self.kinds[group], self.visible_eta(x, group))

    def sample_visible(
        self, x: torch.Tensor, generator: torch.Generator | None,
        clamped: dict[int, torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """v ~ p(v | x), group by group; groups in ``clamped`` keep the given values."""
        clamped = clamped or {}
        return [clamped[g] if g in clamped else unit_sample(k, x @ W.T + b, generator)
                for g, (k, W, b) in enumerate(zip(self.kinds, self.W, self.b_vis, strict=True))]

    # ----------------------------------------------------------------- energy
    def free_energy(self, v: Sequence[torch.Tensor]) -> torch.Tensor:
        """F(v) = -log Σ_x exp(-E(v, x)) = -Σ_g (b_gᵀ v_g + log h_g(v_g)) - Σ_j softplus(η_x,j)."""
        self.check_visible(v)
        F_v = -F.softplus(self.hidden_eta(v)).sum(-1)
        for vg, bg, kind in zip(v, self.b_vis, self.kinds, strict=True):
            F_v = F_v - vg @ bg - _log_base(kind, vg)
        return F_v

    def energy(self, v: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """E(v, x) (Sources §5.1), shape (B,)."""
        self.check_visible(v)
        E = -(x * self.b_hid).sum(-1)
        for vg, Wg, bg, kind in zip(v, self.W, self.b_vis, self.kinds, strict=True):
            E = E - ((vg @ Wg) * x).sum(-1) - vg @ bg - _log_base(kind, vg)
        return E

    # ----------------------------------------------------------------- learning
    @torch.no_grad()
    def contrastive_divergence(
        self,
        v_pos: Sequence[torch.Tensor],
        k: int,
        generator: torch.Generator | None,
        clamped: Sequence[int] = (),
        hidden_bias: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> CDStats:
        """CD-k from the data ``v_pos`` (Sources §5.3, ``CDStepper.m``).

        Positive phase: x̄⁺ = σ(η_x(v⁺)), x⁺ ~ Bern(x̄⁺). Then k Gibbs steps starting from x⁺:
        v⁻ ~ p(v | x) (groups in ``clamped`` stay at their data), x̄⁻ = σ(η_x(v⁻)),
        x ~ Bern(x̄⁻). Returns the statistics; :meth:`cd_gradients` turns them into gradients.
        ``hidden_bias`` is added to η_x (a dynamic bias, e.g. RTRBM's initial-state bias).

        ``dtype`` (e.g. ``torch.bfloat16``): the chain's matrix products of free groups run in
        this precision, on a copy of the weights; biases, sigmoids, samples, the returned
        statistics and hence the gradients stay in the parameters' dtype. None (or the
        parameters' dtype): every product in the parameters' dtype.
        """
        check_int("k (CD steps)", k)
        self.check_visible(v_pos)
        # Clamped groups add the same input at every Gibbs step: compute it once.
        fixed = self.b_hid if hidden_bias is None else self.b_hid + hidden_bias
        for g in clamped:
            fixed = fixed + v_pos[g] @ self.W[g]
        free = [g for g in range(len(self.sizes)) if g not in clamped]

        low = dtype is not None and dtype != self.b_hid.dtype
        W = [w.to(dtype) for w in self.W] if low else list(self.W)

        def product(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            """a @ w in the chain's precision, returned in the parameters' dtype."""
            return (a.to(dtype) @ w).to(fixed.dtype) if low else a @ w

        def hidden_mean(v: Sequence[torch.Tensor]) -> torch.Tensor:
            eta = fixed
            for g in free:
                eta = eta + product(v[g], W[g])
            return torch.sigmoid(eta)

        def sample_visible(x: torch.Tensor) -> list[torch.Tensor]:  # as self.sample_visible
            return [keep[g] if g in keep else unit_sample(kind, product(x, W[g].T) + b, generator)
                    for g, (kind, b) in enumerate(zip(self.kinds, self.b_vis, strict=True))]

        x_mean_pos = hidden_mean(v_pos)
        x_pos = bernoulli(x_mean_pos, generator)
        keep = {g: v_pos[g] for g in clamped}
        x = x_pos
        for step in range(k):
            v_neg = sample_visible(x)
            x_mean_neg = hidden_mean(v_neg)
            if step < k - 1:  # the last hidden sample is never used (means are returned)
                x = bernoulli(x_mean_neg, generator)
        return CDStats(list(v_pos), x_pos, x_mean_pos, v_neg, x_mean_neg)

    @torch.no_grad()
    def cd_gradients(self, s: CDStats) -> list[torch.Tensor]:
        """Descent directions (minus the CD estimate of ∂ log p / ∂θ), one per parameter.

        ∂/∂W_g ≈ ⟨v_g x⟩⁺ - ⟨v_g x̄⟩⁻, ∂/∂b_g ≈ ⟨v_g⟩⁺ - ⟨v_g⟩⁻, ∂/∂b_x ≈ ⟨x⟩⁺ - ⟨x̄⟩⁻, with
        the positive phase using sampled x⁺ and the negative phase the means x̄⁻ (Sources §5.3),
        averaged over the batch. Order: W..., b_vis..., b_hid (see :meth:`ordered_parameters`).
        """
        a = 1.0 / s.x_pos.shape[0]
        gW = [torch.addmm(vn.T @ s.x_mean_neg, vp.T, s.x_pos, beta=a, alpha=-a)
              for vp, vn in zip(s.v_pos, s.v_neg, strict=True)]
        gb = [(vn - vp).mean(0) for vp, vn in zip(s.v_pos, s.v_neg, strict=True)]
        gh = (s.x_mean_neg - s.x_pos).mean(0)
        return [*gW, *gb, gh]

    def ordered_parameters(self) -> list[nn.Parameter]:
        """Parameters in the order of :meth:`cd_gradients`."""
        return [*self.W, *self.b_vis, self.b_hid]

    def set_gradients(self, grads: Sequence[torch.Tensor]) -> None:
        """Hand ``grads`` to the parameters as ``p.grad`` (any ``torch.optim`` optimiser can
        then step). The tensors are adopted, not copied: pass freshly computed ones."""
        for p, g in zip(self.ordered_parameters(), grads, strict=True):
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {tuple(g.shape)} for a parameter of shape "
                                 f"{tuple(p.shape)}")
            p.grad = g.detach()

"""Fitting a linear dynamical system by expectation-maximisation (KF-1 and KF-2).

Sources §4.4 (``tools/EM4LDS.m``, ``fitLDSwithEM.m``): an n-state LDS with constant observation
noise is fit to centre-of-mass observations of training data; the learned parameters are then
run as a Kalman filter on test data. E-step: Kalman filter + RTS smoother (:mod:`.kalman`).
M-step: the closed-form updates of Shumway & Stoffer (1982) / Ghahramani & Hinton (1996).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from tlr.evaluation.ppc import wrap_error
from tlr.filters.kalman import LDSParams, kalman_filter, rts_smoother

__all__ = ["EMResult", "init_lds", "em_step", "fit_lds_em", "unwrap_continuous"]


class EMResult(NamedTuple):
    params: LDSParams
    loglik: list[float]  # log p(y | params_k) per observation, before the k-th M-step
    n_iter: int
    converged: bool


def unwrap_continuous(s: torch.Tensor, period: float, centre: float = 0.0) -> torch.Tensor:
    """Unwrap ring-valued observations (T, B) by continuity in time (phase unwrapping).

    s_1 is placed in [centre - period/2, centre + period/2); each later step picks the image
    s_t + k·period nearest to the previous unwrapped value. Valid when per-step changes are far
    below period/2 (here ≈ 0.04 rad against 1.12 rad). Causal, and uses no ground truth.
    """
    first = wrap_error(s[:1], period, centre)
    d = wrap_error(s.diff(dim=0), period)
    return torch.cat([first, first + d.cumsum(0)], dim=0)


def init_lds(y: torch.Tensor, n_states: int, generator: torch.Generator | None = None) -> LDSParams:
    """A data-scaled random starting point (Makin's EM also starts at random, Sources §4.4).

    C = [1, 0, ...] + small noise, A = 0.99 I + small noise, Q = var(Δy) I, R = var(Δy),
    μ_0 = [mean(y_1), 0, ...], V_0 = var(y) I.
    """
    f64 = dict(dtype=torch.float64)
    m = y.shape[-1]
    dvar = float(y.diff(dim=0).var())
    yvar = float(y.var())
    noise = lambda *shape: 0.01 * torch.randn(*shape, generator=generator, **f64)  # noqa: E731
    C = torch.zeros(m, n_states, **f64)
    C[:, 0] = 1.0
    A = 0.99 * torch.eye(n_states, **f64) + noise(n_states, n_states)
    mu0 = torch.zeros(n_states, **f64)
    mu0[:m] = y[0].mean(0).to(torch.float64)[: min(m, n_states)]
    return LDSParams(
        A=A,
        C=C + noise(m, n_states),
        Q=dvar * torch.eye(n_states, **f64),
        R=dvar * torch.eye(m, **f64),
        init_mean=mu0,
        init_cov=yvar * torch.eye(n_states, **f64),
    )


def em_step(params: LDSParams, y: torch.Tensor) -> tuple[LDSParams, float]:
    """One EM iteration on observations y (T, B, m); returns (new params, loglik per sample).

    With x̂_t = E[z_t], P_t = E[z_t z_tᵀ], P_{t,t-1} = E[z_t z_{t-1}ᵀ] (sums over t and B):
    C = Σ y x̂ᵀ (Σ P_t)⁻¹,  R = (Σ y yᵀ - C Σ x̂ yᵀ)/(TB),
    A = Σ_{t>1} P_{t,t-1} (Σ_{t>1} P_{t-1})⁻¹,  Q = (Σ_{t>1} P_t - A Σ_{t>1} P_{t-1,t})/((T-1)B),
    μ_0 = mean_B x̂_1,  V_0 = mean_B (P_1 - μ_0 μ_0ᵀ).
    """
    T, B, m = y.shape
    y = y.to(torch.float64)
    filt = kalman_filter(params, y)
    sm = rts_smoother(params, filt)
    x = sm.means  # (T, B, n)
    Exx = sm.covs.sum(1) * (B / sm.covs.shape[1]) if sm.covs.shape[1] == 1 else sm.covs.sum(1)
    Exx = Exx + torch.einsum("tbi,tbj->tij", x, x)  # (T, n, n): Σ_B E[z_t z_tᵀ]
    cross = sm.cross_covs.sum(1) * (B / sm.cross_covs.shape[1])
    Ecross = cross + torch.einsum("tbi,tbj->tij", x[1:], x[:-1])  # (T-1, n, n): Σ_B E[z_t z_{t-1}ᵀ]
    S_all = Exx.sum(0)
    S_prev = Exx[:-1].sum(0)
    S_next = Exx[1:].sum(0)
    S_cross = Ecross.sum(0)
    yx = torch.einsum("tbi,tbj->ij", y, x)  # Σ y x̂ᵀ
    yy = torch.einsum("tbi,tbj->ij", y, y)
    C = torch.linalg.solve(S_all, yx.T).T
    R = (yy - C @ yx.T) / (T * B)
    A = torch.linalg.solve(S_prev, S_cross.T).T
    Q = (S_next - A @ S_cross.T) / ((T - 1) * B)
    mu0 = x[0].mean(0)
    V0 = Exx[0] / B - torch.outer(mu0, mu0)
    sym = lambda M: 0.5 * (M + M.T)  # noqa: E731
    new = LDSParams(A=A, C=C, Q=sym(Q), R=sym(R), init_mean=mu0, init_cov=sym(V0))
    return new, float(filt.loglik.sum()) / (T * B)


def fit_lds_em(
    y: torch.Tensor | Callable[[int], torch.Tensor],
    n_states: int,
    n_iter: int = 50,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    init: LDSParams | None = None,
) -> EMResult:
    """Fit an ``n_states`` LDS with constant R by EM (Sources §4.4).

    ``y``: observations (T, B, m), or a callable ``k -> y`` returning fresh training data for
    iteration k (Makin's ``NepochsRenew = 1``; the log-likelihood is then not monotone).
    Stops after ``n_iter`` iterations or when the relative improvement of the log-likelihood
    falls below ``tol``. Raises ``FloatingPointError`` naming the iteration if EM diverges.
    """
    if isinstance(n_states, bool) or not isinstance(n_states, int) or n_states < 1:
        raise ValueError(f"n_states must be a positive int, got {n_states!r}")
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    data = y if callable(y) else (lambda k: y)
    y0 = data(0)
    if not torch.is_tensor(y0) or y0.dim() != 3 or y0.shape[0] < 2:
        got = tuple(y0.shape) if torch.is_tensor(y0) else type(y0).__name__
        raise ValueError(f"y must have shape (T >= 2, B, m), got {got}")
    if not torch.isfinite(y0).all():
        raise ValueError("y contains NaN or Inf")
    if float(y0.to(torch.float64).diff(dim=0).var()) == 0.0:
        raise ValueError("y does not vary over time: EM cannot fit dynamics to it")
    params = init if init is not None else init_lds(y0.to(torch.float64), n_states, generator)
    history: list[float] = []
    converged = False
    k = 0
    for k in range(n_iter):
        yk = y0 if k == 0 else data(k)
        new, ll = em_step(params, yk)
        if not all(torch.isfinite(t).all() for t in new) or not torch.isfinite(torch.tensor(ll)):
            raise FloatingPointError(f"EM diverged at iteration {k + 1} (non-finite parameters)")
        history.append(ll)
        params = new
        if len(history) > 1 and abs(history[-1] - history[-2]) < tol * abs(history[-2]):
            converged = True
            break
    return EMResult(params=params, loglik=history, n_iter=k + 1, converged=converged)

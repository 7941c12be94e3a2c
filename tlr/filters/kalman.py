"""Kalman filter and Rauch-Tung-Striebel smoother for linear-Gaussian state-space models.

Sources §4.2 (``tools/KalmanFilter.m``, ``KFposteriorization.m``). Model, time-major and batched:

    z_1 ~ N(μ_0, V_0),   z_{t+1} = A z_t + w_t,  w_t ~ N(0, Q),
    y_t = C z_t + v_t,   v_t ~ N(0, R_t).

R_t may vary with time and trajectory: for a Poisson population code R_t = σ_tc² / Σ_i y_t^i
(Sources §3.1). An infinite R_t (no spikes) means "no observation": the update is skipped.
On a ring the innovation y_t - C z_t⁻ is wrapped, while the state itself stays unwrapped (§4.2).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from tlr.evaluation.ppc import wrap_error

__all__ = ["LDSParams", "KFResult", "SmootherResult", "kalman_filter", "rts_smoother"]


class LDSParams(NamedTuple):
    """Parameters of a linear dynamical system (all float64)."""

    A: torch.Tensor  # (n, n) transition matrix
    C: torch.Tensor  # (m, n) emission matrix
    Q: torch.Tensor  # (n, n) process-noise covariance
    R: torch.Tensor  # (m, m) observation-noise covariance (used when no R_t is given)
    init_mean: torch.Tensor  # (n,) μ_0, mean of z_1
    init_cov: torch.Tensor  # (n, n) V_0, covariance of z_1

    @property
    def n_states(self) -> int:
        return self.A.shape[0]


class KFResult(NamedTuple):
    """Filtering distributions p(z_t | y_{1:t}) and one-step predictions p(z_t | y_{1:t-1})."""

    means: torch.Tensor  # (T, B, n)
    covs: torch.Tensor  # (T, B or 1, n, n)
    pred_means: torch.Tensor  # (T, B, n)
    pred_covs: torch.Tensor  # (T, B or 1, n, n)
    loglik: torch.Tensor  # (B,) log p(y_{1:T}) per trajectory


class SmootherResult(NamedTuple):
    """Smoothing distributions p(z_t | y_{1:T})."""

    means: torch.Tensor  # (T, B, n)
    covs: torch.Tensor  # (T, B or 1, n, n)
    cross_covs: torch.Tensor  # (T-1, B or 1, n, n): Cov(z_{t+1}, z_t | y_{1:T})


def _check_params(p: LDSParams) -> tuple[int, int]:
    if not isinstance(p, LDSParams):
        raise TypeError(f"params must be LDSParams, got {type(p).__name__}")
    n = p.A.shape[0]
    m = p.C.shape[0]
    shapes = {"A": (n, n), "C": (m, n), "Q": (n, n), "R": (m, m), "init_mean": (n,),
              "init_cov": (n, n)}
    for name, shape in shapes.items():
        if tuple(getattr(p, name).shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(getattr(p, name).shape)}")
    return n, m


def kalman_filter(
    params: LDSParams,
    y: torch.Tensor,
    R_t: torch.Tensor | None = None,
    wrap_period: float | None = None,
    wrap_first: bool = False,
) -> KFResult:
    """Filter observations ``y`` of shape (T, B, m) (Sources §4.2).

    Predict: z⁻ = A z, P⁻ = A P Aᵀ + Q (at t = 1: z⁻ = μ_0, P⁻ = V_0).
    Update:  K = P⁻ Cᵀ (C P⁻ Cᵀ + R_t)⁻¹,  z = z⁻ + K e,  P = (I - K C) P⁻,  e = y_t - C z⁻.

    ``R_t``: optional (T, B, m, m) observation covariances (default: ``params.R`` for all t);
    entries that are not finite skip the update. ``wrap_period``: wrap e into [-p/2, p/2) from
    the second step on. The first observation is used as given (unless ``wrap_first``): before
    any observation the prediction is only the prior, too vague to pick the image of y_1 by, so
    the caller places y_1 on the intended sheet (see :mod:`tlr.filters.baselines`).
    Runs in float64. The covariances do not depend on the observations, so they are computed
    first; with a constant R they are shared across the batch (B = 1 in ``covs``).
    """
    n, m = _check_params(params)
    if not torch.is_tensor(y) or y.dim() != 3 or y.shape[-1] != m:
        got = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
        raise ValueError(f"y must be a tensor of shape (T, B, {m}), got {got}")
    if not torch.isfinite(y).all():
        raise ValueError("y contains NaN or Inf")
    T, B, _ = y.shape
    y = y.to(torch.float64)
    A, C, Q = (t.to(torch.float64) for t in (params.A, params.C, params.Q))
    constant_R = R_t is None
    if R_t is None:
        R_t = params.R.to(torch.float64).expand(T, 1, m, m)
    elif tuple(R_t.shape) != (T, B, m, m):
        raise ValueError(f"R_t must have shape {(T, B, m, m)}, got {tuple(R_t.shape)}")
    R_t = R_t.to(torch.float64)
    observed = torch.isfinite(R_t).all(-1).all(-1)  # (T, Bc)
    R_t = torch.where(observed[..., None, None], R_t, torch.eye(m, dtype=torch.float64))
    eye = torch.eye(n, dtype=torch.float64)

    # Covariance pass: P⁻_t, S_t, K_t, P_t (independent of y).
    pred_covs, covs, gains, S_all = [], [], [], []
    P = params.init_cov.to(torch.float64).expand(R_t.shape[1], n, n)
    for t in range(T):
        if t > 1 and constant_R and torch.equal(covs[-1], covs[-2]):
            # Steady state reached (bit-identical): the remaining steps repeat the last one.
            for lst in (pred_covs, covs, gains, S_all):
                lst.extend([lst[-1]] * (T - t))
            break
        if t > 0:
            P = A @ P @ A.T + Q
        pred_covs.append(P)
        S = C @ P @ C.T + R_t[t]  # (Bc, m, m)
        K = torch.linalg.solve(S, (P @ C.T).transpose(-1, -2)).transpose(-1, -2)  # (Bc, n, m)
        K = K * observed[t][:, None, None]
        P = (eye - K @ C) @ P
        P = 0.5 * (P + P.transpose(-1, -2))
        covs.append(P)
        gains.append(K)
        S_all.append(S)
    pred_covs, covs = torch.stack(pred_covs), torch.stack(covs)
    gains, S_all = torch.stack(gains), torch.stack(S_all)

    # Mean pass.
    means, pred_means, innov = [], [], []
    z = params.init_mean.to(torch.float64).expand(B, n)
    for t in range(T):
        if t > 0:
            z = z @ A.T
        pred_means.append(z)
        e = y[t] - z @ C.T  # (B, m)
        if wrap_period is not None and (t > 0 or wrap_first):
            e = wrap_error(e, wrap_period)
        z = z + (gains[t] @ e[..., None])[..., 0]
        means.append(z)
        innov.append(e)
    e = torch.stack(innov)  # (T, B, m)
    Sinv_e = torch.linalg.solve(S_all, e[..., None])[..., 0]
    ll = -0.5 * ((e * Sinv_e).sum(-1) + torch.logdet(S_all) + m * math.log(2 * math.pi))
    loglik = (ll * observed).sum(0)
    return KFResult(torch.stack(means), covs, torch.stack(pred_means), pred_covs, loglik)


def rts_smoother(params: LDSParams, filtered: KFResult) -> SmootherResult:
    """Rauch-Tung-Striebel smoother over a :func:`kalman_filter` result (no wrapping).

    J_t = P_t Aᵀ (P⁻_{t+1})⁻¹;  m^s_t = m_t + J_t (m^s_{t+1} - m⁻_{t+1});
    P^s_t = P_t + J_t (P^s_{t+1} - P⁻_{t+1}) J_tᵀ;  Cov(z_{t+1}, z_t | y) = P^s_{t+1} J_tᵀ.
    """
    _check_params(params)
    A = params.A.to(torch.float64)
    T = filtered.means.shape[0]
    P, Pp = filtered.covs[:-1], filtered.pred_covs[1:]
    J = torch.linalg.solve(Pp, A @ P).transpose(-1, -2)  # P Aᵀ Pp⁻¹ for all t (Pp, P symmetric)
    Jt = J.transpose(-1, -2)
    means, covs = [filtered.means[-1]], [filtered.covs[-1]]
    for t in range(T - 2, -1, -1):
        d = means[-1] - filtered.pred_means[t + 1]
        means.append(filtered.means[t] + (J[t] @ d[..., None])[..., 0])
        covs.append(P[t] + J[t] @ (covs[-1] - Pp[t]) @ Jt[t])
    means, covs = torch.stack(means[::-1]), torch.stack(covs[::-1])
    covs = 0.5 * (covs + covs.transpose(-1, -2))
    cross = covs[1:] @ Jt
    return SmootherResult(means, covs, cross)

"""The PPC baselines of Table 1: ORDER 0, KF-true, KF-1 and KF-2 (Sources §3.4, §4).

All four decode the population response through its sufficient statistics (Sources §3.1): the
circular centre of mass ŝ_t and its variance σ_tc²/Σ_i y_t^i.

The filters keep an unwrapped state and wrap each innovation onto the ring (Sources §4.2). The
first observation has no prediction to be compared with, so it is placed on the sheet
centred on the start-position range, [c - period/2, c + period/2) with c = (pos_min + pos_max)/2
= 0: every start position lies ≥ 0.12 rad (≈ 4 observation s.d.) inside that window, whereas
the ring's own window [s_min, s_min + period) leaves only 0.05 rad at its lower edge.

- ORDER 0 ("sensory", ``\\KFnaught``): ŝ_t alone, i.e. a flat prior and no dynamics.
- KF-true (``\\KFopt``): the Kalman filter with the true A, Q and the time-varying R_t.
- KF-1 / KF-2 (``\\KFone``/``\\KFtwo``, "EM¹"/"EM²"): a 1- or 2-state LDS with constant R
  fitted by EM to the centre-of-mass observations of training data, then run as a filter.
"""

from __future__ import annotations

import torch

from tlr.data.lds_ppc import LTIConfig, PPCConfig
from tlr.evaluation.ppc import center_of_mass, wrap_error
from tlr.filters.em import EMResult, fit_lds_em, unwrap_continuous
from tlr.filters.kalman import LDSParams, kalman_filter

__all__ = ["order0", "centred_observations", "kf_true_params", "kf_states", "kf_true", "fit_kf",
           "run_kf"]

_F64 = dict(dtype=torch.float64)


def order0(y: torch.Tensor, ppc: PPCConfig) -> torch.Tensor:
    """ORDER 0: the circular centre of mass of the current counts, (T, B, N) -> (T, B)."""
    return center_of_mass(y, ppc).s_hat


def kf_true_params(lti: LTIConfig, diffuse_var: float = 1e8) -> LDSParams:
    """The true second-order LDS (Sources §4.3): A, C = [1, 0], Q; prior μ_0 = 0.

    Makin's prior has zero information on position (``SigmaX0 = Inf``); ``diffuse_var``
    stands in for that infinity (the first update then copies ŝ_1 up to ~1e-11 rad).
    """
    return LDSParams(
        A=lti.A,
        C=torch.tensor([[1.0, 0.0]], **_F64),
        Q=lti.Q,
        R=torch.eye(1, **_F64),  # unused: R_t is supplied per step
        init_mean=torch.zeros(2, **_F64),
        init_cov=torch.diag(torch.tensor([diffuse_var, lti.init_vel_var], **_F64)),
    )


def centred_observations(y: torch.Tensor, lti: LTIConfig, ppc: PPCConfig):
    """Centre of mass (T, B) in the window centred on the start range, and its variance."""
    com = center_of_mass(y, ppc)
    c = 0.5 * (lti.pos_min + lti.pos_max)
    s_hat = wrap_error(com.s_hat, ppc.period, c)
    return s_hat, com.obs_var


def kf_states(y: torch.Tensor, lti: LTIConfig, ppc: PPCConfig,
              params: LDSParams | None = None, gain_aware: bool = False) -> torch.Tensor:
    """Filtered states z_{t|t} (T, B, n) on counts y (T, B, N); ``params=None`` → KF-true.

    KF-true uses the true dynamics and R_t = σ_tc²/Σ_i y_t^i (Sources §4.3); a fitted LDS uses
    its constant R, except that a step without spikes carries no position information and
    skips the update (R_t = inf). ``gain_aware=True`` gives a fitted LDS KF-true's R_t instead
    of its R (an analysis reference: what a filter of that order gains from knowing each
    step's reliability). The innovation is wrapped onto the ring; the state is not.
    """
    s_hat, obs_var = centred_observations(y, lti, ppc)
    if params is None:
        params, R_t = kf_true_params(lti), obs_var[..., None, None]
    elif gain_aware:
        R_t = obs_var[..., None, None]
    else:
        R = params.R.to(torch.float64).expand(*s_hat.shape, 1, 1)
        R_t = torch.where(torch.isfinite(obs_var)[..., None, None], R, torch.inf)
    return kalman_filter(params, s_hat[..., None], R_t=R_t, wrap_period=ppc.period).means


def kf_true(y: torch.Tensor, lti: LTIConfig, ppc: PPCConfig) -> torch.Tensor:
    """KF-true: position estimates C z_{t|t} (T, B) of the true-parameter filter (Sources §4.3)."""
    return kf_states(y, lti, ppc)[..., 0]


def fit_kf(
    y_train: torch.Tensor,
    order: int,
    lti: LTIConfig,
    ppc: PPCConfig,
    n_iter: int = 500,
    tol: float = 1e-5,
    generator: torch.Generator | None = None,
) -> EMResult:
    """Fit KF-``order`` by EM on training counts (T, B, N) (Sources §4.4).

    The ring-valued centre-of-mass observations are first unwrapped by continuity in time
    (:func:`~tlr.filters.em.unwrap_continuous`), so that a linear model can describe them.
    """
    c = 0.5 * (lti.pos_min + lti.pos_max)
    s_hat = unwrap_continuous(center_of_mass(y_train, ppc).s_hat, ppc.period, centre=c)
    return fit_lds_em(s_hat[..., None], order, n_iter=n_iter, tol=tol, generator=generator)


def run_kf(params: LDSParams, y: torch.Tensor, lti: LTIConfig, ppc: PPCConfig,
           gain_aware: bool = False) -> torch.Tensor:
    """Run a fitted LDS as a filter on test counts (T, B, N); returns C z_{t|t}, (T, B).

    ``gain_aware``: use R_t = σ_tc²/Σ_i y_t^i in place of the fitted R (see :func:`kf_states`).
    """
    z = kf_states(y, lti, ppc, params, gain_aware=gain_aware)
    return (z @ params.C.T.to(torch.float64))[..., 0]

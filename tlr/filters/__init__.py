"""Kalman filtering, RTS smoothing, EM for LDSs, and the PPC baselines built on them."""

from tlr.filters.baselines import (
    centred_observations,
    fit_kf,
    kf_states,
    kf_true,
    kf_true_params,
    order0,
    run_kf,
)
from tlr.filters.em import EMResult, em_step, fit_lds_em, init_lds, unwrap_continuous
from tlr.filters.kalman import KFResult, LDSParams, SmootherResult, kalman_filter, rts_smoother

__all__ = [
    "EMResult",
    "centred_observations",
    "KFResult",
    "LDSParams",
    "SmootherResult",
    "em_step",
    "fit_kf",
    "fit_lds_em",
    "init_lds",
    "kalman_filter",
    "kf_states",
    "kf_true",
    "kf_true_params",
    "order0",
    "rts_smoother",
    "run_kf",
    "unwrap_continuous",
]

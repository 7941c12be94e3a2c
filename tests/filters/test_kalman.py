"""Kalman filter and RTS smoother against brute-force Gaussian conditioning (Sources §4.2).

The reference builds the dense joint Gaussian over (z_1..z_T, y_1..y_T) of one trajectory and
conditions it directly, so it shares no code (and no recursion) with the filter under test.
"""

import math

import pytest
import torch

from tlr.filters.kalman import LDSParams, kalman_filter, rts_smoother

F64 = dict(dtype=torch.float64)
T, B, N, M = 5, 3, 2, 1



def _params() -> LDSParams:
    return LDSParams(
        A=torch.tensor([[0.9, 0.3], [-0.2, 0.8]], **F64),
        C=torch.tensor([[1.0, -0.5]], **F64),
        Q=torch.tensor([[0.3, 0.1], [0.1, 0.2]], **F64),
        R=torch.tensor([[0.4]], **F64),
        init_mean=torch.tensor([0.5, -1.0], **F64),
        init_cov=torch.tensor([[1.0, 0.2], [0.2, 0.5]], **F64),
    )


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(T, B, M, generator=g, **F64) * 2.0
    R_t = (0.05 + torch.rand(T, B, generator=g, **F64) * 2.0)[..., None, None]  # (T, B, 1, 1)
    return y, R_t


def _prior(p: LDSParams, T: int):
    """Dense prior mean (T*n,) and covariance (T*n, T*n) of z_1..z_T."""
    n = p.A.shape[0]
    mean = [p.init_mean]
    marg = [p.init_cov]
    for _ in range(1, T):
        mean.append(p.A @ mean[-1])
        marg.append(p.A @ marg[-1] @ p.A.T + p.Q)
    cov = torch.zeros(T * n, T * n, **F64)
    for t in range(T):
        blk = marg[t]
        for s in range(t, T):  # Cov(z_s, z_t) = A^{s-t} Σ_t for s >= t
            cov[s * n:(s + 1) * n, t * n:(t + 1) * n] = blk
            cov[t * n:(t + 1) * n, s * n:(s + 1) * n] = blk.T
            blk = p.A @ blk
    return torch.cat(mean), cov


def _condition(p: LDSParams, y_b: torch.Tensor, R_b: torch.Tensor, obs: list[int]):
    """Posterior of z_1..z_T given the observations at time indices ``obs`` (one trajectory).

    Returns (mean (T, n), cov (T*n, T*n), log p(y_obs)).
    """
    n = p.A.shape[0]
    m = p.C.shape[0]
    Tn = y_b.shape[0]
    mz, Szz = _prior(p, Tn)
    Cbig = torch.block_diag(*[p.C] * Tn)  # (T*m, T*n)
    Ryy = torch.block_diag(*[R_b[t] for t in range(Tn)])
    my = Cbig @ mz
    Syy = Cbig @ Szz @ Cbig.T + Ryy
    Szy = Szz @ Cbig.T
    idx = torch.tensor([t * m + k for t in obs for k in range(m)], dtype=torch.long)
    if len(idx) == 0:
        return mz.reshape(Tn, n), Szz, torch.tensor(0.0, **F64)
    yo = y_b.reshape(-1)[idx]
    So = Syy[idx][:, idx]
    Szo = Szy[:, idx]
    gain = torch.linalg.solve(So, Szo.T).T
    post_mean = mz + gain @ (yo - my[idx])
    post_cov = Szz - gain @ Szo.T
    d = yo - my[idx]
    quad = d @ torch.linalg.solve(So, d)
    ll = -0.5 * (quad + torch.logdet(So) + len(idx) * math.log(2 * math.pi))
    return post_mean.reshape(Tn, n), post_cov, ll


def _blk(cov: torch.Tensor, s: int, t: int, n: int = N) -> torch.Tensor:
    return cov[s * n:(s + 1) * n, t * n:(t + 1) * n]


def _brute_filter(p, y, R_t, skip=frozenset()):
    """Filtered / predicted means and covs and log-likelihoods by dense conditioning."""
    means = torch.zeros(T, B, N, **F64)
    covs = torch.zeros(T, B, N, N, **F64)
    pmeans = torch.zeros(T, B, N, **F64)
    pcovs = torch.zeros(T, B, N, N, **F64)
    ll = torch.zeros(B, **F64)
    for b in range(B):
        keep = [t for t in range(T) if (t, b) not in skip]
        for t in range(T):
            mu, S, _ = _condition(p, y[:, b], R_t[:, b], [s for s in keep if s <= t])
            means[t, b], covs[t, b] = mu[t], _blk(S, t, t)
            mu, S, _ = _condition(p, y[:, b], R_t[:, b], [s for s in keep if s < t])
            pmeans[t, b], pcovs[t, b] = mu[t], _blk(S, t, t)
        ll[b] = _condition(p, y[:, b], R_t[:, b], keep)[2]
    return means, covs, pmeans, pcovs, ll


TOL = dict(rtol=0, atol=1e-8)


def test_filter_matches_dense_conditioning():
    p = _params()
    y, R_t = _data()
    res = kalman_filter(p, y, R_t=R_t)
    means, covs, pmeans, pcovs, ll = _brute_filter(p, y, R_t)
    assert res.means.shape == (T, B, N) and res.covs.shape == (T, B, N, N)
    assert res.loglik.shape == (B,)
    torch.testing.assert_close(res.means, means, **TOL)
    torch.testing.assert_close(res.covs, covs, **TOL)
    torch.testing.assert_close(res.pred_means, pmeans, **TOL)
    torch.testing.assert_close(res.pred_covs, pcovs, **TOL)
    torch.testing.assert_close(res.loglik, ll, **TOL)


def test_constant_R_equals_explicit_R_t_and_steady_state_shortcut():
    """R_t=None uses params.R for all t (covs shared across the batch); long T exercises the
    bit-identical steady-state shortcut, which must agree with the full recursion."""
    p = _params()
    g = torch.Generator().manual_seed(3)
    Tl = 400
    y = torch.randn(Tl, B, M, generator=g, **F64)
    a = kalman_filter(p, y)
    b = kalman_filter(p, y, R_t=p.R.expand(Tl, B, M, M).clone())
    assert a.covs.shape == (Tl, 1, N, N)
    torch.testing.assert_close(a.means, b.means, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.covs.expand_as(b.covs), b.covs, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.pred_covs.expand_as(b.pred_covs), b.pred_covs, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.loglik, b.loglik, rtol=1e-12, atol=1e-9)


def test_constant_R_matches_dense_conditioning():
    p = _params()
    y, _ = _data(1)
    R_t = p.R.expand(T, B, M, M)
    res = kalman_filter(p, y)
    means, covs, _, _, ll = _brute_filter(p, y, R_t)
    torch.testing.assert_close(res.means, means, **TOL)
    torch.testing.assert_close(res.covs.expand(T, B, N, N), covs, **TOL)
    torch.testing.assert_close(res.loglik, ll, **TOL)


def test_smoother_matches_dense_posterior():
    p = _params()
    y, R_t = _data(2)
    sm = rts_smoother(p, kalman_filter(p, y, R_t=R_t))
    assert sm.means.shape == (T, B, N)
    assert sm.covs.shape == (T, B, N, N)
    assert sm.cross_covs.shape == (T - 1, B, N, N)
    for b in range(B):
        mu, S, _ = _condition(p, y[:, b], R_t[:, b], list(range(T)))
        torch.testing.assert_close(sm.means[:, b], mu, **TOL)
        for t in range(T):
            torch.testing.assert_close(sm.covs[t, b], _blk(S, t, t), **TOL)
        for t in range(T - 1):  # Cov(z_{t+1}, z_t | y_{1:T})
            torch.testing.assert_close(sm.cross_covs[t, b], _blk(S, t + 1, t), **TOL)


def test_smoother_last_step_equals_filter():
    p = _params()
    y, R_t = _data(4)
    f = kalman_filter(p, y, R_t=R_t)
    sm = rts_smoother(p, f)
    torch.testing.assert_close(sm.means[-1], f.means[-1], rtol=0, atol=0)
    # Smoothing can only reduce uncertainty.
    assert (sm.covs.diagonal(dim1=-2, dim2=-1) <= f.covs.diagonal(dim1=-2, dim2=-1) + 1e-12).all()


def test_infinite_R_t_skips_update():
    p = _params()
    y, R_t = _data(5)
    skip = {(2, 0), (0, 1), (4, 2), (1, 2)}
    R_t = R_t.clone()
    for t, b in skip:
        R_t[t, b] = math.inf
    res = kalman_filter(p, y, R_t=R_t)
    means, covs, pmeans, pcovs, ll = _brute_filter(p, y, R_t, skip=frozenset(skip))
    assert torch.isfinite(res.means).all() and torch.isfinite(res.loglik).all()
    torch.testing.assert_close(res.means, means, **TOL)
    torch.testing.assert_close(res.covs, covs, **TOL)
    torch.testing.assert_close(res.loglik, ll, **TOL)
    # A skipped step is a pure prediction.
    torch.testing.assert_close(res.means[2, 0], res.pred_means[2, 0], rtol=0, atol=0)
    sm = rts_smoother(p, res)
    for b in range(B):
        keep = [t for t in range(T) if (t, b) not in skip]
        mu, _, _ = _condition(p, y[:, b], R_t[:, b], keep)
        torch.testing.assert_close(sm.means[:, b], mu, **TOL)


def _slow_1d_problem(Tn: int = 60, Bn: int = 4, seed: int = 0):
    """A 2-state position/velocity model with small noise: innovations are tiny (<< period/2)."""
    p = LDSParams(
        A=torch.tensor([[1.0, 0.05], [-0.03, 0.9975]], **F64),
        C=torch.tensor([[1.0, 0.0]], **F64),
        Q=torch.diag(torch.tensor([5e-7, 5e-5], **F64)),
        R=torch.tensor([[1e-3]], **F64),
        init_mean=torch.tensor([0.2, 0.0], **F64),
        init_cov=torch.diag(torch.tensor([1e-2, 1e-6], **F64)),
    )
    g = torch.Generator().manual_seed(seed)
    z = torch.empty(Tn, Bn, 2, **F64)
    z[0] = torch.tensor([0.2, 0.0], **F64) + 0.05 * torch.randn(Bn, 2, generator=g, **F64)
    for t in range(Tn - 1):
        z[t + 1] = z[t] @ p.A.T + torch.randn(Bn, 2, generator=g, **F64) * p.Q.diagonal().sqrt()
    y = z[..., :1] + 0.03 * torch.randn(Tn, Bn, 1, generator=g, **F64)
    return p, y, g


def test_wrap_period_ignores_period_shifts_after_first_step():
    period = 2.244
    p, y, g = _slow_1d_problem()
    ref = kalman_filter(p, y, wrap_period=period)
    plain = kalman_filter(p, y)
    # Small innovations: wrapping is a no-op on the unshifted data.
    torch.testing.assert_close(ref.means, plain.means, rtol=0, atol=1e-12)
    k = torch.randint(-3, 4, y.shape, generator=g).to(torch.float64)
    k[0] = 0
    assert (k[1:] != 0).any()
    shifted = y + k * period
    res = kalman_filter(p, shifted, wrap_period=period)
    torch.testing.assert_close(res.means, ref.means, rtol=0, atol=1e-9)
    torch.testing.assert_close(res.loglik, ref.loglik, rtol=0, atol=1e-7)
    # Without wrapping the shifts do matter (the test can fail).
    assert (kalman_filter(p, shifted).means - ref.means).abs().max() > 0.1


def test_wrap_first_controls_the_first_observation():
    period = 2.244
    p, y, _ = _slow_1d_problem(seed=1)
    shifted = y.clone()
    shifted[0] += period
    ref = kalman_filter(p, y, wrap_period=period)
    # By default y_1 is used as given: a period shift moves the first estimate by ~ a period.
    as_given = kalman_filter(p, shifted, wrap_period=period)
    assert (as_given.means[0, :, 0] - ref.means[0, :, 0]).abs().min() > 0.5
    wrapped = kalman_filter(p, shifted, wrap_period=period, wrap_first=True)
    torch.testing.assert_close(wrapped.means, ref.means, rtol=0, atol=1e-9)


def test_wrapped_innovation_uses_smallest_image():
    """An observation 0.6 periods ahead of the prediction is treated as 0.4 periods behind."""
    period = 1.0
    p = LDSParams(A=torch.eye(1, **F64), C=torch.eye(1, **F64), Q=torch.eye(1, **F64) * 1e-12,
                  R=torch.eye(1, **F64), init_mean=torch.zeros(1, **F64),
                  init_cov=torch.eye(1, **F64) * 1e-12)
    y = torch.tensor([[[0.0]], [[0.6]]], **F64)  # (T=2, B=1, m=1)
    res = kalman_filter(p, y, wrap_period=period)
    S = res.pred_covs[1, 0, 0, 0] + 1.0
    K = res.pred_covs[1, 0, 0, 0] / S
    torch.testing.assert_close(res.means[1, 0, 0], K * -0.4, rtol=1e-9, atol=0)


def _bad_params(**kw) -> LDSParams:
    return _params()._replace(**kw)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((torch.zeros(T, B),), {}, ValueError, r"y must be a tensor of shape \(T, B, 1\)"),
        ((torch.zeros(T, B, 2),), {}, ValueError, r"y must be a tensor of shape"),
        (([[0.0]],), {}, ValueError, r"y must be a tensor of shape"),
        ((torch.full((T, B, 1), math.nan),), {}, ValueError, "NaN or Inf"),
        ((torch.full((T, B, 1), math.inf),), {}, ValueError, "NaN or Inf"),
        ((torch.zeros(T, B, 1),), {"R_t": torch.ones(T, B, 1)}, ValueError,
         r"R_t must have shape \(5, 3, 1, 1\)"),
        ((torch.zeros(T, B, 1),), {"R_t": torch.ones(T - 1, B, 1, 1)}, ValueError,
         "R_t must have shape"),
    ],
)
def test_bad_inputs(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        kalman_filter(_params(), *args, **kwargs)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("A", torch.eye(3, **F64), r"A must have shape|C must have shape"),
        ("C", torch.ones(1, 3, **F64), r"C must have shape \(1, 2\)"),
        ("Q", torch.eye(3, **F64), r"Q must have shape \(2, 2\)"),
        ("R", torch.eye(2, **F64), r"R must have shape \(1, 1\)"),
        ("init_mean", torch.zeros(3, **F64), r"init_mean must have shape \(2,\)"),
        ("init_cov", torch.eye(1, **F64), r"init_cov must have shape \(2, 2\)"),
    ],
)
def test_bad_param_shapes(field, value, match):
    y = torch.zeros(T, B, 1, **F64)
    with pytest.raises(ValueError, match=match):
        kalman_filter(_bad_params(**{field: value}), y)
    f = kalman_filter(_params(), y)
    with pytest.raises(ValueError, match=match):
        rts_smoother(_bad_params(**{field: value}), f)


def test_params_must_be_ldsparams():
    with pytest.raises(TypeError, match="params must be LDSParams"):
        kalman_filter(tuple(_params()), torch.zeros(T, B, 1, **F64))

"""EM for linear dynamical systems (Sources §4.4) and phase unwrapping."""

import math

import pytest
import torch

from tlr.filters.em import em_step, fit_lds_em, init_lds, unwrap_continuous
from tlr.filters.kalman import LDSParams, kalman_filter, rts_smoother

F64 = dict(dtype=torch.float64)



def _true_params(n_states: int) -> LDSParams:
    if n_states == 1:
        return LDSParams(A=torch.tensor([[0.9]], **F64), C=torch.tensor([[1.0]], **F64),
                         Q=torch.tensor([[0.5]], **F64), R=torch.tensor([[0.5]], **F64),
                         init_mean=torch.tensor([1.0], **F64),
                         init_cov=torch.tensor([[1.0]], **F64))
    # A damped oscillator (period ~ 25 steps), position observed.
    th, r = 2 * math.pi / 25, 0.97
    return LDSParams(
        A=r * torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]], **F64),
        C=torch.tensor([[1.0, 0.0]], **F64),
        Q=torch.diag(torch.tensor([0.05, 0.05], **F64)),
        R=torch.tensor([[0.1]], **F64),
        init_mean=torch.tensor([1.0, 0.0], **F64),
        init_cov=0.5 * torch.eye(2, **F64),
    )


def _sample(p: LDSParams, T: int, B: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n, m = p.A.shape[0], p.C.shape[0]
    Lq, Lr = torch.linalg.cholesky(p.Q), torch.linalg.cholesky(p.R)
    L0 = torch.linalg.cholesky(p.init_cov)
    z = p.init_mean + torch.randn(B, n, generator=g, **F64) @ L0.T
    ys = []
    for _ in range(T):
        ys.append(z @ p.C.T + torch.randn(B, m, generator=g, **F64) @ Lr.T)
        z = z @ p.A.T + torch.randn(B, n, generator=g, **F64) @ Lq.T
    return torch.stack(ys)


def _pred_mse(p: LDSParams, y: torch.Tensor, burn: int = 10) -> float:
    """One-step prediction error of the filter with params p: y_t vs C E[z_t | y_{1:t-1}]."""
    res = kalman_filter(p, y)
    pred = res.pred_means @ p.C.T
    return float(((y - pred)[burn:] ** 2).mean())


@pytest.mark.parametrize("n_states", [1, 2])
def test_loglik_monotone(n_states):
    y = _sample(_true_params(n_states), T=150, B=8, seed=n_states)
    fit = fit_lds_em(y, n_states, n_iter=30, tol=0.0, generator=torch.Generator().manual_seed(0))
    ll = torch.tensor(fit.loglik)
    assert fit.n_iter == 30 and len(fit.loglik) == 30 and not fit.converged
    assert torch.isfinite(ll).all()
    assert (ll.diff() >= -1e-9).all(), ll.diff().min()
    assert ll[-1] > ll[0] + 0.01  # EM actually moved


def test_loglik_is_that_of_the_current_params():
    """loglik[k] is log p(y | params_k) per observation, params_0 being the initialisation."""
    p = _true_params(1)
    y = _sample(p, T=50, B=4, seed=9)
    new, ll = em_step(p, y)
    assert math.isclose(ll, float(kalman_filter(p, y).loglik.sum()) / (50 * 4), rel_tol=1e-12)
    fit = fit_lds_em(y, 1, n_iter=1, init=p)
    assert fit.loglik == [ll]
    for a, b in zip(fit.params, new, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _expected_complete_ll(p: LDSParams, y: torch.Tensor, sm) -> float:
    """E[log p(z_{1:T}, y_{1:T} | p)] under the smoothing posterior ``sm`` (the EM Q-function)."""
    T, B, m = y.shape
    n = p.A.shape[0]
    x = sm.means  # (T, B, n)
    Pt = sm.covs.expand(T, B, n, n) + x[..., :, None] * x[..., None, :]  # E[z_t z_tᵀ]
    Pc = sm.cross_covs.expand(T - 1, B, n, n) + x[1:, :, :, None] * x[:-1, :, None, :]
    log2pi = math.log(2 * math.pi)

    def gauss(S, cov):  # Σ over terms of E[log N(.; ., cov)] given Σ E[e eᵀ] = S, count k
        S, k = S
        return -0.5 * (torch.trace(torch.linalg.solve(cov, S))
                       + k * (torch.logdet(cov) + cov.shape[0] * log2pi))

    mu = p.init_mean
    S0 = (Pt[0] - x[0, :, :, None] * mu[None, None, :] - mu[None, :, None] * x[0, :, None, :]
          + torch.outer(mu, mu)).sum(0)
    A = p.A
    Sdyn = (Pt[1:] - A @ Pc.transpose(-1, -2) - Pc @ A.T + A @ Pt[:-1] @ A.T).sum((0, 1))
    C = p.C
    yy = y[..., :, None] * y[..., None, :]
    yx = y[..., :, None] * x[..., None, :]
    Sobs = (yy - C @ yx.transpose(-1, -2) - yx @ C.T + C @ Pt @ C.T).sum((0, 1))
    total = gauss((S0, B), p.init_cov) + gauss((Sdyn, (T - 1) * B), p.Q)
    return float(total + gauss((Sobs, T * B), p.R))


@pytest.mark.parametrize("n_states", [1, 2])
def test_m_step_maximises_expected_complete_loglik(n_states):
    """The M-step's parameters are the maximiser of the Q-function of the E-step's posterior:
    every small perturbation of any one parameter block lowers it."""
    y = _sample(_true_params(n_states), T=60, B=5, seed=30 + n_states)
    old = init_lds(y, n_states, torch.Generator().manual_seed(2))
    old = em_step(old, y)[0]  # a less special starting point than the initialisation
    sm = rts_smoother(old, kalman_filter(old, y))
    new, _ = em_step(old, y)
    f0 = _expected_complete_ll(new, y, sm)
    assert f0 > _expected_complete_ll(old, y, sm)
    g = torch.Generator().manual_seed(5)
    for field in LDSParams._fields:
        base = getattr(new, field)
        for _ in range(3):
            d = torch.randn(base.shape, generator=g, **F64)
            if field in ("Q", "R", "init_cov"):
                d = d @ d.T if d.dim() == 2 else d  # symmetric, keeps the matrix PD below
            d = d / d.norm() * 1e-3 * max(base.norm().item(), 1e-3)
            for sign in (1, -1):
                f = _expected_complete_ll(new._replace(**{field: base + sign * d}), y, sm)
                assert f <= f0 + 1e-9 * abs(f0), (field, f - f0)


@pytest.mark.parametrize("n_states", [1, 2])
def test_em_recovers_predictive_performance(n_states):
    p = _true_params(n_states)
    # The 2-state fit converges slowly (EM on an LDS); 100 iterations on less data keep it fast.
    T, B, n_iter = (400, 20, 200) if n_states == 1 else (300, 10, 100)
    y_train = _sample(p, T=T, B=B, seed=10 + n_states)
    y_test = _sample(p, T=400, B=20, seed=20 + n_states)
    fit = fit_lds_em(y_train, n_states, n_iter=n_iter, tol=1e-7,
                     generator=torch.Generator().manual_seed(1))
    true_mse = _pred_mse(p, y_test)
    fit_mse = _pred_mse(fit.params, y_test)
    assert abs(fit_mse / true_mse - 1) < 0.03, (fit_mse, true_mse)
    # A filter that ignores the dynamics (predict the last observation) is much worse, so the
    # tolerance above is meaningful.
    naive = float(((y_test[1:] - y_test[:-1])[9:] ** 2).mean())
    assert naive > 1.2 * true_mse
    if n_states == 1:
        a, c, q, r = (float(t) for t in (fit.params.A, fit.params.C, fit.params.Q, fit.params.R))
        assert abs(a - 0.9) < 0.03
        assert abs(r - 0.5) < 0.1 * 0.5
        assert abs(c * c * q - 0.5) < 0.15 * 0.5  # the state's scale is not identifiable
    else:
        ev = torch.linalg.eigvals(fit.params.A)
        assert torch.allclose(ev.abs(), torch.full((2,), 0.97, **F64), atol=0.02)
        assert torch.allclose(ev.angle().abs(), torch.full((2,), 2 * math.pi / 25, **F64),
                              atol=0.02)


def test_fit_with_fresh_data_per_iteration():
    p = _true_params(1)
    calls = []

    def data(k):
        calls.append(k)
        return _sample(p, T=100, B=5, seed=100 + k)

    fit = fit_lds_em(data, 1, n_iter=4, tol=0.0, generator=torch.Generator().manual_seed(0))
    assert fit.n_iter == 4
    assert sorted(set(calls)) == [0, 1, 2, 3]


def test_converges_and_stops_early():
    y = _sample(_true_params(1), T=200, B=10, seed=3)
    fit = fit_lds_em(y, 1, n_iter=500, tol=1e-4, generator=torch.Generator().manual_seed(0))
    assert fit.converged and fit.n_iter < 500 and len(fit.loglik) == fit.n_iter


def test_same_generator_same_fit():
    y = _sample(_true_params(2), T=60, B=4, seed=4)
    a = fit_lds_em(y, 2, n_iter=5, tol=0.0, generator=torch.Generator().manual_seed(7))
    b = fit_lds_em(y, 2, n_iter=5, tol=0.0, generator=torch.Generator().manual_seed(7))
    assert a.loglik == b.loglik


def test_init_lds_shapes():
    y = _sample(_true_params(1), T=30, B=3, seed=0)
    for n in (1, 2, 3):
        p = init_lds(y, n, torch.Generator().manual_seed(0))
        assert p.A.shape == (n, n) and p.C.shape == (1, n) and p.Q.shape == (n, n)
        assert p.R.shape == (1, 1) and p.init_mean.shape == (n,) and p.init_cov.shape == (n, n)
        assert all(t.dtype == torch.float64 for t in p)


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("n_states", [0, -1, 1.5, True, "2"])
def test_bad_n_states(n_states):
    y = torch.zeros(10, 2, 1, **F64)
    with pytest.raises(ValueError, match="n_states must be a positive int"):
        fit_lds_em(y, n_states)


@pytest.mark.parametrize("n_iter", [0, -3])
def test_bad_n_iter(n_iter):
    with pytest.raises(ValueError, match="n_iter must be >= 1"):
        fit_lds_em(torch.randn(10, 2, 1, **F64), 1, n_iter=n_iter)


@pytest.mark.parametrize(
    "y", [torch.randn(10, 2), torch.randn(1, 2, 1), torch.randn(10), [[[0.0]]]],
    ids=["2d", "T=1", "1d", "list"],
)
def test_bad_shapes(y):
    with pytest.raises(ValueError, match=r"y must have shape \(T >= 2, B, m\)"):
        fit_lds_em(y, 1)


def test_divergence_raises_floating_point_error():
    """An explosive starting transition overflows within the first iteration."""
    y = _sample(_true_params(1), T=50, B=2, seed=0)
    bad = _true_params(1)._replace(A=torch.tensor([[1e200]], **F64))
    with pytest.raises(FloatingPointError, match="diverged at iteration 1"):
        fit_lds_em(y, 1, n_iter=5, init=bad)


def test_overflowing_data_raises_floating_point_error():
    y = _sample(_true_params(1), T=50, B=2, seed=0) * 1e160
    with pytest.raises(FloatingPointError, match="diverged"):
        fit_lds_em(y, 1, n_iter=5, generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------- unwrapping


def test_unwrap_inverts_wrapping_of_a_smooth_trajectory():
    period, centre = 2.244, 0.0
    g = torch.Generator().manual_seed(0)
    T, B = 2000, 6
    steps = 0.05 * torch.randn(T - 1, B, generator=g, **F64) + 0.02  # drifts over ~18 periods
    start = (torch.rand(1, B, generator=g, **F64) - 0.5) * 0.9 * period + centre
    s = torch.cat([start, start + steps.cumsum(0)])
    assert (s.max(0).values - s.min(0).values > 3 * period).all()
    wrapped = torch.remainder(s - (-math.pi / 3), period) + (-math.pi / 3)
    assert not torch.allclose(wrapped, s)
    un = unwrap_continuous(wrapped, period, centre=centre)
    assert un.shape == s.shape
    torch.testing.assert_close(un, s, rtol=0, atol=1e-9)


def test_unwrap_places_first_sample_in_the_centred_window():
    period = 2.0
    s = torch.tensor([[1.5, -0.9, 0.2]], **F64).expand(3, 3).clone()
    s[1] += 0.1
    s[2] += 0.2
    for centre in (0.0, 1.0, -3.0):
        un = unwrap_continuous(s + 4 * period, period, centre=centre)
        assert ((un[0] >= centre - period / 2) & (un[0] < centre + period / 2)).all()
        torch.testing.assert_close(un.diff(dim=0), s.diff(dim=0), rtol=0, atol=1e-12)


def test_unwrap_is_causal():
    period = 2.244
    g = torch.Generator().manual_seed(1)
    s = torch.remainder(0.1 * torch.randn(100, 3, generator=g, **F64).cumsum(0), period)
    a = unwrap_continuous(s, period)
    s2 = s.clone()
    s2[60:] = torch.remainder(s2[60:] + 1.0, period)
    b = unwrap_continuous(s2, period)
    torch.testing.assert_close(a[:60], b[:60], rtol=0, atol=0)

"""The LTI + PPC generator (Sources §2): shapes, constants, statistics, seeding, validation."""

import math

import pytest
import torch

from tlr.data.lds_ppc import (
    LTIConfig,
    PPCConfig,
    PPCData,
    simulate,
    simulate_lti,
    tuning_curves,
)
from tlr.rng import make_generator

F64 = dict(dtype=torch.float64)
PPC = PPCConfig()
LTI = LTIConfig()



@pytest.fixture(scope="module")
def big() -> PPCData:
    """40 x 500 samples of the default generator."""
    return simulate(40, 500, seed=11, stream="tests/data")


# --------------------------------------------------------------------------- shapes and dtypes


def test_shapes_and_dtypes():
    d = simulate(7, 50, seed=1)
    assert isinstance(d, PPCData)
    assert d.z.shape == (50, 7, 2) and d.z.dtype == torch.float64
    assert d.y.shape == (50, 7, 15) and d.y.dtype == torch.float32
    assert d.gain.shape == (50, 7)
    assert d.position.shape == (50, 7)
    assert torch.equal(d.position, d.z[..., 0])
    assert torch.equal(d.y, d.y.round()), "counts must be integer-valued"
    assert (d.y >= 0).all()
    assert torch.isfinite(d.z).all()
    assert d.y.sum() > 0


def test_gain_range_and_distribution(big):
    g = big.gain
    assert g.min() >= 6.4 and g.max() <= 9.6
    # U[6.4, 9.6]: mean 8, sd 3.2/sqrt(12) = 0.924, drawn afresh at every step.
    n = g.numel()
    assert abs(g.mean().item() - 8.0) < 5 * 0.924 / math.sqrt(n)
    assert abs(g.std().item() - 3.2 / math.sqrt(12)) < 0.03
    # Per step, not per trajectory: within one trajectory the gain varies over time.
    assert (g.std(dim=0) > 0.7).all()


def test_neuron_count_follows_config():
    d = simulate(3, 10, seed=0, ppc=PPCConfig(n_neurons=7))
    assert d.y.shape == (10, 3, 7)


# ------------------------------------------------------------------------------------ constants


def test_dynamics_constants():
    A = torch.tensor([[1.0, 0.05], [-0.03, 0.9975]], **F64)
    torch.testing.assert_close(LTI.A, A, rtol=0, atol=1e-15)
    torch.testing.assert_close(LTI.Q, torch.diag(torch.tensor([5e-7, 5e-5], **F64)),
                               rtol=0, atol=0)
    assert LTI.A.dtype == torch.float64 and LTI.Q.dtype == torch.float64
    # Sources §2.2 derived values: eigenvalues 0.99875 ± 0.0387j.
    ev = torch.linalg.eigvals(LTI.A)
    assert torch.allclose(ev.real, torch.tensor(0.99875, **F64), atol=1e-5)
    assert torch.allclose(ev.imag.abs(), torch.tensor(0.0387, **F64), atol=1e-4)


def test_population_constants():
    assert PPC.n_neurons == 15
    assert abs(PPC.tuning_std - 0.14823) < 1e-4
    assert abs(PPC.tuning_std**2 - 0.021974) < 1e-5  # Sources §3.1
    assert math.isclose(PPC.period, 15 / 14 * 2 * math.pi / 3, rel_tol=1e-12)
    assert abs(PPC.period - 2.244) < 1e-3
    assert math.isclose(PPC.spacing, (2 * math.pi / 3) / 14, rel_tol=1e-12)
    pref = PPC.preferred
    assert pref.shape == (15,) and pref.dtype == torch.float64
    assert math.isclose(pref[0].item(), -math.pi / 3, abs_tol=1e-12)
    assert math.isclose(pref[-1].item(), math.pi / 3, abs_tol=1e-12)
    torch.testing.assert_close(pref.diff(), torch.full((14,), PPC.spacing, **F64))
    assert (PPC.gain_min, PPC.gain_max) == (6.4, 9.6)


def test_wrap_onto_ring():
    s = torch.tensor([-10.0, -1.2, 0.0, 1.19, 1.2, 5.0], **F64)
    w = PPC.wrap(s)
    assert (w >= PPC.s_min).all() and (w < PPC.s_min + PPC.period).all()
    k = (s - w) / PPC.period
    torch.testing.assert_close(k, k.round(), rtol=0, atol=1e-12)


# -------------------------------------------------------------------------------- tuning curves


RING = torch.linspace(-4.0, 4.0, 4001, **F64)  # about 3.5 periods, both sides of every seam


def test_expected_total_count_is_2484_per_unit_gain():
    """Σ_i f_i(s) ≈ √(2π) σ_tc / spacing = 2.484 for every s (Sources §2.5)."""
    total = tuning_curves(RING, PPC).sum(-1)
    analytic = math.sqrt(2 * math.pi) * PPC.tuning_std / PPC.spacing
    assert abs(analytic - 2.484) < 1e-3
    torch.testing.assert_close(total, torch.full_like(total, 2.484), rtol=1e-3, atol=0)
    # On the ring the population sum is constant to far better than 1e-3.
    assert (total.max() - total.min()) / total.mean() < 1e-6
    assert 19.8 < 8 * total.mean() < 19.95  # ≈ 19.9 spikes at g = 8


def test_empirical_count_per_gain(big):
    """E[Σ_i y_i / g] = Σ_i f_i(s) ≈ 2.4838: sample mean within 5 standard errors."""
    r = (big.y.sum(-1).double() / big.gain).flatten()
    se = r.std() / math.sqrt(r.numel())
    expected = math.sqrt(2 * math.pi) * PPC.tuning_std / PPC.spacing
    assert abs(r.mean().item() - expected) < 5 * se.item()
    assert se < 0.01  # the check has teeth: SE ≈ 0.004 (0.16 %)


def test_counts_are_poisson(big):
    """Given the rate, counts are Poisson: E[y] = Var[y] = rate (standardised residuals)."""
    rate = big.gain[..., None] * tuning_curves(big.position, PPC)
    # Only well-driven neurons: at tiny rates a single spike gives a huge standardised
    # residual, and the sample variance is dominated by such rare events.
    keep = rate > 1.0
    resid = ((big.y.double() - rate) / rate.sqrt())[keep]
    n = resid.numel()
    assert n > 50_000
    assert abs(resid.mean().item()) < 5 / math.sqrt(n)
    assert abs(resid.var().item() - 1.0) < 0.03


def test_tuning_curves_shape_and_peaks():
    s = torch.zeros(4, 3, **F64)
    assert tuning_curves(s, PPC).shape == (4, 3, 15)
    f = tuning_curves(PPC.preferred, PPC)  # (15, 15): row i at s_i
    torch.testing.assert_close(f.diagonal(), torch.ones(15, **F64), rtol=0, atol=1e-12)
    assert (f.argmax(-1) == torch.arange(15)).all()
    # Neuron 15 and neuron 1 are one spacing apart on the ring.
    one_step = math.exp(-(PPC.spacing**2) / (2 * PPC.tuning_std**2))
    assert math.isclose(f[0, 14].item(), one_step, rel_tol=1e-9)
    assert math.isclose(f[14, 0].item(), one_step, rel_tol=1e-9)
    assert math.isclose(f[0, 1].item(), one_step, rel_tol=1e-9)


def test_tuning_curves_are_periodic():
    f = tuning_curves(RING, PPC)
    for k in (-2, -1, 1, 3):
        torch.testing.assert_close(tuning_curves(RING + k * PPC.period, PPC), f,
                                   rtol=0, atol=1e-10)
    # ... but not with any other shift.
    assert (tuning_curves(RING + PPC.period / 2, PPC) - f).abs().max() > 0.5


def test_tuning_curves_accept_float32_and_reject_bad_input():
    s32 = torch.tensor([0.1, -0.5], dtype=torch.float32)
    torch.testing.assert_close(tuning_curves(s32, PPC), tuning_curves(s32.double(), PPC))
    with pytest.raises(TypeError, match="must be a tensor"):
        tuning_curves([0.1, 0.2], PPC)
    with pytest.raises(ValueError, match="NaN or Inf"):
        tuning_curves(torch.tensor([0.0, math.nan]), PPC)
    with pytest.raises(ValueError, match="NaN or Inf"):
        tuning_curves(torch.tensor([math.inf]), PPC)


# ------------------------------------------------------------------------------------- dynamics


def _lyapunov(A: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """P = A P Aᵀ + Q, solved as (I - A ⊗ A) vec(P) = vec(Q)."""
    n = A.shape[0]
    M = torch.eye(n * n, **F64) - torch.kron(A, A)
    return torch.linalg.solve(M, Q.reshape(-1)).reshape(n, n)


def test_stationary_std_analytic():
    P = _lyapunov(LTI.A, LTI.Q)
    torch.testing.assert_close(LTI.A @ P @ LTI.A.T + LTI.Q, P, rtol=1e-10, atol=1e-14)
    assert abs(P[0, 0].sqrt().item() - 0.2048) < 5e-4  # Sources §2.2: ≈ 0.20 rad
    assert abs(P[1, 1].sqrt().item() - 0.1587) < 5e-4  # ≈ 0.16 rad/s


def _tiny_start() -> LTIConfig:
    return LTIConfig(pos_min=-1e-3, pos_max=1e-3, init_margin=1e-4)


def test_stationary_std_simulated():
    """Start near 0 and run long: the position std approaches √P∞ ≈ 0.2048.

    The slowest mode has |λ|² = det A = 0.999, so the variance settles with a time constant
    of ~1000 steps; 5000 steps of burn-in leave a 0.7 % deficit. Across seeds the pooled std
    below scatters by ~2 %, and the tolerance is 8 %.
    """
    z = simulate_lti(400, 10_000, _tiny_start(), make_generator(3, "tests/stationary"))
    std = z[5000:, :, 0].std().item()
    assert abs(std - 0.2048) < 0.08 * 0.2048
    vstd = z[5000:, :, 1].std().item()
    assert abs(vstd - 0.1587) < 0.08 * 0.1587


def test_transient_covariance_matches_recursion():
    """Across 2000 trajectories the covariance of z_t follows P_t = A P_{t-1} Aᵀ + Q."""
    cfg = _tiny_start()
    T = 1500
    z = simulate_lti(2000, T, cfg, make_generator(5, "tests/transient"))
    half = cfg.pos_max - cfg.init_margin
    P = torch.diag(torch.tensor([half**2 / 3, cfg.init_vel_var], **F64))
    for t in range(1, T):
        P = LTI.A @ P @ LTI.A.T + LTI.Q
        if t in (200, 700, T - 1):
            emp = torch.cov(z[t].T)
            # Variance estimates from 2000 samples: relative SE ≈ 3 %; tolerance 15 %.
            torch.testing.assert_close(emp.diagonal(), P.diagonal(), rtol=0.15, atol=0)
    # Not yet stationary at T = 1500 (this is why the burn-in above is long).
    assert P[0, 0] < 0.85 * _lyapunov(LTI.A, LTI.Q)[0, 0]


def test_process_noise_and_transition(big):
    """z_{t+1} - A z_t has covariance Q (diagonal) and zero mean."""
    w = big.z[1:] - big.z[:-1] @ LTI.A.T
    n = w.shape[0] * w.shape[1]
    var = w.reshape(-1, 2).var(0)
    torch.testing.assert_close(var, LTI.Q.diagonal(), rtol=0.05, atol=0)  # rel SE ≈ 1 %
    corr = torch.corrcoef(w.reshape(-1, 2).T)[0, 1]
    assert abs(corr) < 5 / math.sqrt(n)


def test_start_positions():
    d = simulate(2000, 2, seed=4)
    x0, v0 = d.z[0, :, 0], d.z[0, :, 1]
    lo, hi = -math.pi / 3 + 0.05, math.pi / 3 - 0.05
    assert (x0 >= lo).all() and (x0 <= hi).all()
    # Uniform over the whole range, not a point mass.
    assert x0.min() < lo + 0.02 and x0.max() > hi - 0.02
    assert abs(x0.mean().item()) < 0.05
    # v_0 ~ N(0, 5e-10): std ≈ 2.2e-5.
    assert abs(v0.std().item() - math.sqrt(5e-10)) < 0.1 * math.sqrt(5e-10)


def test_state_is_not_wrapped():
    """Only the stimulus is wrapped for encoding; the latent state leaves the ring window."""
    d = simulate(40, 1000, seed=0, stream="ppc/test")
    ring_hi = PPC.s_min + PPC.period
    assert (d.position >= ring_hi).any() or (d.position < PPC.s_min).any()


# ---------------------------------------------------------------------------------------- seeds


def test_same_seed_same_data():
    a = simulate(5, 30, seed=7, stream="s")
    b = simulate(5, 30, seed=7, stream="s")
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("kw", [{"seed": 8, "stream": "s"}, {"seed": 7, "stream": "t"}])
def test_different_seed_or_stream_different_data(kw):
    a = simulate(5, 30, seed=7, stream="s")
    b = simulate(5, 30, **kw)
    assert not torch.equal(a.z, b.z)
    assert not torch.equal(a.y, b.y)
    assert not torch.equal(a.gain, b.gain)


def test_simulate_lti_uses_the_generator():
    a = simulate_lti(3, 20, LTI, make_generator(1, "x"))
    b = simulate_lti(3, 20, LTI, make_generator(1, "x"))
    c = simulate_lti(3, 20, LTI, make_generator(2, "x"))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "n_traj, T, exc, match",
    [
        (5, 1, ValueError, "T must be >= 2"),
        (5, 0, ValueError, "T must be >= 2"),
        (0, 10, ValueError, "n_traj must be >= 1"),
        (-3, 10, ValueError, "n_traj must be >= 1"),
        (5.0, 10, TypeError, "n_traj must be an int"),
        (5, 10.0, TypeError, "T must be an int"),
        (True, 10, TypeError, "n_traj must be an int"),
        ("5", 10, TypeError, "n_traj must be an int"),
    ],
)
def test_bad_sizes(n_traj, T, exc, match):
    with pytest.raises(exc, match=match):
        simulate(n_traj, T)
    with pytest.raises(exc, match=match):
        simulate_lti(n_traj, T, LTI, make_generator(0))


def test_bad_seed():
    with pytest.raises(ValueError, match="seed must be >= 0"):
        simulate(2, 5, seed=-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        simulate(2, 5, seed=1.5)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"n_neurons": 0}, ValueError, "n_neurons must be >= 2"),
        ({"n_neurons": 1}, ValueError, "n_neurons must be >= 2"),
        ({"n_neurons": 15.0}, TypeError, "n_neurons must be an int"),
        ({"n_neurons": True}, TypeError, "n_neurons must be an int"),
        ({"gain_min": 9.6, "gain_max": 6.4}, ValueError, "gain_min <= gain_max"),
        ({"gain_min": -1.0}, ValueError, "gain_min <= gain_max"),
        ({"gain_min": math.nan}, ValueError, "gain_min"),
        ({"s_min": 1.0, "s_max": -1.0}, ValueError, "s_max > s_min"),
        ({"fwhm": 0.0}, ValueError, "fwhm must be > 0"),
    ],
)
def test_bad_ppc_config(kw, exc, match):
    with pytest.raises(exc, match=match):
        PPCConfig(**kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"process_var": (-5e-7, 5e-5)}, "process_var"),
        ({"process_var": (5e-7, -1.0)}, "process_var"),
        ({"process_var": (5e-7,)}, "process_var"),
        ({"dt": 0.0}, "dt must be > 0"),
        ({"mass": -5.0}, "mass must be > 0"),
        ({"pos_min": 0.0, "pos_max": 0.1, "init_margin": 0.05}, "init_margin"),
    ],
)
def test_bad_lti_config(kw, match):
    with pytest.raises(ValueError, match=match):
        LTIConfig(**kw)


def test_nan_process_var_rejected():
    with pytest.raises(ValueError, match="process_var"):
        LTIConfig(process_var=(math.nan, 5e-5))

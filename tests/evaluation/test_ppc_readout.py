"""Population-code readout and scoring (Sources §3, §5.6): circular centre of mass, torus MSE."""

import math

import numpy as np
import pytest
import torch

from tlr.data.lds_ppc import PPCConfig, simulate, tuning_curves
from tlr.evaluation.ppc import CoMEstimate, center_of_mass, check_counts, torus_mse, wrap_error

F64 = dict(dtype=torch.float64)
PPC = PPCConfig()
N = PPC.n_neurons
DELTA = PPC.spacing
P = PPC.period



def _ring_dist(a: torch.Tensor, b) -> torch.Tensor:
    return wrap_error(torch.as_tensor(a, **F64) - torch.as_tensor(b, **F64), P).abs()


# ------------------------------------------------------------------------------ centre of mass


def test_noiseless_peak_recovered_everywhere_on_ring():
    seam = PPC.s_min  # neuron 1 at s_min; neuron 15 one spacing below it on the ring
    special = torch.tensor([seam, seam - DELTA / 2, seam - 1e-9, seam + 1e-9, seam + P - 1e-9,
                            PPC.s_max, PPC.s_max + DELTA / 4, 0.0], **F64)
    s = torch.cat([torch.linspace(-3 * P, 3 * P, 3001, **F64), special, PPC.preferred,
                   PPC.preferred + DELTA / 2])
    rates = 8.0 * tuning_curves(s, PPC)
    est = center_of_mass(rates, PPC, integer=False)
    assert isinstance(est, CoMEstimate)
    assert est.s_hat.shape == s.shape and est.s_hat.dtype == torch.float64
    # The estimate lies on the ring window ...
    assert (est.s_hat >= PPC.s_min).all() and (est.s_hat < PPC.s_min + P).all()
    # ... and equals the stimulus modulo the period (noiseless hills: error ~1e-8 rad).
    assert _ring_dist(est.s_hat, s).max() < 1e-7
    torch.testing.assert_close(est.total, rates.sum(-1))
    torch.testing.assert_close(est.obs_var, PPC.tuning_std**2 / rates.sum(-1))


def test_gain_does_not_move_the_estimate():
    s = torch.linspace(-1.0, 1.0, 11, **F64)
    f = tuning_curves(s, PPC)
    a = center_of_mass(6.4 * f, PPC, integer=False).s_hat
    b = center_of_mass(9.6 * f, PPC, integer=False).s_hat
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_hill_split_across_the_seam():
    """Equal counts on neuron 15 (s = π/3) and neuron 1 (s = -π/3, i.e. π/3 + spacing on the
    ring): the centre of mass is half a spacing above π/3, not the linear mean 0."""
    y = torch.zeros(N)
    y[14], y[0] = 5, 5
    est = center_of_mass(y, PPC)
    assert _ring_dist(est.s_hat, math.pi / 3 + DELTA / 2) < 1e-12
    assert abs(est.s_hat.item()) > 1.0  # a non-circular CoM would give ≈ 0
    assert est.total.item() == 10


def test_asymmetric_hill_across_the_seam():
    y = torch.zeros(2, N)
    y[0, 14], y[0, 0], y[0, 1] = 3, 6, 1  # peak on neuron 1
    y[1, 13], y[1, 14], y[1, 0] = 1, 6, 3  # peak on neuron 15
    est = center_of_mass(y, PPC)
    # Unwrapped positions: neuron 15 sits at s_min - Δ on neuron 1's sheet.
    expected0 = (3 * (PPC.s_min - DELTA) + 6 * PPC.s_min + 1 * (PPC.s_min + DELTA)) / 10
    expected1 = (1 * (PPC.s_max - DELTA) + 6 * PPC.s_max + 3 * (PPC.s_max + DELTA)) / 10
    assert _ring_dist(est.s_hat[0], expected0) < 1e-12
    assert _ring_dist(est.s_hat[1], expected1) < 1e-12
    # The two hills are mirror images about the seam point s_max + Δ/2.
    seam_point = PPC.s_max + DELTA / 2
    assert _ring_dist(est.s_hat[0] - seam_point, seam_point - est.s_hat[1]) < 1e-12


def test_interior_centre_of_mass_is_the_plain_weighted_mean():
    y = torch.zeros(N)
    y[5], y[6], y[7] = 2, 7, 4
    expected = (y * PPC.preferred).sum() / y.sum()
    assert _ring_dist(center_of_mass(y, PPC).s_hat, expected) < 1e-12


def test_integer_dtypes_accepted():
    d = simulate(3, 20, seed=2)
    a = center_of_mass(d.y, PPC)
    b = center_of_mass(d.y.long(), PPC)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_zero_count_rows():
    y = torch.zeros(4, 3, N)
    y[0, 0, 3] = 2
    y[2, 1, 7:9] = 1
    est = center_of_mass(y, PPC)
    zero = y.sum(-1) == 0
    assert torch.isinf(est.obs_var[zero]).all() and (est.obs_var[zero] > 0).all()
    assert torch.isfinite(est.obs_var[~zero]).all()
    for x in est:
        assert not torch.isnan(x).any()
    assert torch.isfinite(est.s_hat).all()
    assert (est.total[zero] == 0).all()
    torch.testing.assert_close(est.s_hat[zero],
                               torch.full_like(est.s_hat[zero], PPC.s_min + P / 2))
    assert _ring_dist(est.s_hat[0, 0], PPC.preferred[3]) < 1e-12


def test_readout_is_calibrated():
    """The Gaussian likelihood of Sources §3.1: squared errors / (σ_tc²/Σy) average to ~1."""
    d = simulate(40, 500, seed=5, stream="tests/calib")
    est = center_of_mass(d.y, PPC)
    e2 = wrap_error(est.s_hat - d.position, P) ** 2
    z2 = e2 / est.obs_var
    se = z2.std() / math.sqrt(z2.numel())
    assert abs(z2.mean().item() - 1.0) < max(5 * se.item(), 0.03)


# ------------------------------------------------------------------------------ count checking


@pytest.mark.parametrize(
    "y, kw, exc, match",
    [
        (torch.tensor([[1.0] * 14 + [-1.0]]), {}, ValueError, "non-negative"),
        (torch.tensor([[1] * 14 + [-2]]), {}, ValueError, "non-negative"),
        (torch.tensor([[1.0] * 14 + [-0.5]]), {"integer": False}, ValueError, "non-negative"),
        (torch.tensor([[1.0] * 14 + [0.5]]), {}, ValueError, "integer spike counts"),
        (torch.ones(3, 14), {}, ValueError, r"shape \(\.\.\., 15\)"),
        (torch.ones(15, 3), {}, ValueError, r"shape \(\.\.\., 15\)"),
        (torch.ones(4, 0), {}, ValueError, r"shape \(\.\.\., 15\)"),
        (torch.tensor(3.0), {}, ValueError, r"shape \(\.\.\., 15\)"),
        (torch.tensor([[1.0] * 14 + [math.nan]]), {}, ValueError, "NaN or Inf"),
        (torch.tensor([[1.0] * 14 + [math.inf]]), {}, ValueError, "NaN or Inf"),
        (torch.tensor([[1.0] * 14 + [math.inf]]), {"integer": False}, ValueError, "NaN or Inf"),
        ([[1.0] * 15], {}, TypeError, "must be a torch.Tensor"),
        (np.ones((2, 15)), {}, TypeError, "must be a torch.Tensor"),
        (torch.ones(2, 15, dtype=torch.bool), {}, TypeError, "real-valued"),
        (torch.ones(2, 15, dtype=torch.complex64), {}, TypeError, "real-valued"),
    ],
)
def test_center_of_mass_bad_input(y, kw, exc, match):
    with pytest.raises(exc, match=match):
        center_of_mass(y, PPC, **kw)


def test_non_integer_rates_allowed_when_asked():
    y = torch.full((2, N), 0.25)
    est = center_of_mass(y, PPC, integer=False)
    assert torch.isfinite(est.s_hat).all()


def test_check_counts_zero_neurons():
    with pytest.raises(ValueError, match="zero neurons"):
        check_counts(torch.zeros(3, 0), 0)
    with pytest.raises(ValueError, match=r"spikes must have shape \(\.\.\., 4\)"):
        check_counts(torch.zeros(3, 5), 4, name="spikes")
    check_counts(torch.zeros(3, 4), 4)  # valid: no error


# ----------------------------------------------------------------------------------- torus MSE


def test_wrap_error_range():
    e = torch.linspace(-5 * P, 5 * P, 10001, **F64)
    w = wrap_error(e, P)
    assert (w >= -P / 2).all() and (w < P / 2).all()
    k = (e - w) / P
    torch.testing.assert_close(k, k.round(), rtol=0, atol=1e-9)


def test_torus_mse_wraps_whole_periods():
    s = torch.linspace(-1.0, 1.0, 101, **F64)
    for k in (1, -1, 3):
        assert torus_mse(s + k * P, s, P) < 1e-24
    # Small errors on top of whole periods: the MSE of the small errors.
    e = 0.01 * torch.sin(torch.arange(101, **F64))
    assert math.isclose(torus_mse(s + e + 2 * P, s, P), float((e**2).mean()), rel_tol=1e-9)


def test_torus_mse_uses_smallest_error():
    s = torch.zeros(10, **F64)
    # 0.6 periods off is 0.4 periods off the other way round.
    assert math.isclose(torus_mse(s + 0.6 * P, s, P), (0.4 * P) ** 2, rel_tol=1e-12)
    assert math.isclose(torus_mse(s + 0.3 * P, s, P), (0.3 * P) ** 2, rel_tol=1e-12)


def test_torus_mse_shapes_and_types():
    s32 = torch.zeros(4, 3, dtype=torch.float32)
    assert isinstance(torus_mse(s32, s32.double() + 0.1, P), float)
    with pytest.raises(ValueError, match="shape mismatch"):
        torus_mse(torch.zeros(4, 3), torch.zeros(3, 4), P)
    with pytest.raises(ValueError, match="empty"):
        torus_mse(torch.zeros(0), torch.zeros(0), P)
    with pytest.raises(ValueError, match="NaN or Inf"):
        torus_mse(torch.tensor([math.nan]), torch.tensor([0.0]), P)
    with pytest.raises(TypeError, match="must be tensors"):
        torus_mse([0.0], torch.tensor([0.0]), P)


def test_torus_mse_rejects_nan_truth():
    with pytest.raises(ValueError, match="NaN or Inf"):
        torus_mse(torch.tensor([0.0, 0.1]), torch.tensor([0.0, math.nan]), P)


# ----------------------------------------------------------------------- ORDER 0 regression


def test_order0_regression():
    """Sources §3.4 / §12.3: ORDER 0 on the canonical 40 x 1000 test set ≈ 1.19e-3 rad²."""
    d = simulate(40, 1000, seed=0, stream="ppc/test")
    mse = torus_mse(center_of_mass(d.y, PPC).s_hat, d.position, P)
    assert abs(mse - 1.19e-3) < 0.08 * 1.19e-3

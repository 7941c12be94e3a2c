"""The PPC baselines of Table 1 on the quick preset, seed 0 (Sources §3.4, §4, §12.3).

Reference values are the spec's re-simulation numbers (§12.3), with tolerances that allow
for a different random draw of the same 40 x 1000 test set.
"""

import math

import pytest
import torch

from tlr.data.lds_ppc import LTIConfig, PPCConfig, simulate
from tlr.evaluation.ppc import center_of_mass, wrap_error
from tlr.experiments import ppc as exp
from tlr.filters.baselines import (
    centred_observations,
    kf_true,
    kf_true_params,
    order0,
    run_kf,
)

MODELS = ["ORDER 0", "KF-1", "KF-2", "KF-true"]
LTI, PPC = LTIConfig(), PPCConfig()


@pytest.fixture(scope="module")
def results():
    """All four baselines once (~10 s; single-threaded via conftest.py)."""
    return exp.run(MODELS, "quick", seed=0, progress=False)


def test_result_structure(results):
    assert list(results) == MODELS
    for name, r in results.items():
        assert isinstance(r["mse"], float) and math.isfinite(r["mse"]), name
        assert isinstance(r["train_s"], float) and r["train_s"] >= 0, name
        assert isinstance(r["info"], dict)
    assert results["ORDER 0"]["train_s"] == 0.0 and results["KF-true"]["train_s"] == 0.0
    preset = exp.PRESETS["quick"]
    for name in ("KF-1", "KF-2"):
        info = results[name]["info"]
        assert results[name]["train_s"] > 0
        assert info["em_converged"] is True, info
        assert 1 <= info["em_iterations"] < preset.em_max_iter


def test_order0(results):
    assert abs(results["ORDER 0"]["mse"] - 1.19e-3) < 0.08 * 1.19e-3


def test_kf_true(results):
    assert 1.3e-4 <= results["KF-true"]["mse"] <= 1.65e-4  # spec: ≈ 1.47e-4


def test_kf1(results):
    assert 5.5e-4 <= results["KF-1"]["mse"] <= 6.6e-4  # spec: 5.7e-4 to 6.3e-4


def test_kf2(results):
    assert 1.4e-4 <= results["KF-2"]["mse"] <= 1.8e-4  # spec: ≈ 1.61e-4


def test_ordering(results):
    mse = {k: v["mse"] for k, v in results.items()}
    assert mse["KF-true"] < mse["KF-2"] < mse["KF-1"] < mse["ORDER 0"], mse


# -------------------------------------------------- cheap unit checks of the baseline pieces


@pytest.fixture(scope="module")
def small():
    return simulate(8, 300, seed=3, stream="tests/baselines")


def test_order0_is_the_centre_of_mass(small):
    torch.testing.assert_close(order0(small.y, PPC), center_of_mass(small.y, PPC).s_hat)


def test_centred_observations_window(small):
    s_hat, obs_var = centred_observations(small.y, LTI, PPC)
    c = 0.5 * (LTI.pos_min + LTI.pos_max)
    assert (s_hat >= c - PPC.period / 2).all() and (s_hat < c + PPC.period / 2).all()
    com = center_of_mass(small.y, PPC)
    assert wrap_error(s_hat - com.s_hat, PPC.period).abs().max() < 1e-12
    torch.testing.assert_close(obs_var, com.obs_var)
    # Every start position lies inside the window, so ŝ_1 lands on the start's own sheet.
    assert (s_hat[0] - small.position[0]).abs().max() < 0.3


def test_kf_true_params():
    p = kf_true_params(LTI)
    torch.testing.assert_close(p.A, LTI.A)
    torch.testing.assert_close(p.Q, LTI.Q)
    torch.testing.assert_close(p.C, torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    assert p.init_cov[0, 0] >= 1e6 and math.isclose(p.init_cov[1, 1].item(), 5e-10)
    assert (p.init_mean == 0).all()


def test_kf_true_first_estimate_copies_first_observation(small):
    s_hat, _ = centred_observations(small.y, LTI, PPC)
    est = kf_true(small.y, LTI, PPC)
    assert est.shape == small.position.shape
    assert (est[0] - s_hat[0]).abs().max() < 1e-9  # diffuse prior on position


def test_kf_true_beats_order0_on_small_data(small):
    e_kf = wrap_error(kf_true(small.y, LTI, PPC) - small.position, PPC.period)
    e_o0 = wrap_error(order0(small.y, PPC) - small.position, PPC.period)
    assert (e_kf**2).mean() < 0.3 * (e_o0**2).mean()


def test_gain_aware_true_params_is_kf_true(small):
    """A fitted LDS equal to the true one, run gain-aware, is exactly KF-true."""
    est = run_kf(kf_true_params(LTI), small.y, LTI, PPC, gain_aware=True)
    torch.testing.assert_close(est, kf_true(small.y, LTI, PPC))
    # ... and not gain-aware, the constant R (1 here) gives a different filter
    assert (run_kf(kf_true_params(LTI), small.y, LTI, PPC) - est).abs().max() > 1e-3

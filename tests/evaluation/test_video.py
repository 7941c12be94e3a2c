"""Video metrics (tlr.evaluation.video, used by the Moving MNIST experiment): centre of mass,
rollout metrics, the ring-shift baseline, state probes."""

from types import SimpleNamespace

import pytest
import torch

from tlr.data.moving_mnist import MovingMNISTConfig, simulate_moving_mnist
from tlr.evaluation.video import (
    centre_of_mass,
    motion_ratio_se,
    ring_predictions,
    rollout_metrics,
    state_probes,
)
from tlr.experiments.mnist import to_time_major


def test_centre_of_mass_and_rollout_metrics_on_known_motion():
    S = 16
    img = torch.zeros(4, 1, S, S)
    for t in range(4):
        img[t, 0, 5, 3 + 2 * t] = 1.0  # a dot moving 2 px right per frame
    y = img.reshape(4, 1, S * S)
    assert torch.allclose(centre_of_mass(y[1], S), torch.tensor([[5.0, 5.0]]), atol=1e-4)
    perfect = rollout_metrics(y[1:], y[1:], y[0], S)
    assert perfect["com_corr"] == pytest.approx(1.0) and perfect["motion_ratio"] == pytest.approx(1)
    assert perfect["com_err_px"] < 1e-4 and perfect["mse"] == 0 and perfect["mass_ratio"] == 1
    frozen = rollout_metrics(y[:1].expand(3, -1, -1), y[1:], y[0], S)
    assert frozen["motion_ratio"] == 0 and frozen["com_corr"] == 0
    assert frozen["com_err_px"] == pytest.approx(frozen["frozen_com_err_px"])
    assert frozen["com_err_px"] == pytest.approx((2 + 4 + 6) / 3, abs=1e-4)
    with pytest.raises(ValueError):
        rollout_metrics(y[1:], y[:2], y[0], S)


def test_motion_ratio_se_matches_the_spread_over_repeated_test_sets():
    g = torch.Generator().manual_seed(0)
    d_true = torch.randn(10, 50, 2, generator=g, dtype=torch.float64)
    assert motion_ratio_se(0.7 * d_true, d_true) == pytest.approx(0, abs=1e-12)  # same in each

    def draw():  # generated = 0.5 x the truth + noise, 50 sequences of 10 steps
        d = torch.randn(10, 50, 2, generator=g, dtype=torch.float64)
        return 0.5 * d + torch.randn(d.shape, generator=g, dtype=torch.float64), d

    ratios, ses = [], []
    for _ in range(2000):
        d_gen, d = draw()
        ratios.append(((d_gen * d).sum() / d.pow(2).sum()).item())
        ses.append(motion_ratio_se(d_gen, d))
    spread = torch.tensor(ratios).std().item()  # the ratio's true spread over test sets
    assert sum(ses) / len(ses) == pytest.approx(spread, rel=0.05)
    with pytest.raises(ValueError, match="at least 2"):
        motion_ratio_se(d_gen[:, :1], d[:, :1])
    with pytest.raises(ValueError, match="same shape"):
        motion_ratio_se(d_gen, d[:5])


def test_ring_predictions_is_a_shift_average():
    S = 16
    y = torch.zeros(2, 1, S * S)
    y[0, 0, 8 * S + 8] = 1.0
    p = ring_predictions(y, S, radius=2.0, n_angles=4).reshape(S, S)
    # four shifts of exactly 2 px: a quarter of the dot at each
    for r, c in ((8, 10), (10, 8), (8, 6), (6, 8)):
        assert p[r, c] == pytest.approx(0.25, abs=1e-5)
    assert p.sum() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError):
        ring_predictions(y, S + 1, radius=2.0)


def test_state_probes_tell_position_from_velocity():
    """A state holding CoM(y_t) and CoM(y_t) - CoM(y_{t-1}) has both (R² 1); one holding only
    CoM(y_t) has the position but not the velocity."""
    cfg = MovingMNISTConfig.small()

    def data(stream):
        return to_time_major(simulate_moving_mnist(60, 0, cfg, stream=stream))

    def com(y):
        return centre_of_mass(y, cfg.image_size)

    def both(y):
        c = com(y)
        return torch.cat([c, torch.cat([torch.zeros_like(c[:1]), c.diff(dim=0)])], dim=-1)

    full = state_probes(SimpleNamespace(filter=both), data("a"), data("b"), cfg.image_size)
    assert full["position_r2"] > 0.999 and full["velocity_r2"] > 0.999
    pos = state_probes(SimpleNamespace(filter=com), data("a"), data("b"), cfg.image_size)
    assert pos["position_r2"] > 0.999 and pos["velocity_r2"] < 0.2

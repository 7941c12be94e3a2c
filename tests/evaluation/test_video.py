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
    velocity_free_references,
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


def dots(positions: torch.Tensor, side: int) -> torch.Tensor:
    """Frames (T, B, side²) each holding one dot of unit mass at a real (row, col) position
    (T, B, 2), spread bilinearly over four pixels, so that its centre of mass is the position."""
    T, B, _ = positions.shape
    frames = torch.zeros(T, B, side, side, dtype=torch.float64)
    r0, c0 = positions.floor().long().unbind(-1)
    fr, fc = (positions - positions.floor()).unbind(-1)
    t, b = torch.meshgrid(torch.arange(T), torch.arange(B), indexing="ij")
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        frames[t, b, r0 + dr, c0 + dc] += w
    return frames.reshape(T, B, side * side)


def test_velocity_free_references_recover_a_pull_and_score_the_blank_frame():
    side, C, S = 16, 3, 4
    middle = (side - 1) / 2
    g = torch.Generator().manual_seed(0)
    p_true = torch.tensor([0.1, 0.25, 0.4, 0.5], dtype=torch.float64)

    def pulled(B: int) -> torch.Tensor:  # C context frames anywhere, then a pull by p_true
        start = 2 + 11 * torch.rand(C, B, 2, generator=g, dtype=torch.float64)
        after = start[-1] + p_true[:, None, None] * (middle - start[-1])
        return torch.cat([start, after])

    y_fit, y_test = dots(pulled(40), side), dots(pulled(30), side)
    blank, pull = velocity_free_references(y_test, y_fit, 0.01, C, S, side)
    assert pull["p"] == pytest.approx(p_true.tolist(), abs=1e-5)  # the fit finds the pull
    assert pull["motion_ratio"] == pytest.approx(1, abs=1e-5) and pull["com_err_px"] < 1e-4
    assert blank == rollout_metrics(torch.full_like(y_test[C:], 0.01), y_test[C:], y_test[C - 1],
                                    side) | {k: blank[k] for k in ("motion_ratio_se",
                                                                    "com_err_se_px")}
    com = centre_of_mass(y_test, side)  # the blank frame: the middle at once, by hand
    d_true, d_blank = com[C:] - com[C - 1], (middle - com[C - 1]).expand(S, -1, -1)
    assert blank["motion_ratio"] == pytest.approx(
        ((d_blank * d_true).sum() / d_true.pow(2).sum()).item())
    err = (d_blank - d_true).norm(dim=-1).mean(0)
    assert blank["com_err_se_px"] == pytest.approx((err.std() / 30**0.5).item())
    assert blank["motion_ratio_se"] == pytest.approx(motion_ratio_se(d_blank, d_true))
    with pytest.raises(ValueError, match="T >= n_context"):
        velocity_free_references(y_test[:C + 2], y_fit, 0.01, C, S, side)
    with pytest.raises(ValueError, match="at least 2"):
        velocity_free_references(y_test[:, :1], y_fit, 0.01, C, S, side)


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

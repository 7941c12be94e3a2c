"""The Moving MNIST experiment (spec §10): every model end to end on a tiny preset, rollouts,
the rollout check, baselines, seeding, bad inputs."""

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from tlr.data.moving_mnist import MovingMNISTConfig, simulate_moving_mnist
from tlr.experiments.mnist import (
    MODELS,
    PRESETS,
    VAERun,
    centre_of_mass,
    ring_predictions,
    rollout,
    rollout_metrics,
    run,
    state_probes,
    to_time_major,
)
from tlr.models.conv_rvae import ConvRVAE, ConvRVAEConfig
from tlr.train import OptimConfig

TINY = replace(
    PRESETS["quick"], name="tiny", data=MovingMNISTConfig.small(num_frames=6), n_test=3,
    n_context=3, n_rollout_seq=2, n_gibbs=2,
    vae=VAERun(n_latent=4, channels=(4, 8), n_units=16, n_epochs=2, n_seq=4, batch=2, window=3,
               eval_every=1, n_val=2, optim=OptimConfig("adam", lr=1e-3)),
)


@pytest.fixture(scope="module")
def results():
    return run(None, TINY, seed=0, progress=False)


def test_every_model_runs_and_returns_the_contract(results):
    assert list(results) == list(MODELS) == ["ORDER 0", "rVAE", "TVAE", "rVAE-BPTT"]
    for name, r in results.items():
        assert set(r) == {"mse", "train_s", "info"}
        assert math.isfinite(r["mse"]) and r["mse"] >= 0 and r["train_s"] >= 0
        ro = r["info"]["rollout"]
        assert len(ro["mse_per_step"]) == 6 - 3  # context 3 of 6 frames
        assert ro["frozen_mse"] == results["ORDER 0"]["info"]["rollout"]["frozen_mse"]
        if name == "ORDER 0":
            assert ro["com_corr"] == 0 and ro["motion_ratio"] == 0 and r["train_s"] == 0
            assert r["info"]["mse_mean_frame"] > 0 and r["info"]["mse_ring_copy"] > 0
            continue
        info = r["info"]
        for k in ("elbo_per_frame", "kl_per_frame", "nll_y_per_frame", "mse_gibbs", "mse_gibbs0",
                  "mse_reconstruction", "mse_decode_prev", "wall_s"):
            assert math.isfinite(info[k])
        assert set(info["probes"]) == {"position_r2", "velocity_r2"}
        ex = torch.tensor(info["rollout_example"])  # first sequence's generated frames, 0-255
        assert ex.shape == (6 - 3, 32 * 32) and 0 <= ex.min() <= ex.max() <= 255
        assert info["updates"] == 2 * 2 * 2  # 2 epochs x 2 minibatches x 2 windows of 3 steps
        assert info["curve"]["epochs"] == [1, 2] and len(info["curve"]["val_elbo_per_frame"]) == 2
    assert results["TVAE"]["info"]["nll_u_per_frame"] == 0  # u is not reconstructed


def test_fixed_training_set():
    tiny = replace(TINY, vae=replace(TINY.vae, n_train=3, batch=2))
    out = run(["rVAE"], tiny, seed=0)["rVAE"]
    assert math.isfinite(out["mse"]) and out["info"]["updates"] == 2 * 2 * 2  # 3 seqs: 2 batches


def test_order0_matches_the_generator_baseline(results):
    from tlr.data.moving_mnist import order0_mse
    from tlr.experiments.mnist import make_data

    test = make_data(TINY, 0).test  # (T, B, H·W) → back to (B, T, ...) for order0_mse
    assert results["ORDER 0"]["mse"] == pytest.approx(order0_mse(test.transpose(0, 1)))


def test_same_seed_same_numbers():
    names = ["ORDER 0", "rVAE"]
    a, b = run(names, TINY, seed=3), run(names, TINY, seed=3)
    c = run(names, TINY, seed=4)
    assert all(a[m]["mse"] == b[m]["mse"] for m in names)
    assert a["rVAE"]["info"]["rollout"] == b["rVAE"]["info"]["rollout"]
    assert a["ORDER 0"]["mse"] != c["ORDER 0"]["mse"]


def test_rollout_shapes_and_determinism():
    frames = to_time_major(simulate_moving_mnist(2, 0, MovingMNISTConfig.small(num_frames=5)))
    assert frames.shape == (5, 2, 32 * 32)
    m = ConvRVAE(ConvRVAEConfig(n_latent=4, channels=(4, 8), n_units=16),
                 generator=torch.Generator().manual_seed(0))
    a = rollout(m, frames[:3], 4, generator=torch.Generator().manual_seed(1))
    b = rollout(m, frames[:3], 4, generator=torch.Generator().manual_seed(1))
    assert a.shape == (4, 2, 32 * 32) and torch.equal(a, b) and torch.all((a >= 0) & (a <= 1))
    # the last context frame is filtered, then the model runs on its own output
    u = m.filter(frames[:3])[-1]
    assert torch.allclose(a[0], m.predict_next(u))
    with pytest.raises(ValueError, match="n_steps"):
        rollout(m, frames[:3], 0)
    with pytest.raises(ValueError, match="y_context"):
        rollout(m, frames[0], 2)


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


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown model"):
        run(["rEFH"], TINY)
    with pytest.raises(ValueError, match="unknown preset"):
        run(["ORDER 0"], "huge")
    with pytest.raises(TypeError):
        run(["ORDER 0"], 3)
    with pytest.raises(ValueError, match="n_context"):
        run(["ORDER 0"], replace(TINY, n_context=6))
    with pytest.raises(ValueError, match="frames"):
        to_time_major(torch.zeros(2, 3, 4))


def test_presets():
    assert {"quick", "paper"} <= set(PRESETS)
    q, p = PRESETS["quick"], PRESETS["paper"]
    assert q.data == MovingMNISTConfig.small() and p.data == MovingMNISTConfig()
    assert p.vae.optim.lr == 1e-4 and p.vae.batch == 80  # poster's Adam; authors' minibatch


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

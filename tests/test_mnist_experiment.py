"""The Moving MNIST experiment (Sources §10): every model end to end on a tiny preset, rollouts,
the rollout check, baselines, seeding, bad inputs."""

import math
from dataclasses import replace

import pytest
import torch

from tlr.data.moving_mnist import MovingMNISTConfig, simulate_moving_mnist
from tlr.evaluation.prediction import rollout
from tlr.experiments.mnist import (
    MODELS,
    PRESETS,
    VAERun,
    run,
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
    assert list(results) == list(MODELS) == ["ORDER 0", "rVAE", "TVAE", "rVAE-BPTT", "rVAE-β"]
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
    # the rate of each latent coordinate (rVAEs only: the TVAE's prior is not N(0, I)) adds up
    # to the KL of the bound, the same posteriors
    assert "rate_per_dim" not in results["TVAE"]["info"]
    for name in ("rVAE", "rVAE-BPTT", "rVAE-β"):
        info = results[name]["info"]
        assert len(info["rate_per_dim"]) == TINY.vae.n_latent and min(info["rate_per_dim"]) >= 0
        assert math.isclose(sum(info["rate_per_dim"]), info["kl_per_frame"], rel_tol=1e-5)


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

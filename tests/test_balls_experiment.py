"""The bouncing-balls experiment end to end on a tiny preset (Sources §9.5-9.7)."""

import dataclasses
import math

import pytest
import torch

from tlr.experiments import balls as B

TINY = dataclasses.replace(
    B.PRESETS["quick"], name="tiny", T=12, n_test=3, n_val=2, n_gibbs=2, eval_every=1,
    harmonium=dataclasses.replace(B.PRESETS["quick"].harmonium, n_hidden=16, n_cd_steps=2,
                                  n_epochs=2, n_seq=3, n_pretrain=2),
    vae=dataclasses.replace(B.PRESETS["quick"].vae, n_latent=4, n_units=16, n_epochs=2,
                            n_seq=4, batch=2, window=4),
)


@pytest.fixture(scope="module")
def results():
    return B.run(None, TINY, seed=0, progress=False)


def test_every_model_runs(results):
    assert list(results) == list(B.MODELS)
    for name, r in results.items():
        assert math.isfinite(r["mse"]) and 0 < r["mse"] < 1, name
    for name in ("rEFH", "TRBM", "RTRBM", "rVAE", "TVAE", "rVAE-BPTT", "rVAE-β"):
        info = results[name]["info"]
        assert info["epochs"] == [1, 2] and len(info["curve"]) == 2 and info["n_gibbs"] == 2
        # the rollout check and the state probes (frames 10 and 11 follow the 10-frame context)
        assert math.isfinite(info["rollout"]["motion_ratio"]), name
        assert len(info["rollout"]["mse_per_step"]) == 2, name
        assert set(info["probes"]) == {"position_r2", "velocity_r2"}, name
        assert len(info["rollout_example"]) == 2 and len(info["rollout_example"][0]) == 900
    assert results["rEFH"]["info"]["updates"] == 2 * 3
    assert results["rVAE"]["info"]["updates"] == 2 * 2 * 3  # 2 batches x 3 windows per epoch
    for name in ("rEFH", "TRBM", "RTRBM"):  # chains started from y_{t-1}: a diagnostic
        info = results[name]["info"]
        assert 0 < info["mse_from_previous"] < 1 and 0 < info["mse_from_previous_0"] < 1
    assert "mse_from_previous" not in results["rVAE"]["info"]
    for name in ("rVAE", "rVAE-BPTT", "rVAE-β"):  # the rate of each latent coordinate
        rates = results[name]["info"]["rate_per_dim"]
        assert len(rates) == TINY.vae.n_latent and min(rates) >= 0, name
    assert all("rate_per_dim" not in results[n]["info"] for n in ("rEFH", "TVAE"))


def test_resolution_sets_the_frame_size():
    small = dataclasses.replace(TINY, resolution=15)
    assert B.test_data(small, 0).shape == (12, 3, 225)
    assert B.build_model("rEFH", small).config.n_obs == 225
    r = B.run(["ORDER 0", "rEFH"], small, seed=0, progress=False)
    assert 0 < r["rEFH"]["mse"] < 1


def test_val_data_is_seeded_and_apart_from_the_test_set():
    val = B.val_data(TINY, 0)
    assert val.shape == (TINY.T, TINY.n_val, TINY.balls.n_pixels)
    assert torch.equal(val, B.val_data(TINY, 0))
    assert not torch.equal(val, B.test_data(TINY, 0)[:, :TINY.n_val])


def test_order0_is_the_generator_baseline(results):
    from tlr.data.balls import order0_mse

    test = B.test_data(TINY, 0)
    assert results["ORDER 0"]["mse"] == pytest.approx(order0_mse(test.transpose(0, 1)))


def test_same_seed_same_numbers(results):
    again = B.run(["rEFH", "rVAE"], TINY, seed=0, progress=False)
    for name in again:
        assert again[name]["mse"] == results[name]["mse"]


def test_bad_names():
    with pytest.raises(ValueError, match="unknown model"):
        B.run(["nope"], TINY)
    with pytest.raises(ValueError, match="unknown preset"):
        B.run(["ORDER 0"], "huge")
    with pytest.raises(ValueError, match="unknown model"):
        B.build_model("nope", TINY)


def test_rvae_beta_is_the_rvae_with_a_weighted_kl():
    """Same sizes, initial weights and streams as the rVAE: with β = 1 and no warm-up it is
    the rVAE, number for number; the registry's β makes it another model."""
    names = ["rVAE", "rVAE-β"]
    plain = dataclasses.replace(TINY, vae=dataclasses.replace(
        TINY.vae, beta_kl_weight=1.0, beta_kl_warmup=0, beta_kl_weight0=0.0))
    r = B.run(names, plain, seed=0, progress=False)
    assert r["rVAE"]["mse"] == r["rVAE-β"]["mse"]
    beta = B.build_model("rVAE-β", TINY)
    assert beta.name == "rVAE-β" and beta.config.kl_weight == TINY.vae.beta_kl_weight
    assert beta.config.n_latent == B.build_model("rVAE", TINY).config.n_latent
    for name, p in B.PRESETS.items():  # the warm-up spans the first half of training
        v = p.vae
        updates = v.n_epochs * (v.n_seq // v.batch) * (p.T // v.window)
        assert v.beta_kl_warmup == updates // 2, name

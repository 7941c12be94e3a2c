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
    for name in ("rEFH", "TRBM", "RTRBM", "rVAE", "TVAE", "rVAE-BPTT"):
        info = results[name]["info"]
        assert info["epochs"] == [1, 2] and len(info["curve"]) == 2 and info["n_gibbs"] == 2
    assert results["rEFH"]["info"]["updates"] == 2 * 3
    assert results["rVAE"]["info"]["updates"] == 2 * 2 * 3  # 2 batches x 3 windows per epoch
    for name in ("rEFH", "TRBM", "RTRBM"):  # chains started from y_{t-1}: a diagnostic
        info = results[name]["info"]
        assert 0 < info["mse_from_previous"] < 1 and 0 < info["mse_from_previous_0"] < 1
    assert "mse_from_previous" not in results["rVAE"]["info"]


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

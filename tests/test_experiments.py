"""Every model registered for the PPC experiment runs end to end on a tiny preset."""

import math
from dataclasses import replace

import pytest

from tlr.experiments.ppc import MODELS, PRESETS, HarmoniumRun, VAERun, run
from tlr.train import OptimConfig

TINY = replace(
    PRESETS["quick"], name="tiny", n_test=2, T_test=60, n_train=2, T_train=60, em_max_iter=3,
    refh=HarmoniumRun(n_hidden=8, n_epochs=1, n_traj=2, T=30,
                      optim=OptimConfig("adam", lr=1e-3)),
    trbm=HarmoniumRun(n_hidden=8, n_cd_steps=1, n_epochs=1, n_traj=4, T=20, seqs_per_update=2,
                      optim=OptimConfig("makin-hyperbolic")),
    vae=VAERun(n_epochs=1, n_traj=2, T=30, window=5),
)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_runs_and_scores(name):
    out = run([name], TINY, seed=0, progress=False)[name]
    assert math.isfinite(out["mse"]) and out["mse"] >= 0
    assert out["train_s"] >= 0


def test_same_seed_same_numbers_for_trained_models():
    names = ["rEFH", "RTRBM", "rVAE"]
    a, b = run(names, TINY, seed=3), run(names, TINY, seed=3)
    assert all(a[m]["mse"] == b[m]["mse"] for m in names)


def test_restarts_keep_the_best_validation_score_and_restart_0_is_the_plain_run():
    from tlr.experiments.common import final_val

    preset = replace(TINY, vae=replace(TINY.vae, n_epochs=3, restarts=3))
    plain = run(["rVAE"], replace(preset, vae=replace(preset.vae, restarts=1)), seed=1)["rVAE"]
    out = run(["rVAE", "rEFH"], preset, seed=1)
    info = out["rVAE"]["info"]
    listed = info["restarts"]
    assert [r["restart"] for r in listed] == [0, 1, 2]
    assert listed[0]["mse"] == plain["mse"]  # restart 0 draws what a single run draws
    assert len({r["mse"] for r in listed}) == 3  # the others are other initialisations
    best = min(listed, key=lambda r: r["val"])
    assert info["kept_restart"] == best["restart"] and out["rVAE"]["mse"] == best["mse"]
    assert best["val"] == final_val(info["curve"])
    assert out["rVAE"]["train_s"] == pytest.approx(sum(r["train_s"] for r in listed))
    assert "restarts" not in out["rEFH"]["info"]  # harmoniums train once


def test_restarts_must_be_a_positive_int():
    with pytest.raises(ValueError, match="restarts"):
        VAERun(restarts=0)


def test_n_val_sets_the_validation_set():
    from tlr.experiments.ppc import val_data

    assert val_data(TINY, 0).y.shape[1] == 10
    assert val_data(replace(TINY, n_val=3), 0).y.shape[1] == 3
    with pytest.raises(ValueError, match="n_val"):
        val_data(replace(TINY, n_val=0), 0)

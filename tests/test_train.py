"""Training loops: divergence stops with a named step; resume == uninterrupted; schedules."""

import pytest
import torch

from tlr.data import simulate
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM
from tlr.models.trbm import TRBMConfig
from tlr.train import (
    OptimConfig,
    load_checkpoint,
    make_optimizer,
    set_schedule,
    train_online,
    train_sequences,
)


def _data(T=60, B=4):
    return lambda epoch: simulate(B, T, seed=epoch, stream="test-train").y


def _refh_run(n_epochs, checkpoint=None):
    g = torch.Generator().manual_seed(0)
    m = REFH(REFHConfig(n_hidden=12), generator=g)
    h = train_online(m, _data(), n_epochs, OptimConfig("adam", lr=1e-3), g,
                     evaluate=lambda mm: float(mm.efh.W[1].detach().abs().sum()), eval_every=1,
                     checkpoint=checkpoint, progress=False)
    return m, h


def test_resumed_online_run_equals_uninterrupted(tmp_path):
    ref, ref_hist = _refh_run(4)
    ck = tmp_path / "refh.pt"
    _refh_run(2, checkpoint=ck)  # "interrupted" after epoch 2
    assert load_checkpoint(ck, REFH(REFHConfig(n_hidden=12)))[0] == 2
    resumed, hist = _refh_run(4, checkpoint=ck)
    for a, b in zip(ref.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert hist.metric == ref_hist.metric and hist.updates == ref_hist.updates == 4 * 60


def test_resumed_sequence_run_equals_uninterrupted(tmp_path):
    def run(n_epochs, ck=None):
        g = torch.Generator().manual_seed(0)
        m = RTRBM(TRBMConfig(n_hidden=8, n_cd_steps=2), generator=g)
        train_sequences(m, _data(T=20, B=6), n_epochs, OptimConfig("makin-hyperbolic"), g,
                        seqs_per_update=2, checkpoint=ck, progress=False)
        return m

    ref = run(3)
    run(1, tmp_path / "r.pt")
    resumed = run(3, tmp_path / "r.pt")
    for a, b in zip(ref.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    _refh_run(1, checkpoint=tmp_path / "a.pt")
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint(tmp_path / "a.pt", REFH(REFHConfig(n_hidden=13)))


def test_divergence_stops_with_epoch_and_step():
    g = torch.Generator().manual_seed(0)
    m = REFH(REFHConfig(n_hidden=12), generator=g)
    with pytest.raises(FloatingPointError, match=r"epoch 1, step \d+"):
        train_online(m, _data(T=200), 2, OptimConfig("adam", lr=1e3), g, progress=False)


def test_same_seed_same_numbers():
    a, _ = _refh_run(1)
    b, _ = _refh_run(1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_makin_schedules():
    m = REFH(REFHConfig(n_hidden=4))
    exp, hyp = OptimConfig("makin-exp"), OptimConfig("makin-hyperbolic", m0=(1500,) * 5)
    opt = make_optimizer(m, exp)
    set_schedule(opt, exp, 1, 50)
    w_y = opt.param_groups[0]
    assert w_y["lr"] == pytest.approx(1 / (800 * 1.1)) and w_y["momentum"] == pytest.approx(
        0.98 - 0.5 / 1.1)
    assert w_y["lr"] * w_y["weight_decay"] == pytest.approx(2e-6 / 1.1)  # spec §5.4
    assert opt.param_groups[1]["lr"] == pytest.approx(1 / (50 * 1.1))  # recurrent rows
    opt = make_optimizer(m, hyp)
    set_schedule(opt, hyp, 255, 255)
    assert opt.param_groups[0]["lr"] == pytest.approx(1 / (1500 * 255))
    set_schedule(opt, hyp, 1, 255)
    assert opt.param_groups[0]["lr"] == pytest.approx(1 / 1500)
    with pytest.raises(ValueError, match="unknown optimiser"):
        OptimConfig("rmsprop")

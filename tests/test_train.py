"""Training loops: divergence stops with a named step; resume == uninterrupted; schedules."""

import math
from types import SimpleNamespace

import pytest
import torch

from tlr.data import simulate
from tlr.models.base import RecurrentModel, Update
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.trbm import TRBMConfig
from tlr.train import (
    OptimConfig,
    checkpoint_progress,
    fit,
    load_checkpoint,
    make_optimizer,
    set_schedule,
)


def _data(T=60, B=4):
    return lambda epoch: simulate(B, T, seed=epoch, stream="test-train").y


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _refh_run(n_epochs, checkpoint=None):
    g = torch.Generator().manual_seed(0)
    m = REFH(REFHConfig(n_hidden=12), generator=g)
    h = fit(m, _data(), n_epochs, OptimConfig("adam", lr=1e-3), g, window=1,  # online
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
        fit(m, _data(T=20, B=6), n_epochs, OptimConfig("makin-hyperbolic"), g, batch=2,
            checkpoint=ck, progress=False)
        return m

    ref = run(3)
    run(1, tmp_path / "r.pt")
    resumed = run(3, tmp_path / "r.pt")
    for a, b in zip(ref.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_progress_reads_a_run_in_flight(tmp_path):
    ck = tmp_path / "refh.pt"
    _, hist = _refh_run(2, checkpoint=ck)
    p = checkpoint_progress(ck)
    assert (p["model"], p["epoch"], p["n_epochs"], p["updates"]) == ("rEFH", 2, 2, 2 * 60)
    assert p["validation"] == list(zip(hist.epochs, hist.metric, strict=True))
    assert p["train_s"] == hist.elapsed and p["left_s"] == 0.0
    # the pace is the time since the last validation point before the checkpoint's epoch
    assert p["s_per_epoch"] == pytest.approx(hist.elapsed - hist.seconds[0])
    # a checkpoint from before ``n_epochs`` was saved: the caller's count, else unknown
    raw = torch.load(ck, weights_only=False)
    del raw["n_epochs"]
    torch.save(raw, tmp_path / "old.pt")
    assert checkpoint_progress(tmp_path / "old.pt")["left_s"] is None
    five = checkpoint_progress(tmp_path / "old.pt", n_epochs=5)
    assert five["n_epochs"] == 5 and five["left_s"] == pytest.approx(3 * p["s_per_epoch"])
    with pytest.raises(ValueError, match="2 epochs are done, more than n_epochs=1"):
        checkpoint_progress(tmp_path / "old.pt", n_epochs=1)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint_progress(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a checkpoint written by tlr.train.fit"):
        checkpoint_progress(tmp_path / "other.pt")


def test_checkpoint_of_another_model_is_refused(tmp_path):
    _refh_run(1, checkpoint=tmp_path / "a.pt")
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint(tmp_path / "a.pt", REFH(REFHConfig(n_hidden=13)))


def test_divergence_stops_with_epoch_and_step():
    g = torch.Generator().manual_seed(0)
    m = REFH(REFHConfig(n_hidden=12), generator=g)
    with pytest.raises(FloatingPointError, match=r"epoch 1, step \d+"):
        fit(m, _data(T=200), 2, OptimConfig("adam", lr=1e3), g, window=1, progress=False)


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
    assert w_y["lr"] * w_y["weight_decay"] == pytest.approx(2e-6 / 1.1)  # Sources §5.4
    assert opt.param_groups[1]["lr"] == pytest.approx(1 / (50 * 1.1))  # recurrent rows
    opt = make_optimizer(m, hyp)
    set_schedule(opt, hyp, 255, 255)
    assert opt.param_groups[0]["lr"] == pytest.approx(1 / (1500 * 255))
    set_schedule(opt, hyp, 1, 255)
    assert opt.param_groups[0]["lr"] == pytest.approx(1 / 1500)
    with pytest.raises(ValueError, match="unknown optimiser"):
        OptimConfig("rmsprop")


# ------------------------------------------------------------------ fit: how data become updates


class _Recorder(RecurrentModel):
    """A model that records what fit hands it. Its state after a window is the window's last
    observation (so carrying is visible); ``fail``: {(call number): what goes wrong}."""

    name = "recorder"

    def __init__(self, fail=None):
        super().__init__()
        self.config = SimpleNamespace(n_obs=1)
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.calls, self.pretrain_calls, self.fail = [], [], fail or {}

    def initial_state(self, batch):
        return torch.full((batch, 1), -1.0)

    def update(self, y, u0=None, generator=None):
        self.check_y(y)
        self.calls.append((y.clone(), None if u0 is None else u0.clone()))
        what = self.fail.get(len(self.calls))
        if what == "raise":
            raise FloatingPointError("loss is nan")
        self.w.grad = torch.full((1,), float("nan") if what == "grad" else 1.0)
        u = y[-1].clone()
        return Update(u * float("nan") if what == "state" else u, None)

    def pretrain_update(self, y, n_cd_steps, generator=None):
        self.pretrain_calls.append((y.clone(), n_cd_steps))
        self.w.grad = torch.ones(1)


def _labelled(T, N):
    """y[t, n] = 100 n + t: every (step, sequence) is recognisable."""
    return (100 * torch.arange(N)[None, :, None] + torch.arange(T)[:, None, None]).float()


@pytest.mark.parametrize("T,N,window,batch", [(7, 5, 3, 2), (7, 5, None, None), (7, 5, 1, None),
                                              (7, 5, None, 2), (6, 4, 3, 4), (4, 3, 10, 1),
                                              (5, 6, 2, 7)])
def test_fit_shapes_windows_batches_and_carries_the_state(T, N, window, batch):
    m = _Recorder()
    y = _labelled(T, N)
    epochs = []
    hist = fit(m, lambda e: epochs.append(e) or y, 2, OptimConfig(lr=1e-3), _g(), window=window,
               batch=batch, progress=False)
    w, b = window or T, batch or N
    per_epoch = math.ceil(N / b) * math.ceil(T / w)
    assert epochs == [1, 2] and hist.updates == 2 * per_epoch and len(m.calls) == 2 * per_epoch
    expected = []
    for first in range(0, N, b):
        for t0 in range(0, T, w):
            expected.append((t0, first))
    for (t0, first), (yw, u0) in zip(expected * 2, m.calls, strict=True):
        torch.testing.assert_close(yw, y[t0:t0 + w, first:first + b])
        if t0 == 0:  # each group starts from the model's initial state
            assert u0 is None
        else:  # ... and carries the state from its previous window
            torch.testing.assert_close(u0, y[t0 - 1, first:first + b])
    assert m.w.item() < 0  # one optimiser step per update (gradient +1)


def test_fit_pretrains_first_then_updates():
    m = _Recorder()
    y = _labelled(4, 6)
    hist = fit(m, lambda e: y, 2, OptimConfig(lr=1e-3), _g(), batch=2, n_pretrain=2,
               pretrain_cd_steps=7, progress=False)
    assert hist.updates == 2 * 3
    assert [(p[0].shape, p[1]) for p in m.pretrain_calls] == [((4, 2, 1), 7)] * 2
    torch.testing.assert_close(m.pretrain_calls[1][0], y[:, 2:4])
    assert len(m.calls) == 4  # the third group of epoch 1, then all of epoch 2
    torch.testing.assert_close(m.calls[0][0], y[:, 4:6])


def test_fit_counts_updates_for_a_real_model():
    g = torch.Generator().manual_seed(0)
    m = REFH(REFHConfig(n_hidden=6), generator=g)
    hist = fit(m, _data(T=10, B=5), 3, OptimConfig("adam", lr=1e-3), g, window=4, batch=2,
               progress=False)
    assert hist.updates == 3 * math.ceil(5 / 2) * math.ceil(10 / 4)


@pytest.mark.parametrize("what,window,match", [
    ("raise", 2, r"epoch 2, step 3: loss is nan"),
    ("state", 2, r"epoch 2, step 3: hidden state is not finite"),
    ("grad", None, r"epoch 2, step 3: parameter w is not finite"),  # checked after every update
    ("grad", 2, r"epoch 2, step 6: parameter w is not finite"),  # ... at the end of the epoch
])
def test_fit_divergence_names_epoch_and_step(what, window, match):
    T, N = 4, 6
    per_epoch = math.ceil(N / 2) * (math.ceil(T / window) if window else 1)
    m = _Recorder(fail={per_epoch + 3: what})  # the third update of epoch 2
    with pytest.raises(FloatingPointError, match=f"training diverged at {match}"):
        fit(m, lambda e: _labelled(T, N), 3, OptimConfig(lr=1e-3), _g(), window=window,
            batch=2, progress=False)
    # stopped at once (a non-finite parameter of a windowed run: at the end of the epoch)
    assert len(m.calls) == per_epoch + (6 if what == "grad" and window else 3)


def test_fit_divergence_of_a_vae():
    m = RVAE(RVAEConfig(n_latent=2, n_units=8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"training diverged at epoch 1, step 1: "):
        fit(m, _data(T=10, B=2), 1, OptimConfig(lr=1e-3), _g(), window=5, progress=False)


def test_fit_bad_arguments():
    m = _Recorder()
    for kw in ({"window": 0}, {"batch": 0}, {"n_pretrain": -1}, {"window": 2.0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            fit(m, lambda e: _labelled(3, 2), 1, OptimConfig(), _g(), progress=False, **kw)
    with pytest.raises(ValueError, match="n_epochs"):
        fit(m, lambda e: _labelled(3, 2), 0, OptimConfig(), _g(), progress=False)
    assert m.calls == []


def test_prefetch_changes_nothing_but_the_timing():
    """fit(prefetch=True) makes each epoch's data on a thread ahead of time: same calls, in
    the same order, and the same trained model."""
    from tlr.models import build_model
    from tlr.train import OptimConfig, fit

    def run(prefetch):
        calls = []

        def data(epoch):
            calls.append(epoch)
            g = torch.Generator().manual_seed(epoch)
            return (torch.rand(10, 3, 30, generator=g) < 0.3).float()

        model = build_model("rEFH", generator=torch.Generator().manual_seed(0), n_obs=30,
                            n_hidden=16, obs_type="bernoulli", n_cd_steps=2)
        hist = fit(model, data, 4, OptimConfig("adam", lr=1e-2),
                   torch.Generator().manual_seed(1), batch=1, prefetch=prefetch,
                   evaluate=lambda m: float(m.efh.W[1].sum()), eval_every=2, progress=False)
        return calls, hist.metric, [p.detach().clone() for p in model.parameters()]

    calls0, metric0, params0 = run(False)
    calls1, metric1, params1 = run(True)
    assert calls0 == calls1 == [1, 2, 3, 4]
    assert metric0 == metric1
    assert all(torch.equal(a, b) for a, b in zip(params0, params1, strict=True))

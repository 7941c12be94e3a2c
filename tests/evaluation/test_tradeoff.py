"""Grouped gradient alignment (agrees with gradient_alignment; rVAE decoder identical by
construction; T = 1; groups and errors) and the saved-curve time axis."""

import pytest
import torch

from tlr.evaluation.gradients import gradient_alignment
from tlr.evaluation.tradeoff import (
    AlignmentTracker,
    epoch_seconds,
    grouped_alignment,
    training_curves,
)
from tlr.models.refh import REFH, REFHConfig
from tlr.models.rtrbm import RTRBM
from tlr.models.rvae import RVAE, RVAEConfig
from tlr.models.trbm import TRBMConfig
from tlr.models.tvae import TVAE, TVAEConfig
from tlr.train import OptimConfig, fit


def _counts(T, B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((T, B, 15), 1.5), generator=g)


def _rvae(cls=RVAE):
    cfg = (RVAEConfig if cls is RVAE else TVAEConfig)(n_latent=2, n_units=16)
    return cls(cfg, generator=torch.Generator().manual_seed(0))


def _rtrbm():
    m = RTRBM(TRBMConfig(n_hidden=12, n_cd_steps=2), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # recurrent weights large enough that the BPTT term matters
        m.efh.W[0].normal_(0.0, 0.3, generator=torch.Generator().manual_seed(1))
    return m


@pytest.mark.parametrize("make", [_rvae, lambda: _rvae(TVAE), _rtrbm])
def test_overall_matches_gradient_alignment(make):
    m = make()
    y = _counts(6)
    out = grouped_alignment(m, y)
    assert set(out) == {"cosine", "rel_diff", "norm_ratio"}
    assert list(out["cosine"]) == [*m.parameter_groups(), "overall"]
    assert out["cosine"]["overall"] == pytest.approx(gradient_alignment(m, y)["overall"],
                                                     abs=1e-12)
    assert all(0.0 <= r for r in out["rel_diff"].values())
    # the three numbers of a group are consistent: |b - a|² = |b|² + |a|² - 2 |a||b| cos
    for g in out["cosine"]:
        c, rel, r = (out[k][g] for k in ("cosine", "rel_diff", "norm_ratio"))
        assert rel**2 == pytest.approx(1 + r**2 - 2 * r * c, abs=1e-9)
    assert out["cosine"]["overall"] < 1 - 1e-6  # T > 1: BPTT adds something
    assert out["rel_diff"]["overall"] > 1e-6


def test_rvae_decoder_identical_encoder_not():
    out = grouped_alignment(_rvae(), _counts(8))
    assert out["cosine"]["decoder"] == pytest.approx(1.0, abs=1e-12)
    assert out["rel_diff"]["decoder"] < 1e-10
    assert out["norm_ratio"]["decoder"] == pytest.approx(1.0, abs=1e-12)
    assert out["cosine"]["encoder"] < 0.999 and out["rel_diff"]["encoder"] > 1e-3


def test_rtrbm_only_recurrence_parameters_differ():
    out = grouped_alignment(_rtrbm(), _counts(8))
    for name in ("b_u", "b_y"):  # the BPTT term touches only W_u, W_y and b_x
        assert out["rel_diff"][name] == 0.0 and out["cosine"][name] == 1.0
    assert out["rel_diff"]["W_u"] > 1e-3


@pytest.mark.parametrize("make", [_rvae, _rtrbm])
def test_no_past_identical(make):
    out = grouped_alignment(make(), _counts(1))
    assert all(c == pytest.approx(1.0, abs=1e-9) for c in out["cosine"].values())
    assert all(r < 1e-9 for r in out["rel_diff"].values())
    assert all(r == pytest.approx(1.0, abs=1e-9) for r in out["norm_ratio"].values())


def test_custom_groups_and_model_untouched():
    m = _rvae()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    out = grouped_alignment(m, _counts(5), {"fusion": ("rec_head.",), "trunk": ("rec_y.",)})
    assert list(out["cosine"]) == ["fusion", "trunk", "overall"]
    for n, p in m.named_parameters():
        assert p.grad is None and torch.equal(p, before[n])
    # deterministic by default; another generator draws other noise
    assert grouped_alignment(m, _counts(5)) == grouped_alignment(m, _counts(5))
    other = grouped_alignment(m, _counts(5), generator=torch.Generator().manual_seed(9))
    assert other != grouped_alignment(m, _counts(5))


def test_errors():
    with pytest.raises(ValueError, match="no parameter name starts with"):
        grouped_alignment(_rvae(), _counts(3), {"nothing": ("zzz",)})
    with pytest.raises(ValueError, match="rVAE/TVAE or a TRBM/RTRBM"):
        grouped_alignment(REFH(REFHConfig(n_hidden=8)), _counts(3))
    with pytest.raises(ValueError, match=r"\(T, B, n_obs\)"):
        grouped_alignment(_rvae(), _counts(3)[0])
    with pytest.raises(ValueError, match="non-finite"):
        grouped_alignment(_rvae(), _counts(3) * float("nan"))


def test_parameter_groups_are_the_default_groups():
    """What the old ``default_groups`` returned is now each model's ``parameter_groups()``:
    rVAE/TVAE encoder (``rec_*``) / decoder (the rest); harmoniums one group per parameter
    in the poster's names; every group matches a parameter and every parameter is grouped."""
    rvae = _rvae()
    groups = rvae.parameter_groups()
    assert list(groups) == ["encoder", "decoder"] and groups["encoder"] == ("rec_",)
    names = [n for n, p in rvae.named_parameters() if p.requires_grad]
    assert set(groups["decoder"]) == {n for n in names if not n.startswith("rec_")}
    assert not any(n.startswith("rec_") for n in groups["decoder"])
    assert list(_rvae(TVAE).parameter_groups()) == ["encoder", "decoder"]
    for m in (_rtrbm(), REFH(REFHConfig(n_hidden=8))):
        g = m.parameter_groups()
        assert g == {"W_u": ("efh.W.0",), "W_y": ("efh.W.1",), "b_x": ("efh.b_hid",),
                     "b_u": ("efh.b_vis.0",), "b_y": ("efh.b_vis.1",)}
        assert sorted(p for ps in g.values() for p in ps) == sorted(
            n for n, _ in m.named_parameters())


def test_tracker_in_training_loop():
    y = _counts(5)
    m = _rvae()
    tracker = AlignmentTracker(y, metric=lambda model: 1.5)
    assert tracker(m) == 1.5  # epoch 0
    first = grouped_alignment(m, y)

    def data(epoch):
        return _counts(20, B=3, seed=epoch)

    hist = fit(m, data, 4, OptimConfig(lr=1e-2), torch.Generator().manual_seed(0),
               window=5, evaluate=tracker, eval_every=2)
    rec = tracker.as_dict([0, *hist.epochs])
    assert rec["epochs"] == [0, 2, 4] and rec["metric"] == [1.5] * 3
    assert hist.metric == [1.5, 1.5]
    assert list(rec["cosine"]) == ["encoder", "decoder", "overall"]
    assert list(rec["norm_ratio"]) == list(rec["rel_diff"]) == list(rec["cosine"])
    assert all(len(v) == 3 for k in ("cosine", "rel_diff", "norm_ratio") for v in rec[k].values())
    assert rec["cosine"]["overall"][0] == first["cosine"]["overall"]
    assert rec["cosine"]["overall"][2] == grouped_alignment(m, y)["cosine"]["overall"]
    assert rec["cosine"]["overall"][2] != rec["cosine"]["overall"][0]  # the model moved
    with pytest.raises(ValueError, match="2 epochs for 3 recorded calls"):
        tracker.as_dict([0, 2])


def test_epoch_seconds():
    assert epoch_seconds([5, 10, 20], 40.0) == [10.0, 20.0, 40.0]
    assert epoch_seconds([0, 5], 40.0, n_epochs=10) == [0.0, 20.0]
    with pytest.raises(ValueError, match="empty"):
        epoch_seconds([], 1.0)
    with pytest.raises(ValueError, match="must lie in"):
        epoch_seconds([5, 12], 1.0, n_epochs=10)
    with pytest.raises(ValueError, match="train_s"):
        epoch_seconds([1], -1.0)


def test_training_curves():
    run = {"seed": 3,
           "results": {"KF-1": {"mse": 6e-4, "train_s": 1.0},
                       "rEFH": {"mse": 3e-4, "train_s": 90.0}},
           "details": {"KF-1": {"em_iterations": 20},
                       "rEFH": {"epochs": [30, 60, 90], "curve": [5e-4, 4e-4, 3e-4]}}}
    (c,) = training_curves([run])
    assert c.model == "rEFH" and c.seed == 3 and c.test_mse == 3e-4
    assert c.seconds == [30.0, 60.0, 90.0] and c.val_mse == [5e-4, 4e-4, 3e-4]
    assert training_curves([run], models=["TRBM"]) == []
    run["details"]["rEFH"]["curve"] = [1.0]
    with pytest.raises(ValueError, match="3 epochs but 1 curve points"):
        training_curves([run])

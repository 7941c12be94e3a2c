"""The one model interface (tlr.models.base) and the registry (tlr.models.registry): every
entry of MODELS builds and answers every method of the interface on a tiny input; names
round-trip; bad names / fields are refused; checkpoints written by fit load back."""

import dataclasses

import pytest
import torch

from tlr.models import (
    MODELS,
    RecurrentModel,
    Update,
    build_model,
    load_model,
    registry_name,
)
from tlr.models.base import check_int, check_y
from tlr.train import OptimConfig, fit

T, B = 3, 2
HARMONIUMS = ("rEFH", "TRBM", "RTRBM")

# the smallest sensible config of every registry entry (Bernoulli observations throughout)
SMALL = {
    "rEFH": dict(n_obs=6, n_hidden=5, obs_type="bernoulli"),
    "TRBM": dict(n_obs=6, n_hidden=5, obs_type="bernoulli", n_cd_steps=2),
    "RTRBM": dict(n_obs=6, n_hidden=5, obs_type="bernoulli", n_cd_steps=2),
    "rVAE": dict(n_obs=6, n_latent=2, n_units=8, likelihood="bernoulli"),
    "rVAE-BPTT": dict(n_obs=6, n_latent=2, n_units=8, likelihood="bernoulli"),
    "rVAE-β": dict(n_obs=6, n_latent=2, n_units=8, likelihood="bernoulli"),
    "TVAE": dict(n_obs=6, n_latent=2, n_units=8, likelihood="bernoulli"),
    "TVAE-BPTT": dict(n_obs=6, n_latent=2, n_units=8, likelihood="bernoulli"),
    "conv rVAE": dict(image_size=8, channels=(2,), n_latent=2, n_units=8),
    "conv rVAE-BPTT": dict(image_size=8, channels=(2,), n_latent=2, n_units=8),
    "conv TVAE": dict(image_size=8, channels=(2,), n_latent=2, n_units=8),
}


def test_small_configs_cover_the_registry():
    assert set(SMALL) == set(MODELS)
    assert list(MODELS) == ["rEFH", "TRBM", "RTRBM", "rVAE", "rVAE-BPTT", "rVAE-β", "TVAE",
                            "TVAE-BPTT", "conv rVAE", "conv rVAE-BPTT", "conv TVAE"]


def _build(name, seed=0):
    return build_model(name, generator=torch.Generator().manual_seed(seed), **SMALL[name])


def _frames(m, T=T, B=B, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, m.n_obs, generator=g) < 0.4).float()


def _g(seed=2):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_obeys_the_interface(name):
    m = _build(name)
    assert isinstance(m, RecurrentModel)
    assert registry_name(m) == name
    assert m.name == name.removeprefix("conv ")  # the conv models carry the poster's names
    assert dataclasses.is_dataclass(m.config) and m.n_obs == m.config.n_obs
    assert m.device == torch.device("cpu")
    y = _frames(m)
    u0 = m.initial_state(B)
    n_state = u0.shape[-1]
    assert u0.shape == (B, n_state) and torch.all(u0 == 0)

    u = m.filter(y)
    assert u.shape == (T, B, n_state) and torch.isfinite(u).all()
    assert m.filter(y, u0=u0).shape == (T, B, n_state)
    r = m.reconstruct(u)
    assert r.shape == (T, B, m.n_obs) and torch.all((r >= 0) & (r <= 1))  # Bernoulli means

    # update: ONE step on the window, a grad for every trainable parameter, the last state
    m.zero_grad(set_to_none=True)
    out = m.update(y, None, _g())
    assert isinstance(out, Update)
    assert out.u.shape == (B, n_state) and not out.u.requires_grad
    assert torch.isfinite(out.u).all()
    if name in HARMONIUMS:
        assert out.loss is None
    else:
        assert out.loss.dim() == 0 and torch.isfinite(out.loss) and not out.loss.requires_grad
    trainable = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    assert trainable
    for n, p in trainable:
        assert p.grad is not None, f"{name}: no gradient for {n}"
        assert p.grad.shape == p.shape and torch.isfinite(p.grad).all(), n
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)
    # the state carries into the next window (the RTRBM's BPTT recursion starts from u_0 = 0)
    if name == "RTRBM":
        with pytest.raises(ValueError, match="u_0 = 0"):
            m.update(y, out.u, _g())
    else:
        nxt = m.update(y, out.u, _g())
        assert nxt.u.shape == (B, n_state)

    # predict_next: (B, n_obs) from u_{t-1} alone, seeded
    p1 = m.predict_next(u[-1], 2, _g(5))
    p2 = m.predict_next(u[-1], 2, _g(5))
    assert p1.shape == (B, m.n_obs) and torch.equal(p1, p2)
    assert torch.all((p1 >= 0) & (p1 <= 1))
    gibbs = m.predict_next(u[-1], 0, _g(), y_init=y[-1], method="gibbs")
    assert gibbs.shape == (B, m.n_obs)
    with pytest.raises(ValueError, match="method"):
        m.predict_next(u[-1], 1, _g(), method="nope")
    with pytest.raises(ValueError, match="u_prev"):
        m.predict_next(torch.zeros(B, n_state + 1))

    # parameter groups: every prefix names a parameter, every parameter is in a group
    names = [n for n, _ in trainable]
    groups = m.parameter_groups()
    for prefixes in groups.values():
        for pre in prefixes:
            assert any(n.startswith(pre) for n in names), (name, pre)
    assert all(any(n.startswith(pre) for ps in groups.values() for pre in ps) for n in names)

    # what only some models have
    if name in HARMONIUMS:
        assert len(m.makin_groups()) == 5
        assert {id(p) for p in m.makin_groups()} == {id(p) for p in m.parameters()}
        m.pretrain_update(y, 1, _g())
        assert all(p.grad is not None for p in m.parameters())
    else:
        with pytest.raises(ValueError, match="adam"):
            m.makin_groups()
        with pytest.raises(ValueError, match="pretraining"):
            m.pretrain_update(y, 1, _g())
    if name == "rEFH":
        with pytest.raises(ValueError, match="no BPTT version"):
            m.local_and_bptt_gradients(y)
    else:
        m.zero_grad(set_to_none=True)
        local, bptt = m.local_and_bptt_gradients(y, None, _g())
        assert len(local) == len(bptt) == len(trainable)
        for a, b, (_, p) in zip(local, bptt, trainable, strict=True):
            assert a.shape == b.shape == p.shape
        assert all(p.grad is None for _, p in trainable)  # the model's grads are untouched

    # bad inputs are named
    for bad in (y[0], y[..., :-1], torch.zeros(0, B, m.n_obs)):
        with pytest.raises(ValueError, match="y must have shape"):
            m.update(bad, None, _g())
        with pytest.raises(ValueError, match="y must have shape"):
            m.filter(bad)
    with pytest.raises(ValueError, match="u0"):
        m.update(y, torch.zeros(B + 1, n_state), _g())


@pytest.mark.parametrize("name", list(MODELS))
def test_build_model_is_seeded(name):
    a, b, c = _build(name, 3), _build(name, 3), _build(name, 4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_build_model_fixes_bptt_by_name():
    assert build_model("rVAE-BPTT", **SMALL["rVAE"]).config.bptt is True
    assert build_model("rVAE", **SMALL["rVAE"]).config.bptt is False
    assert build_model("rVAE", bptt=False, **SMALL["rVAE"]).config.bptt is False  # no clash
    assert build_model("conv rVAE-BPTT", **SMALL["conv rVAE"]).name == "rVAE-BPTT"


def test_build_model_refuses_bad_names_fields_and_clashes():
    with pytest.raises(ValueError, match="unknown model 'GRU'") as e:
        build_model("GRU")
    assert all(n in str(e.value) for n in MODELS)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("refh")  # names are case-sensitive
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['n_latent'\]") as e:
        build_model("rEFH", n_latent=3)
    assert "n_hidden" in str(e.value)  # lists the valid ones
    with pytest.raises(ValueError, match="unknown config field"):
        build_model("TVAE", sigma_u=0.3)  # the TVAE models no u
    with pytest.raises(ValueError, match="bptt"):
        build_model("rVAE", bptt=True)
    with pytest.raises(ValueError, match="bptt"):
        build_model("TVAE-BPTT", bptt=False)
    with pytest.raises(ValueError, match="bptt"):
        build_model("conv rVAE", bptt=True)
    with pytest.raises(ValueError, match="n_hidden"):
        build_model("rEFH", n_hidden=0)  # the config's own validation


def test_registry_name_of_unregistered_models():
    with pytest.raises(ValueError, match="not in the model registry"):
        registry_name(torch.nn.Linear(2, 2))


def test_check_helpers():
    assert check_int("n", 3) == 3 and check_int("n", 0, low=0) == 0
    for bad in (0, True, 2.0, "3"):
        with pytest.raises(ValueError, match="n must be (an int )?>= 1"):
            check_int("n", bad)
    check_y(torch.zeros(2, 3, 4), 4, min_T=2)
    with pytest.raises(ValueError, match=r"y must have shape \(T, B, 5\), got \(2, 3, 4\)"):
        check_y(torch.zeros(2, 3, 4), 5)
    with pytest.raises(ValueError, match=r"ctx must have shape \(T, B, n_obs\) with T >= 3"):
        check_y(torch.zeros(2, 3, 4), name="ctx", min_T=3)
    with pytest.raises(ValueError, match="got list"):
        check_y([[0.0]])


# ----------------------------------------------------------------------- load_model


@pytest.mark.parametrize("name,window,batch", [("rEFH", 1, None), ("RTRBM", None, 2),
                                               ("conv rVAE-BPTT", 2, 2), ("conv TVAE", 2, None),
                                               ("TVAE", 3, None)])
def test_load_model_round_trip(tmp_path, name, window, batch):
    m = _build(name)
    y = _frames(m, T=4, B=3)
    path = tmp_path / "ck.pt"
    hist = fit(m, lambda e: y, 1, OptimConfig("adam", lr=1e-2), _g(), window=window,
               batch=batch, checkpoint=path, progress=False)
    assert hist.updates > 0 and path.exists()
    untrained = _build(name)
    assert not torch.equal(m.filter(y), untrained.filter(y))  # training moved the model
    loaded = load_model(path)
    assert type(loaded) is type(m) and loaded.config == m.config
    assert registry_name(loaded) == name
    assert torch.equal(loaded.filter(y), m.filter(y))
    sd, sl = m.state_dict(), loaded.state_dict()
    assert sd.keys() == sl.keys() and all(torch.equal(sd[k], sl[k]) for k in sd)
    # checkpoints from before the registry: the name is rebuilt from model name + config
    ck = torch.load(path, weights_only=False)
    del ck["registry_name"]
    torch.save(ck, tmp_path / "old.pt")
    old = load_model(tmp_path / "old.pt")
    assert registry_name(old) == name and torch.equal(old.filter(y), m.filter(y))

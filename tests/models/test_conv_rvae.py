"""Conv rVAE / rVAE-BPTT / TVAE (Sources §7, §10): shapes, late fusion, the local rule vs BPTT,
prediction, errors, seeded initialisation."""

from functools import partial

import pytest
import torch
from torch import nn

from tlr.models.conv_rvae import ConvRVAE, ConvRVAEConfig, ConvTVAE, ConvTVAEConfig
from tlr.train import OptimConfig, fit

T, B, S, L = 4, 3, 16, 4  # steps, sequences, image side, latents
allclose = partial(torch.allclose, atol=1e-6)


def _frames(T=T, B=B, seed=0):
    """Random blobs in [0, 1], flattened, time-major (T, B, S·S)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, S * S, generator=g) ** 4)


def _cfg(cls, **kw):
    base = dict(image_size=S, channels=(4, 8), n_latent=L, n_units=16)
    return (ConvRVAEConfig if cls is ConvRVAE else ConvTVAEConfig)(**{**base, **kw})


def _model(cls=ConvRVAE, seed=0, **kw):
    return cls(_cfg(cls, **kw), generator=torch.Generator().manual_seed(seed))


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for n, p in model.named_parameters()}


MODELS = [(ConvRVAE, False), (ConvRVAE, True), (ConvTVAE, False), (ConvTVAE, True)]


@pytest.mark.parametrize("cls,bptt", MODELS)
def test_shapes_names_and_finite_loss(cls, bptt):
    m = _model(cls, bptt=bptt)
    assert m.config.n_obs == S * S
    y = _frames()
    u0 = m.initial_state(B)
    out = m.step(y[0], u0, torch.Generator().manual_seed(1))
    assert out.u.shape == out.nu.shape == out.logvar.shape == (B, L)
    assert out.loss.shape == out.kl.shape == out.nll_y.shape == (B,)
    assert allclose(out.loss, out.kl + out.nll_u + out.nll_y)
    loss, u = m.sequence_loss(y, u0, torch.Generator().manual_seed(1))
    assert loss.dim() == 0 and torch.isfinite(loss) and u.shape == (B, L)
    nu = m.filter(y)
    assert nu.shape == (T, B, L)
    p = m.reconstruct(nu)
    assert p.shape == (T, B, S * S) and torch.all((p >= 0) & (p <= 1))  # Bernoulli means
    names = {(ConvRVAE, False): "rVAE", (ConvRVAE, True): "rVAE-BPTT",
             (ConvTVAE, False): "TVAE", (ConvTVAE, True): "TVAE-BPTT"}
    assert m.name == names[(cls, bptt)]


@pytest.mark.parametrize("cls", [ConvRVAE, ConvTVAE])
def test_late_fusion_the_conv_trunk_never_sees_u(cls):
    m = _model(cls)
    first = m.rec_y.net[0]
    assert isinstance(first, nn.Conv2d) and first.in_channels == 1  # the frame, nothing else
    assert m.rec_head[0].in_features == m.config.n_units + L  # u joins after the trunk
    seen = []
    m.rec_y.register_forward_hook(lambda mod, inp, out: seen.append((inp[0], out)))
    y = _frames()[0]
    u = torch.randn(B, L, requires_grad=True)
    m.encode(y, torch.zeros(B, L))
    nu, _ = m.encode(y, u)
    (in0, h0), (in1, h1) = seen
    assert torch.equal(in0, y) and torch.equal(in1, y) and torch.equal(h0, h1)
    # ∂h/∂u = 0: u has no path into the trunk, only into the head
    assert torch.autograd.grad(h1.sum(), u, allow_unused=True)[0] is None
    assert torch.autograd.grad(nu.sum(), u)[0].abs().sum() > 0


@pytest.mark.parametrize("cls", [ConvRVAE, ConvTVAE])
def test_bptt_changes_gradients_only_through_u(cls):
    local, bptt = _model(cls), _model(cls, bptt=True)
    bptt.load_state_dict(local.state_dict())
    y = _frames()
    # one step from a given u: no path back in time, so the two rules agree exactly
    u_prev = torch.randn(B, L)
    g1, g2 = (_grads(m, m.step(y[0], u_prev, torch.Generator().manual_seed(2)).loss.sum())
              for m in (local, bptt))
    assert all(allclose(g1[n], g2[n]) for n in g1)
    # a window: the same values, different gradients (BPTT reaches the trunk through u)
    out_l, _ = local.window(y, local.initial_state(B), torch.Generator().manual_seed(3))
    out_b, _ = bptt.window(y, bptt.initial_state(B), torch.Generator().manual_seed(3))
    assert allclose(out_l.loss, out_b.loss, atol=1e-4)
    gl, gb = _grads(local, out_l.loss.sum()), _grads(bptt, out_b.loss.sum())
    assert any(not torch.allclose(gl[n], gb[n], atol=1e-6) for n in gl if n.startswith("rec_"))
    # local = the gradient with every u_{t-1} held constant (data)
    us = torch.cat([local.initial_state(B)[None], out_l.nu[:-1].detach()])
    eps = local._noise((T, B, L), us, torch.Generator().manual_seed(3))
    gc = _grads(local, local.score(y, us, eps).loss.sum())
    assert all(torch.allclose(gl[n], gc[n], atol=1e-5) for n in gl)


def test_no_gradient_reaches_earlier_frames_without_bptt():
    y = _frames().requires_grad_(True)
    for bptt, reaches in ((False, False), (True, True)):
        m = _model(bptt=bptt)
        out, _ = m.window(y, m.initial_state(B), torch.Generator().manual_seed(0))
        g = torch.autograd.grad(out.loss[-1].sum(), y)[0]
        assert (g[0].abs().sum() > 0) == reaches  # y_1 matters to step T only through u


@pytest.mark.parametrize("cls", [ConvRVAE, ConvTVAE])
def test_predict_next(cls):
    m = _model(cls)
    u = m.filter(_frames())[-1]
    for method, n_gibbs in (("map", 25), ("gibbs", 0), ("gibbs", 3)):
        a, b = (m.predict_next(u, n_gibbs=n_gibbs, generator=torch.Generator().manual_seed(5),
                               method=method) for _ in range(2))
        assert a.shape == (B, S * S) and torch.equal(a, b)
        assert torch.all((a >= 0) & (a <= 1))
    with pytest.raises(ValueError, match="u_prev"):
        m.predict_next(torch.zeros(B, L + 1))


def test_gaussian_likelihood_learns_sigma_y():
    m = _model(likelihood="gaussian", learn_sigma="scalar")
    assert isinstance(m.log_sigma_y, nn.Parameter) and m.log_sigma_y.shape == (1,)
    loss, _ = m.sequence_loss(_frames(), m.initial_state(B), torch.Generator().manual_seed(0))
    assert _grads(m, loss)["log_sigma_y"].abs().sum() > 0
    y = m.predict_next(torch.zeros(B, L), n_gibbs=2, generator=torch.Generator().manual_seed(0))
    assert y.shape == (B, S * S) and torch.isfinite(y).all()


@pytest.mark.parametrize("cls", [ConvRVAE, ConvTVAE])
def test_seeded_initialisation_is_deterministic(cls):
    torch.manual_seed(0)
    a = _model(cls, seed=7)
    torch.manual_seed(1)  # the global RNG must not matter
    b, c = _model(cls, seed=7), _model(cls, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["rec_y.net.0.weight"], sc["rec_y.net.0.weight"])  # conv re-drawn
    assert not torch.equal(sa["gen_y.5.weight"], sc["gen_y.5.weight"])  # deconv re-drawn


@pytest.mark.parametrize("kw", [
    dict(image_size=18), dict(channels=()), dict(channels=(4, 0)), dict(channels=[4, 8]),
    dict(likelihood="poisson"), dict(n_latent=0), dict(sigma_u=0.0), dict(learn_sigma="full"),
])
def test_bad_config(kw):
    with pytest.raises(ValueError):
        _cfg(ConvRVAE, **kw)


def test_bad_types_and_shapes():
    with pytest.raises(TypeError):
        ConvRVAE(ConvTVAEConfig())
    with pytest.raises(TypeError):
        ConvTVAE(_cfg(ConvRVAE))
    m = _model()
    with pytest.raises(ValueError, match="y must have shape"):
        m.filter(torch.zeros(T, B, S * S + 1))
    with pytest.raises(ValueError, match="y must have shape"):
        m.window(torch.zeros(B, S * S), m.initial_state(B))
    with pytest.raises(ValueError, match="u0"):
        m.window(_frames(), torch.zeros(B, L + 1))


def test_a_few_updates_lower_the_loss():
    m = _model()
    y = _frames(T=3, B=4)
    g = torch.Generator().manual_seed(0)
    before = m.sequence_loss(y, m.initial_state(4), torch.Generator().manual_seed(9))[0].item()
    hist = fit(m, lambda e: y, 30, OptimConfig("adam", lr=3e-3), g, window=3,
               progress=False)
    after = m.sequence_loss(y, m.initial_state(4), torch.Generator().manual_seed(9))[0].item()
    assert hist.updates == 30 and after < before
